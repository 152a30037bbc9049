"""main() of every nova_lite daemon and tool.

Each daemon module imports ``nova_lite.monkey_patch`` before anything else.
"""
