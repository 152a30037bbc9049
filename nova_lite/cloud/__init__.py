"""The services of the cloud nova_lite measures, from wherever they live.

    from nova_lite import cloud
    source = cloud.services_source(conf, db=db)
    for svc in source.list_services():
        ...                       # one dict per service: base.SERVICE_KEYS
    source.close()

``services_source`` picks the source from [cloud]:

- ``kind = nova_lite``: nova_lite's own services table (``own.py``);
- ``kind = nova``, ``services_from = database``: Nova's API database, its
  cell_mappings and each cell's services table, read-only (``nova_db.py``);
- ``kind = nova``, ``services_from = api``: the Compute API's os-services
  through openstacksdk (``nova_api.py``; imported only when used).
"""

from nova_lite.cloud import base
from nova_lite.conf import cloud as cloud_conf

SERVICE_KEYS = base.SERVICE_KEYS
NO_RPC_BINARIES = base.NO_RPC_BINARIES


def services_source(conf, db=None):
    """The ``base.ServiceSource`` for ``conf``'s [cloud].

    ``db`` is nova_lite's own ``db.api.API`` (made from ``conf`` when None
    and needed); a Nova source never uses it.
    """
    if not cloud_conf.is_nova(conf):
        from nova_lite.cloud import own
        if db is None:
            from nova_lite.db import api as db_api
            db = db_api.API(conf)
        return own.OwnServices(conf, db)
    if conf.cloud.services_from == cloud_conf.FROM_API:
        from nova_lite.cloud import nova_api
        return nova_api.NovaAPIServices(conf)
    from nova_lite.cloud import nova_db
    return nova_db.NovaDatabaseServices(conf)
