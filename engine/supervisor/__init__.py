"""Supervision: stuck and deadlock detection, healing, leader election."""
