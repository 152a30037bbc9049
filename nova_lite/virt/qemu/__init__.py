"""The QEMU virt driver (``[compute] driver = qemu``).

Modules: ``driver`` (``QemuDriver``: spawn, reboot, destroy, queries,
tasks, events), ``blockjobs`` (pull, copy, commit, abort, pivot),
``migration`` (live migration, disks copied over NBD), ``instance`` (the
driver's record of one QEMU), ``process`` (images, processes, ports) and
``qmp`` (the QMP client).

Which QMP client, and why: a small synchronous one (``qmp.py``, JSON lines
over the QMP unix socket, the greeting and ``qmp_capabilities``, replies
matched by id, events handed over in order), over the *unpatched*
``socket`` and ``threading`` modules, with one native reader thread per
connection.  QEMU's own ``qemu.qmp`` is asyncio-based; under the eventlet
backend ``socket``, ``select``, ``selectors`` and ``threading`` are
monkey-patched, so an asyncio loop would need its own unpatched native
thread and unpatched copies of those modules for itself and asyncio, plus
a bridge from driver threads into that loop for every command.  The
synchronous client needs only the unpatched modules
(``concurrency.native_module``), runs the same way on both backends,
never touches the hub (driver calls run in native threads through
``ThreadPoolDriver``; the reader threads are native), and is about 250
lines.  The job model's monitor lock serializes the compute's commands;
the client also serializes its own callers, so driver threads (a spawn or
migration worker) can share the connection safely.
"""
