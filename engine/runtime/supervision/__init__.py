"""Supervision in the running engine: the stuck-resource watchdog, which only leaves
notes for a key's next turn and enqueues it (the pure detection and healing rules are
in engine/supervisor).
"""
