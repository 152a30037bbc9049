"""The scheduler role: picks a compute host."""
