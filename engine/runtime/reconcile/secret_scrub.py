"""Keep secret values out of error messages: a handler or step that raises with a secret in
its message (`f"bad password {spec['password']}"`) must not carry it into the journal's
`EffectFailed`, the status reason, an Event or a log line. The message is scrubbed where
the error leaves the operator's code, before the effect runner records it.
"""

from __future__ import annotations

from typing import Any

from engine.effects.errors import PermanentError, RetryableError
from engine.runtime.reconcile.handler_context import EffectFn
from engine.telemetry.redaction import Redactor


def scrubbed(call: EffectFn, redactor: Redactor) -> EffectFn:
    """`call` whose exceptions carry no value of `redactor.secrets` in their text.

    Guarantees: the exception raised has the same class and attributes when scrubbing its
    `args` is enough; otherwise (a custom `__str__`) a `PermanentError` or
    `RetryableError` (keeping `delay`) with the scrubbed text. Cause and context, which
    may quote the secret, are dropped from a scrubbed error. With no secrets, `call`
    itself is returned.
    """
    if not redactor.secrets:
        return call

    async def run(key: str) -> Any:
        try:
            return await call(key)
        except Exception as error:
            raise scrub_error(error, redactor) from None

    return run


def scrub_error(error: Exception, redactor: Redactor) -> Exception:
    """`error` with the secrets removed from its text (the same object when it had none)."""
    text = str(error)
    clean = redactor.text(text)
    if clean == text:
        return error
    error.args = tuple(
        redactor.text(arg) if isinstance(arg, str) else arg for arg in error.args
    ) or (clean,)
    error.__cause__ = None
    error.__context__ = None
    error.__suppress_context__ = True
    if redactor.text(str(error)) == str(error):
        return error
    if isinstance(error, PermanentError):
        return PermanentError(clean)
    delay = error.delay if isinstance(error, RetryableError) else 0.0
    return RetryableError(clean, delay=delay)
