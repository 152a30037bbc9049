"""Periodic tasks for managers.

    class ComputeManager(manager.Manager):
        @periodic.periodic_task(spacing=30)
        def _sync_power_states(self, context):
            ...

``spacing`` is seconds, a callable ``spacing(conf)`` (so an option can set
it), or None for ``[DEFAULT] periodic_interval``.  A task that raises is
logged and runs again at its next slot; it never stops the others.

(oslo.service offers the same, but its periodic_task module drags in the
deprecated eventlet backdoor on import; this is the part nova_lite needs.)
"""

import time

from oslo_log import log as logging

LOG = logging.getLogger(__name__)


def periodic_task(spacing=None, run_immediately=False):
    """Mark a manager method as a periodic task."""
    def decorator(func):
        func._periodic_task = True
        func._periodic_spacing = spacing
        func._periodic_run_immediately = run_immediately
        return func
    return decorator


class PeriodicTasks:
    """Mixin that finds the decorated methods and runs those that are due."""

    def _periodic_tasks(self):
        tasks = []
        for name in sorted(dir(type(self))):
            func = getattr(type(self), name, None)
            if getattr(func, '_periodic_task', False):
                tasks.append((name, func))
        return tasks

    def _periodic_spacing(self, func):
        spacing = func._periodic_spacing
        if spacing is None:
            return self.conf.periodic_interval
        if callable(spacing):
            return spacing(self.conf)
        return spacing

    def run_periodic_tasks(self, context):
        """Run the tasks that are due; returns seconds until the next one."""
        now = time.monotonic()
        last_run = self.__dict__.setdefault('_periodic_last_run', {})
        idle = None
        for name, func in self._periodic_tasks():
            spacing = self._periodic_spacing(func)
            if name not in last_run and not func._periodic_run_immediately:
                last_run[name] = now
            due = last_run.get(name, now - spacing) + spacing
            if due <= now:
                last_run[name] = now
                try:
                    func(self, context)
                except Exception:
                    LOG.exception('Periodic task %s failed', name)
                due = now + spacing
            wait = max(0.0, due - time.monotonic())
            idle = wait if idle is None else min(idle, wait)
        return idle
