"""Owners and dependents: garbage-collection planning (pure), the owner index, the collector
task, and the cascades of CRD and Namespace removal.
"""
