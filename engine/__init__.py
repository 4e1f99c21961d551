"""An event-sourced reconciliation engine for Kubernetes operators.

Every observation, decision and side effect is a record in a durable journal; each
custom resource moves through one explicit state machine. See README.md.
"""

__version__ = "0.1.0"
