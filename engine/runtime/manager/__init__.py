"""The composition root: the `Controller` builds every part once (caches and watches
first, then — while this replica leads — the workers and the watchdog), serves health
and metrics, and holds the settings of a run.
"""
