"""The webhooks of stored Validating/MutatingWebhookConfigurations, parsed with
upstream's defaults (failurePolicy Fail, matchPolicy Equivalent, timeoutSeconds 10,
selectors that select everything, scope `*`), in the order the server calls them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.apiserver.admission.match_conditions import compile_problem

GROUP = "admissionregistration.k8s.io"
VALIDATING_PREFIX = f"{GROUP}/validatingwebhookconfigurations/"
MUTATING_PREFIX = f"{GROUP}/mutatingwebhookconfigurations/"
DEFAULT_TIMEOUT = 10
MAX_TIMEOUT = 30


@dataclass(frozen=True)
class Rule:
    """One RuleWithOperations: which operations on which resources it names."""

    operations: tuple[str, ...]
    api_groups: tuple[str, ...]
    api_versions: tuple[str, ...]
    resources: tuple[str, ...]
    scope: str = "*"


@dataclass(frozen=True)
class Webhook:
    """One webhook of a configuration, defaults applied."""

    name: str
    configuration: str
    mutating: bool
    client_config: Mapping[str, Any]
    rules: tuple[Rule, ...]
    failure_policy: str = "Fail"
    match_policy: str = "Equivalent"
    namespace_selector: Mapping[str, Any] | None = None
    object_selector: Mapping[str, Any] | None = None
    side_effects: str = ""
    timeout_seconds: int = DEFAULT_TIMEOUT
    review_versions: tuple[str, ...] = ()
    match_conditions: tuple[Mapping[str, Any], ...] = ()
    reinvocation_policy: str = "Never"


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(item) for item in value) if isinstance(value, list) else ()


def _rule(raw: Mapping[str, Any]) -> Rule:
    return Rule(
        operations=_strings(raw.get("operations")),
        api_groups=_strings(raw.get("apiGroups")),
        api_versions=_strings(raw.get("apiVersions")),
        resources=_strings(raw.get("resources")),
        scope=str(raw.get("scope") or "*"),
    )


def _mapping(raw: Any) -> Mapping[str, Any] | None:
    return raw if isinstance(raw, Mapping) else None


def _timeout(raw: Any) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return min(max(raw, 1), MAX_TIMEOUT)
    return DEFAULT_TIMEOUT


def webhooks_of(configuration: Mapping[str, Any], *, mutating: bool) -> list[Webhook]:
    """The webhooks one configuration object declares, in its order."""
    name = str((configuration.get("metadata") or {}).get("name", ""))
    found = []
    for raw in configuration.get("webhooks") or ():
        if not isinstance(raw, Mapping):
            continue
        found.append(
            Webhook(
                name=str(raw.get("name", "")),
                configuration=name,
                mutating=mutating,
                client_config=raw.get("clientConfig") or {},
                rules=tuple(_rule(r) for r in raw.get("rules") or () if isinstance(r, Mapping)),
                failure_policy=str(raw.get("failurePolicy") or "Fail"),
                match_policy=str(raw.get("matchPolicy") or "Equivalent"),
                namespace_selector=_mapping(raw.get("namespaceSelector")),
                object_selector=_mapping(raw.get("objectSelector")),
                side_effects=str(raw.get("sideEffects") or ""),
                timeout_seconds=_timeout(raw.get("timeoutSeconds")),
                review_versions=_strings(raw.get("admissionReviewVersions")),
                match_conditions=tuple(raw.get("matchConditions") or ()),
                reinvocation_policy=str(raw.get("reinvocationPolicy") or "Never"),
            )
        )
    return found


def ordered_webhooks(
    configurations: Iterable[tuple[str, Mapping[str, Any]]], *, mutating: bool
) -> tuple[Webhook, ...]:
    """Every webhook of `configurations` ((key, object) pairs): configurations by name,
    then each one's webhooks in declared order, as kube-apiserver calls them."""
    by_name = sorted(configurations, key=lambda pair: str(pair[1]["metadata"].get("name", "")))
    return tuple(hook for _, obj in by_name for hook in webhooks_of(obj, mutating=mutating))


def defaulted_configuration(obj: dict[str, Any], *, mutating: bool) -> dict[str, Any]:
    """A configuration with upstream's defaults written in (changed in place), so that
    `kubectl get -o yaml` shows what the server will do."""
    for hook in obj.get("webhooks") or ():
        if not isinstance(hook, dict):
            continue
        hook.setdefault("failurePolicy", "Fail")
        hook.setdefault("matchPolicy", "Equivalent")
        hook.setdefault("namespaceSelector", {})
        hook.setdefault("objectSelector", {})
        hook.setdefault("timeoutSeconds", DEFAULT_TIMEOUT)
        if mutating:
            hook.setdefault("reinvocationPolicy", "Never")
        for rule in hook.get("rules") or ():
            if isinstance(rule, dict):
                rule.setdefault("scope", "*")
    return obj


