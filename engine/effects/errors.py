"""The errors an effect raises, and those the runner raises after journaling an outcome."""

from __future__ import annotations


class EffectError(Exception):
    """Base class of effect errors."""


class PermanentError(EffectError):
    """Raised by an effect that cannot succeed without a change (bad spec, 403, 422).

    The runner journals it as a non-retryable failure; the resource goes to `Failed`
    with the message as the reason. Keep secrets out of the message: it is journaled.
    """


class RetryableError(EffectError):
    """Raised by an effect that may succeed later; `delay` is a lower bound in seconds
    (a Retry-After). Any exception that is not a `PermanentError` is retryable too."""

    def __init__(self, message: str, *, delay: float = 0.0) -> None:
        super().__init__(message)
        self.delay = delay


class ServerUnavailable(RetryableError):
    """Raised when a server the effect needs could not answer for now (the API server's
    429 or 5xx, a connection reset or refused, no answer in time).

    Retried with the growing backoff like any retryable error, but never the attempt
    that gives up: an outage, however long, does not move the resource to `Failed`, and
    it converges once the server answers again (R12).
    """


class DependencyNotReady(RetryableError):
    """Raised by a handler that waits for another resource to be Ready (`what` names it).

    Retryable, but never the attempt that gives up: the runner retries it after `delay`
    however many attempts were made, so a wait holds for as long as it lasts.
    """

    def __init__(self, what: str, *, delay: float) -> None:
        super().__init__(f"waiting for {what} to be Ready", delay=delay)
        self.what = what


class NotLeading(Exception):
    """This replica may not act now (it is not, or no longer, the leader): nothing was
    started. Not an effect outcome: the runner journals nothing and lets it through."""


class EffectRetryScheduled(RetryableError):
    """The runner journaled a retryable failure of `key` and `RetryScheduled`: try again
    in `delay` seconds (the reconciler's requeue-after). Retryable when it crosses an
    enclosing effect, which then waits at least as long; `waiting` when the failure was a
    wait for something else (`DependencyNotReady`), so the enclosing effect waits too
    instead of counting a failure; `unavailable` when it was a `ServerUnavailable`, so
    the enclosing effect does not give up on it either."""

    def __init__(
        self,
        key: str,
        *,
        attempt: int,
        delay: float,
        message: str,
        error_class: str = "",
        waiting: bool = False,
        unavailable: bool = False,
    ) -> None:
        super().__init__(
            f"effect {key} attempt {attempt} failed ({message}); retry in {delay:.3f}s",
            delay=delay,
        )
        self.key = key
        self.attempt = attempt
        self.message = message
        """The failure's own message (as journaled in `EffectFailed`)."""
        self.error_class = error_class
        """The class name of the failure (as journaled in `EffectFailed`), "" if unknown."""
        self.waiting = waiting
        self.unavailable = unavailable


class EffectFailedPermanently(PermanentError):
    """`key` has a recorded permanent failure: it is not called again under this key."""

    def __init__(self, key: str, *, error_class: str, message: str) -> None:
        super().__init__(f"effect {key} failed for good: {error_class}: {message}")
        self.key = key
        self.error_class = error_class
        self.reason = f"{error_class}: {message}"


class EffectGaveUp(EffectFailedPermanently):
    """`key` failed on every one of its allowed attempts (the trigger `gave_up`)."""

    def __init__(self, key: str, *, attempts: int, error_class: str, message: str) -> None:
        super().__init__(key, error_class=error_class, message=message)
        self.args = (f"effect {key} gave up after {attempts} attempts: {error_class}: {message}",)
        self.attempts = attempts


class ReplayDivergence(EffectError):
    """Replay asked for an effect the journal does not have at that point: the handler
    code is not deterministic, or it changed since the journal was written.

    `position` is the journal position of the first differing record (None: the journal
    ended), `expected` the key recorded there, `got` the key the code asked for.
    """

    def __init__(
        self, *, stream: str, position: int | None, expected: str | None, got: str, why: str
    ) -> None:
        where = f"position {position}" if position is not None else "the end of the journal"
        super().__init__(
            f"replay of {stream} diverges at {where}: {why} (journal: {expected!r}, "
            f"code: {got!r}); replay with the engine version that wrote the journal"
        )
        self.stream = stream
        self.position = position
        self.expected = expected
        self.got = got
