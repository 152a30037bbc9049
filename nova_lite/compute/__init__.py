"""The compute role: runs instances on a hypervisor through a virt driver."""
