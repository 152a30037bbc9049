"""A Nova cloud's services from its Compute API (os-services).

``openstack.connect(cloud=os_cloud)`` reads the clouds.yaml entry from
openstacksdk's usual places (``./clouds.yaml``, ``~/.config/openstack/``,
``/etc/openstack/``; ``OS_CLIENT_CONFIG_FILE`` names another).  Listing
compute services needs the admin role.  openstacksdk is imported here, on
first use, so daemons that list services another way never load it.

What os-services tells, mapped to the service keys: ``state`` up/down
(Nova's servicegroup verdict, forced-down included) is ``status``;
``status`` enabled/disabled is ``disabled``; ``zone``; ``updated_at`` (the
service's last heartbeat).  It does not tell the topic (taken from the
binary, as Nova does) nor the service version (None).
"""

from oslo_log import log as logging

from nova_lite.cloud import base
from nova_lite import exception
from nova_lite import utils

LOG = logging.getLogger(__name__)


def _errors():
    """The exceptions that mean "cannot reach or read the cloud": the
    SDK's, keystoneauth's (auth, connection, HTTP), and the OS's."""
    from keystoneauth1 import exceptions as ksa_exceptions
    from openstack import exceptions as sdk_exceptions
    return (sdk_exceptions.SDKException, ksa_exceptions.ClientException,
            OSError)


def _connect(cloud):
    import openstack
    return openstack.connect(cloud=cloud)


class NovaAPIServices(base.ServiceSource):
    """The services of ``[cloud] kind = nova``, ``services_from = api``.

    ``connect(cloud)`` returns an openstacksdk ``Connection``; tests pass
    a fake one, and the errors it may raise as ``errors``.
    """

    def __init__(self, conf, connect=None, errors=None):
        self.os_cloud = conf.cloud.os_cloud
        self.description = 'Compute API of cloud %r' % self.os_cloud
        self._connect = connect or _connect
        self._errors = errors
        self._conn = None

    def list_services(self):
        errors = self._errors or _errors()
        try:
            if self._conn is None:
                self._conn = self._connect(self.os_cloud)
            listed = list(self._conn.compute.services())
            LOG.debug('%s: %d services', self.description, len(listed))
        except errors as exc:
            self._conn = None   # reconnect next time (a new token)
            reason = ' '.join(str(exc).split()) or type(exc).__name__
            raise exception.CloudUnavailable(
                source=self.description,
                reason=utils.mask_url(reason)) from None
        now = base.utcnow()
        return base.sorted_services(self._service(svc, now)
                                    for svc in listed)

    def close(self):
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    @staticmethod
    def _service(svc, now):
        updated_at = base.aware(svc.updated_at)
        return base.service(
            id=svc.id, host=svc.host, binary=svc.binary,
            topic=base.topic_from_binary(svc.binary),
            status=base.UP if svc.state == 'up' else base.DOWN,
            disabled=svc.status == 'disabled', updated_at=updated_at,
            version=None, zone=svc.availability_zone,
            heartbeat_age=base.age_seconds(updated_at, now), metrics=None)
