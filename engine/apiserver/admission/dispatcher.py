"""The webhook dispatcher: the stored configurations (re-read when one changes), and the
calls for one request: mutating webhooks one after the other, each seeing the previous
one's result, validating webhooks in parallel; failurePolicy, dryRun and sideEffects,
denials with the webhook's code and message, and counts of calls, denials and errors."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from engine.apiserver.admission import conversion
from engine.apiserver.admission.client import CallFailed, WebhookClient
from engine.apiserver.admission.configurations import (
    GROUP,
    MUTATING_PREFIX,
    VALIDATING_PREFIX,
    Webhook,
    ordered_webhooks,
)
from engine.apiserver.admission.match_conditions import conditions_match
from engine.apiserver.admission.matching import (
    RequestedResource,
    matched_type,
    namespace_selected,
    objects_selected,
)
from engine.apiserver.admission.patching import internal_error, patched
from engine.apiserver.admission.review import AdmissionAttributes, review_request, verified_answer
from engine.apiserver.store.errors import ApiError
from engine.apiserver.store.resource_types import ResourceType
from engine.apiserver.store.storage import Change, Store

LOG = logging.getLogger(__name__)


def denied(name: str, status: Mapping[str, Any]) -> ApiError:
    """The refusal a webhook's Status becomes (upstream's ToStatusErr)."""
    code = status.get("code")
    code = code if isinstance(code, int) and code >= 400 else 403
    prefix = f'admission webhook "{name}" denied the request'
    if status.get("message"):
        message = f"{prefix}: {status['message']}"
    elif status.get("reason"):
        message = f"{prefix}: {status['reason']}"
    else:
        message = f"{prefix} without explanation"
    error = ApiError(code, message, details=status.get("details") or None)
    error.reason = str(status.get("reason") or "")
    return error


class Webhooks:
    """The webhooks a server calls: kept current from the store, called through one client.

    `counts` holds (webhook name, "call" | "skipped" | "denied" | "error" | "ignored")
    -> number ("skipped": its matchConditions left the request out)."""

    def __init__(self, store: Store) -> None:
        self.client = WebhookClient()
        self.counts: Counter[tuple[str, str]] = Counter()
        self._store = store
        self._mutating: tuple[Webhook, ...] = ()
        self._validating: tuple[Webhook, ...] = ()
        self._reload()
        store.add_listener(self._on_changes)

    def _reload(self) -> None:
        self._mutating = ordered_webhooks(self._store.items(MUTATING_PREFIX), mutating=True)
        self._validating = ordered_webhooks(self._store.items(VALIDATING_PREFIX), mutating=False)

    def _on_changes(self, changes: Sequence[Change]) -> None:
        if any(c.key.startswith((MUTATING_PREFIX, VALIDATING_PREFIX)) for c in changes):
            self._reload()

    @property
    def configured(self) -> bool:
        """Whether any admission webhook is configured at all (the cheap common check)."""
        return bool(self._mutating or self._validating)

    async def close(self) -> None:
        """Close the HTTP session."""
        await self.client.close()

    def _matching(
        self,
        hooks: Sequence[Webhook],
        attrs: AdmissionAttributes,
        equivalents: Sequence[ResourceType],
        obj: Mapping[str, Any] | None,
        old: Mapping[str, Any] | None,
    ) -> list[tuple[Webhook, ResourceType]]:
        if attrs.rtype.group == GROUP:  # never on the configurations: no webhook can lock them
            return []
        request = RequestedResource(attrs.operation, attrs.rtype, attrs.subresource)
        namespace = None
        if attrs.rtype.namespaced:
            stored = self._store.get(f"/namespaces//{attrs.namespace}") or {}
            namespace = (stored.get("metadata") or {}).get("labels") or {}
        found = []
        for hook in hooks:
            called_as = matched_type(hook, request, equivalents)
            if called_as is None:
                continue
            if not namespace_selected(hook, attrs.rtype, namespace, obj, old):
                continue
            if not objects_selected(hook, obj, old):
                continue
            if attrs.dry_run and hook.side_effects not in ("None", "NoneOnDryRun"):
                raise ApiError(400, f'admission webhook "{hook.name}" does not support dry run')
            found.append((hook, called_as))
        return found

    async def _answer(
        self,
        hook: Webhook,
        attrs: AdmissionAttributes,
        called_as: ResourceType,
        obj: dict[str, Any] | None,
        old: dict[str, Any] | None,
    ) -> tuple[dict[str, Any] | None, tuple[str, ...]] | None:
        """(the object after this webhook, its warnings), or None when its
        matchConditions leave it out or it failed under failurePolicy Ignore. Raises the
        refusal or the failure."""
        self.counts[(hook.name, "call")] += 1
        try:
            if "v1" not in hook.review_versions:
                raise CallFailed("webhook does not accept known AdmissionReview versions (v1)")
            sent_obj, sent_old = obj, old
            if called_as is not attrs.rtype:
                sent_obj, sent_old = await self._as_version(called_as, obj, old)
            sent = review_request(attrs, called_as, sent_obj, sent_old)
            if hook.match_conditions and not conditions_match(
                hook.match_conditions, obj=sent_obj, old=sent_old, request=sent["request"]
            ):
                self.counts[(hook.name, "skipped")] += 1
                return None
            raw = await self.client.post(hook.client_config, sent, seconds=hook.timeout_seconds)
            try:
                answer = verified_answer(sent, raw)
            except (TypeError, ValueError, AttributeError) as odd:
                raise CallFailed(f"received invalid webhook response: {odd}") from None
            if not answer.allowed:
                self.counts[(hook.name, "denied")] += 1
                raise denied(hook.name, answer.status)
            result = obj
            if hook.mutating and answer.patch and sent_obj is not None:
                result = patched(sent_obj, answer.patch, answer.patch_type)
                if called_as is not attrs.rtype:
                    back = await conversion.converted(
                        self.client, attrs.rtype, [result], attrs.rtype.version
                    )
                    result = back[0]
            return result, answer.warnings
        except CallFailed as failed:
            self.counts[(hook.name, "error")] += 1
            if hook.failure_policy == "Ignore":
                self.counts[(hook.name, "ignored")] += 1
                LOG.warning("webhook %s failed, ignored (failurePolicy Ignore): %s", hook.name,
                            failed)  # fmt: skip
                return None
            raise internal_error(f'failed calling webhook "{hook.name}": {failed}') from None
        except ApiError as error:
            if error.code >= 500:
                self.counts[(hook.name, "error")] += 1
            raise

    async def _as_version(
        self, rtype: ResourceType, obj: dict[str, Any] | None, old: dict[str, Any] | None
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        present = [o for o in (obj, old) if o is not None]
        shown = iter(await conversion.converted(self.client, rtype, present, rtype.version))
        return (next(shown) if obj is not None else None), (
            next(shown) if old is not None else None
        )

    async def mutate(
        self,
        attrs: AdmissionAttributes,
        obj: dict[str, Any] | None,
        old: dict[str, Any] | None,
        equivalents: Sequence[ResourceType],
    ) -> tuple[dict[str, Any] | None, tuple[str, ...]]:
        """The object after every matching mutating webhook, in order, and their warnings.

        A webhook with `reinvocationPolicy: IfNeeded` is called once more, after the
        first pass, when a later webhook changed the object after it was called."""
        warnings: list[str] = []
        matching = self._matching(self._mutating, attrs, equivalents, obj, old)
        seen_after: list[dict[str, Any] | None] = []
        for hook, called_as in matching:
            answered = await self._answer(hook, attrs, called_as, obj, old)
            if answered is not None:
                obj = answered[0] if attrs.operation != "DELETE" else obj
                warnings.extend(answered[1])
            seen_after.append(obj)
        for (hook, called_as), after in zip(matching, seen_after, strict=True):
            if hook.reinvocation_policy != "IfNeeded" or after == obj:
                continue
            answered = await self._answer(hook, attrs, called_as, obj, old)
            if answered is not None:
                obj = answered[0] if attrs.operation != "DELETE" else obj
                warnings.extend(answered[1])
        return obj, tuple(warnings)

    async def validate(
        self,
        attrs: AdmissionAttributes,
        obj: dict[str, Any] | None,
        old: dict[str, Any] | None,
        equivalents: Sequence[ResourceType],
    ) -> tuple[str, ...]:
        """Call every matching validating webhook at once; the first refusal or failure (in
        webhook order) is raised. Returns their warnings."""
        matching = self._matching(self._validating, attrs, equivalents, obj, old)
        if not matching:
            return ()
        outcomes = await asyncio.gather(
            *(self._answer(hook, attrs, called_as, obj, old) for hook, called_as in matching),
            return_exceptions=True,
        )
        warnings: list[str] = []
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
            if outcome is not None:
                warnings.extend(outcome[1])
        return tuple(warnings)
