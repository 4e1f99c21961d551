"""Errors of the state machine and the fold; each names the thing and what to do."""

from __future__ import annotations


class FsmError(Exception):
    """Base class of the state machine's errors."""


class IllegalTransition(FsmError):
    """A trigger was fired in a state whose row of the table does not allow it.

    The reconciler journals it (the resource stays where it was); it is never ignored.
    """

    def __init__(self, state: str, trigger: str, allowed: tuple[str, ...]) -> None:
        names = ", ".join(allowed) or "none"
        super().__init__(
            f"trigger {trigger!r} is not allowed in state {state!r} (allowed: {names}); "
            "this is a bug in decide or a corrupt journal: report it with the journal"
        )
        self.state = state
        self.trigger = trigger
        self.allowed = allowed


class UnknownState(FsmError):
    """A state name that is not in the transition table."""

    def __init__(self, state: str) -> None:
        super().__init__(f"unknown state {state!r}: the journal was written by a newer engine")
        self.state = state


class FoldError(FsmError):
    """A known event could not be folded: malformed payload, newer schema, or a history
    that contradicts the table. Folding stops rather than guessing."""

    def __init__(self, position: int | None, message: str) -> None:
        where = f" at position {position}" if position is not None else ""
        super().__init__(
            f"cannot fold the journal{where}: {message}; "
            "keep the journal for a post-mortem and upgrade the engine or rebuild the stream"
        )
        self.position = position
