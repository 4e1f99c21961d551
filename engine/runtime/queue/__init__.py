"""The per-key work queue: dedupe, delay, backoff and never two workers on one key; its
rate limits; and the worker loops with the one switch from a reconcile's outcome to a
queue action.
"""