def configuration_problems(obj: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field, message) for each rule upstream validation enforces that `obj` breaks."""
    problems: list[tuple[str, str]] = []
    names: set[str] = set()
    for index, hook in enumerate(obj.get("webhooks") or ()):
        at = f"webhooks[{index}]"
        if not isinstance(hook, Mapping):
            problems.append((at, "Invalid value: must be an object"))
            continue
        name = str(hook.get("name") or "")
        if not name:
            problems.append((f"{at}.name", "Required value"))
        elif name in names:
            problems.append((f"{at}.name", f'Duplicate value: "{name}"'))
        names.add(name)
        side = hook.get("sideEffects")
        if side not in ("None", "NoneOnDryRun"):
            shown = "Required value" if side is None else f'Unsupported value: "{side}"'
            problems.append(
                (
                    f"{at}.sideEffects",
                    f'{shown}: supported values: "None", "NoneOnDryRun"',
                )
            )
        versions = _strings(hook.get("admissionReviewVersions"))
        if not versions:
            problems.append(
                (
                    f"{at}.admissionReviewVersions",
                    "Required value: must specify one of v1, v1beta1",
                )
            )
        timeout = hook.get("timeoutSeconds")
        if timeout is not None and (not isinstance(timeout, int) or not 1 <= timeout <= 30):
            problems.append(
                (
                    f"{at}.timeoutSeconds",
                    f"Invalid value: {timeout}: the timeout value must be between 1 and 30 seconds",
                )
            )
        problems.extend(_client_config_problems(hook.get("clientConfig"), f"{at}.clientConfig"))
        problems.extend(_condition_problems(hook.get("matchConditions"), f"{at}.matchConditions"))
        for key in ("namespaceSelector", "objectSelector"):
            selector = hook.get(key)
            if selector is not None and not _selector_ok(selector):
                problems.append((f"{at}.{key}", "Invalid value: must be a label selector"))
        for key, allowed in (("failurePolicy", ("Fail", "Ignore")),
                             ("matchPolicy", ("Exact", "Equivalent")),
                             ("reinvocationPolicy", ("Never", "IfNeeded"))):  # fmt: skip
            value = hook.get(key)
            if value is not None and value not in allowed:
                listed = ", ".join(f'"{a}"' for a in allowed)
                problems.append(
                    (f"{at}.{key}", f'Unsupported value: "{value}": supported values: {listed}')
                )
    return problems


def _condition_problems(conditions: Any, at: str) -> list[tuple[str, str]]:
    if conditions is None:
        return []
    if not isinstance(conditions, list) or len(conditions) > 64:
        return [(at, "Invalid value: must be a list of at most 64 conditions")]
    problems: list[tuple[str, str]] = []
    for index, condition in enumerate(conditions):
        here = f"{at}[{index}]"
        if not isinstance(condition, Mapping) or not condition.get("name"):
            problems.append((f"{here}.name", "Required value"))
            continue
        expression = str(condition.get("expression") or "")
        problem = compile_problem(expression) if expression else "Required value"
        if problem is not None:
            problems.append(
                (
                    f"{here}.expression",
                    f'Invalid value: "{expression}": compilation failed: {problem}',
                )
            )
    return problems


def _selector_ok(selector: Any) -> bool:
    if not isinstance(selector, Mapping) or not isinstance(
        selector.get("matchLabels") or {}, Mapping
    ):
        return False
    expressions = selector.get("matchExpressions") or []
    operators = ("In", "NotIn", "Exists", "DoesNotExist")
    return isinstance(expressions, list) and all(
        isinstance(e, Mapping) and e.get("key") and e.get("operator") in operators
        for e in expressions
    )


def _client_config_problems(config: Any, at: str) -> list[tuple[str, str]]:
    if not isinstance(config, Mapping):
        return [(at, "Required value")]
    url, service = config.get("url"), config.get("service")
    if bool(url) == bool(service):
        return [(at, "Required value: exactly one of url or service is required")]
    if url and not str(url).startswith("https://"):
        return [(f"{at}.url", f"Invalid value: \"{url}\": 'https' is the only allowed URL scheme")]
    return []
