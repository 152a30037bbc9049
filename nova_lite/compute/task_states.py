"""Who holds an instance, and for what: its ``task_state`` (as in Nova).

The conductor claims an instance with the *pending* state of an operation
(one UPDATE that matches only while no task holds it); the compute host
swaps the pending state for the *running* one when it starts (one UPDATE
again, so a repeated request finds nothing to swap) and clears it when the
operation ends.  A build is claimed ``scheduling`` when its instance is
created.

    conductor:  None --> reboot_pending     (refused while a task is set)
    compute:    reboot_pending --> rebooting --> None

A resize is driven step by step by the conductor, which moves the
task_state on with each step (``nova_lite.conductor.resize``)::

    conductor:  None --> resize_prep (scheduling, prep on the target)
                     --> resize_migrating (the source hands over)
                     --> resize_finish (the target starts it)
    target:     resize_finish --> None, vm_state resized (VERIFY_RESIZE)
    conductor:  resized: None --> resize_confirming | resize_reverting
                         --> None, vm_state active
"""

SCHEDULING = 'scheduling'

# operation -> (pending: the conductor's claim, running: the compute's,
# the vm_states it may start from).
OPERATIONS = {
    'spawn': (SCHEDULING, 'spawning', ('building',)),
    'reboot': ('reboot_pending', 'rebooting', ('active',)),
    'destroy': ('destroy_pending', 'destroying',
                ('active', 'error', 'resized')),
    'migrate': ('migrate_pending', 'migrating', ('active',)),
    'resize': ('resize_prep', 'resize_migrating', ('active',)),
    'confirm_resize': ('resize_confirming', 'resize_confirming',
                       ('resized',)),
    'revert_resize': ('resize_reverting', 'resize_reverting', ('resized',)),
}
# The task_state of a resize at each conductor step after scheduling.
RESIZE_MIGRATING = 'resize_migrating'
RESIZE_FINISH = 'resize_finish'


def pending(operation):
    return OPERATIONS[operation][0]


def running(operation):
    return OPERATIONS[operation][1]


def allowed_vm_states(operation):
    return OPERATIONS[operation][2]
