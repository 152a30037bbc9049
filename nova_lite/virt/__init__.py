"""Virt drivers, chosen by name with ``[compute] driver``."""

import importlib

from nova_lite import exception

# Name -> "module:Class".  Only real implementations belong here.
DRIVERS = {
    'fake': 'nova_lite.virt.fake:FakeDriver',
    'qemu': 'nova_lite.virt.qemu.driver:QemuDriver',
}


def load_driver(conf, host):
    """The driver named by ``[compute] driver``, wrapped so that every call
    runs in the native thread pool."""
    from nova_lite.virt import driver as virt_driver

    name = conf.compute.driver
    if name not in DRIVERS:
        raise exception.DriverNotFound(name=name,
                                       known=', '.join(sorted(DRIVERS)))
    module_name, class_name = DRIVERS[name].split(':')
    cls = getattr(importlib.import_module(module_name), class_name)
    return virt_driver.ThreadPoolDriver(cls(conf, host))
