"""What may reach a span: an allowlist of attribute names and the redaction of secrets.

A secret is any value found at one of the configured secret field paths of a resource
(the same dotted paths the journal redacts). `Redactor` replaces every occurrence of
such a value in span attribute values, event attributes and status descriptions.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

REDACTED = "<redacted>"
"""What a secret is replaced by (the same marker the journal writes)."""

AttributeValue = str | bool | int | float | Sequence[str]

ALLOWED_ATTRIBUTES = frozenset(
    {
        # the resource a reconcile is about
        "k8s.namespace.name",
        "k8s.resource.group",
        "k8s.resource.kind",
        "k8s.resource.name",
        "k8s.resource.uid",
        "k8s.resource.generation",
        # the state machine
        "fsm.from",
        "fsm.to",
        "fsm.trigger",
        # the reconcile
        "reconcile.outcome",
        "reconcile.worker",
        "leader.term",
        "leader.identity",
        # an observation journaled from a watch event (added, modified, deleted)
        "watch.event_type",
        # the watchdog
        "healing.action",
        # an effect attempt
        "effect.name",
        "effect.idempotency_key",
        "effect.attempt",
        "effect.outcome",
        "effect.retryable",
        "effect.replayed",
        # retries and errors
        "retry.delay_s",
        "retry.attempt",
        "error.type",
        # links between reconciles
        "link.reason",
    }
)
"""Every attribute name a span, span event or link of the engine may carry."""


class UnknownSpanAttribute(ValueError):
    """A span attribute name that is not in `ALLOWED_ATTRIBUTES` (a programming error)."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"span attribute {name!r} is not allowed: add it to "
            "engine.telemetry.redaction.ALLOWED_ATTRIBUTES after checking it can hold no secret"
        )


@dataclass(frozen=True, slots=True)
class Redactor:
    """Replaces known secret values in text; build one per resource with `from_object`.

    Guarantee: no string returned by `text` or `attributes` contains any of `secrets`
    (longer secrets are replaced first, so a secret that contains another goes whole).
    """

    secrets: tuple[str, ...] = ()

    @classmethod
    def from_object(cls, obj: Mapping[str, Any], secret_paths: Sequence[str]) -> Redactor:
        """Collect the values at `secret_paths` in `obj` (matched at any depth, as the
        journal matches them); non-string values are redacted by their JSON-ish text.
        With no paths, nothing is walked."""
        if not secret_paths:
            return NO_SECRETS
        found = {
            text
            for value in _values_at(obj, tuple(tuple(path.split(".")) for path in secret_paths))
            for text in _texts(value)
            if text
        }
        return cls(tuple(sorted(found, key=lambda text: (-len(text), text))))

    def text(self, value: str) -> str:
        """`value` with every secret replaced by `REDACTED`."""
        for secret in self.secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value

    def value(self, value: AttributeValue) -> AttributeValue:
        """An attribute value with secrets redacted from its strings."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, bool | int | float):
            return value
        return tuple(self.text(str(item)) for item in value)

    def attributes(self, attributes: Mapping[str, AttributeValue]) -> dict[str, AttributeValue]:
        """Check every name against the allowlist and redact every value.

        Errors: `UnknownSpanAttribute` for a name not in `ALLOWED_ATTRIBUTES`.
        """
        for name in attributes:
            if name not in ALLOWED_ATTRIBUTES:
                raise UnknownSpanAttribute(name)
        return {name: self.value(value) for name, value in attributes.items()}


NO_SECRETS = Redactor()
"""A redactor for resources without secret fields."""


def _values_at(data: Any, paths: tuple[tuple[str, ...], ...]) -> Iterator[Any]:
    if isinstance(data, Mapping):
        for path in paths:
            node: Any = data
            for key in path:
                if not isinstance(node, Mapping) or key not in node:
                    break
                node = node[key]
            else:
                yield node
        for child in data.values():
            yield from _values_at(child, paths)
    elif isinstance(data, list | tuple):
        for item in data:
            yield from _values_at(item, paths)


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _texts(item)
    elif isinstance(value, bool) or value is None:
        return
    else:
        yield str(value)
