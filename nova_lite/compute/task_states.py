"""Who holds an instance, and for what: its ``task_state`` (as in Nova).

The conductor claims an instance with the *pending* state of an operation
(one UPDATE that matches only while no task holds it); the compute host
swaps the pending state for the *running* one when it starts (one UPDATE
again, so a repeated request finds nothing to swap) and clears it when the
operation ends.  A build is claimed ``scheduling`` when its instance is
created.

    conductor:  None --> reboot_pending     (refused while a task is set)
    compute:    reboot_pending --> rebooting --> None
"""

SCHEDULING = 'scheduling'

# operation -> (pending: the conductor's claim, running: the compute's,
# the vm_states it may start from).
OPERATIONS = {
    'spawn': (SCHEDULING, 'spawning', ('building',)),
    'reboot': ('reboot_pending', 'rebooting', ('active',)),
    'destroy': ('destroy_pending', 'destroying', ('active', 'error')),
    'migrate': ('migrate_pending', 'migrating', ('active',)),
}


def pending(operation):
    return OPERATIONS[operation][0]


def running(operation):
    return OPERATIONS[operation][1]


def allowed_vm_states(operation):
    return OPERATIONS[operation][2]
