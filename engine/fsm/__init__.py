"""The state machine: transition table, shared machine, fold and decide (all pure)."""
