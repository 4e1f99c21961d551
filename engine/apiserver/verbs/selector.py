"""Label and field selectors: the Kubernetes grammars, parsed once, matched per object.

Labels: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, `k>1`, `k<1`,
comma means AND, whitespace is ignored. Fields: `path=v`, `path==v`, `path!=v` on dotted
paths into the object, with `\\`, `\\,` and `\\=` escapes; a missing field reads as "".
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_SPECIAL = "!=,()<>"
_OPERATORS = ("==", "!=", "=", "<", ">", "!", ",", "(", ")")


class SelectorError(ValueError):
    """A selector that does not parse; the message names the offending part."""


@dataclass(frozen=True)
class Requirement:
    """One comma-separated term of a label selector.

    `operator` is one of `=`, `!=`, `in`, `notin`, `exists`, `!`, `>`, `<` (`==` parses
    as `=`); `values` is sorted and de-duplicated, as Kubernetes keeps it.
    """

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        match self.operator:
            case "=" | "in":
                return present and value in self.values
            case "!=" | "notin":
                return not present or value not in self.values
            case "exists":
                return present
            case "!":
                return not present
            case _:
                return present and _compare(value, self.operator, self.values[0])

    def __str__(self) -> str:
        match self.operator:
            case "exists":
                return self.key
            case "!":
                return f"!{self.key}"
            case "in" | "notin":
                return f"{self.key} {self.operator} ({','.join(self.values)})"
            case _:
                return f"{self.key}{self.operator}{self.values[0]}"


@dataclass(frozen=True)
class LabelSelector:
    """All `requirements` must hold (sorted by key); no requirements matches everything."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


@dataclass(frozen=True)
class FieldTerm:
    """`key operator value` with `operator` one of `=`, `!=` (`==` parses as `=`)."""

    key: str
    operator: str
    value: str

    def matches(self, obj: Mapping[str, Any]) -> bool:
        equal = field_value(obj, self.key) == self.value
        return equal if self.operator == "=" else not equal

    def __str__(self) -> str:
        return f"{_escape(self.key)}{self.operator}{_escape(self.value)}"


@dataclass(frozen=True)
class FieldSelector:
    """All `terms` must hold; no terms matches everything."""

    terms: tuple[FieldTerm, ...] = ()

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return all(t.matches(obj) for t in self.terms)

    @property
    def empty(self) -> bool:
        return not self.terms

    @property
    def keys(self) -> tuple[str, ...]:
        """The field paths used, so a caller can refuse the ones it does not support."""
        return tuple(t.key for t in self.terms)

    def __str__(self) -> str:
        return ",".join(str(t) for t in self.terms)


def parse_label_selector(text: str) -> LabelSelector:
    """Parse a `labelSelector` query value; raises SelectorError naming the bad part."""
    tokens = list(_tokens(text))
    requirements: list[Requirement] = []
    position = 0
    while position < len(tokens):
        requirement, position = _requirement(tokens, position, text)
        requirements.append(requirement)
        if position < len(tokens):
            if tokens[position] != ",":
                raise _unexpected(tokens[position], "',' or 'end of string'", text)
            position += 1
            if position == len(tokens):
                raise _unexpected("end of string", "a label key", text)
    return LabelSelector(tuple(sorted(requirements, key=lambda r: r.key)))


def parse_field_selector(text: str) -> FieldSelector:
    """Parse a `fieldSelector` query value; raises SelectorError naming the bad part."""
    if not text.strip():
        return FieldSelector()
    terms = []
    for raw in _split_unescaped(text, ","):
        key, operator, value = _split_term(raw)
        if not key.strip():
            raise SelectorError(f"invalid field selector {text!r}: {raw!r} has no field name")
        terms.append(FieldTerm(_unescape(key.strip(), text), operator, _unescape(value, text)))
    return FieldSelector(tuple(terms))


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """The value at dotted `path` as a field selector compares it ("" when missing)."""
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return ""
        node = node[part]
    if isinstance(node, bool):
        return "true" if node else "false"
    if isinstance(node, str | int | float):
        return str(node)
    return ""


def _tokens(text: str) -> Iterator[str]:
    position = 0
    while position < len(text):
        char = text[position]
        if char.isspace():
            position += 1
            continue
        operator = next((op for op in _OPERATORS if text.startswith(op, position)), None)
        if operator is not None:
            yield operator
            position += len(operator)
            continue
        end = position
        while end < len(text) and not text[end].isspace() and text[end] not in _SPECIAL:
            end += 1
        yield text[position:end]
        position = end


def _is_word(token: str) -> bool:
    return token not in _OPERATORS


def _requirement(tokens: list[str], position: int, text: str) -> tuple[Requirement, int]:
    if tokens[position] == "!":
        key = _key(tokens, position + 1, text)
        return Requirement(key, "!"), position + 2
    key = _key(tokens, position, text)
    position += 1
    if position == len(tokens) or tokens[position] == ",":
        return Requirement(key, "exists"), position
    operator = tokens[position]
    position += 1
    if operator in ("in", "notin"):
        values, position = _value_list(tokens, position, text)
        return Requirement(key, operator, values), position
    if operator in ("=", "==", "!="):
        value = ""
        if position < len(tokens) and _is_word(tokens[position]):
            value = tokens[position]
            position += 1
        _check_value(value, text)
        return Requirement(key, "!=" if operator == "!=" else "=", (value,)), position
    if operator in ("<", ">"):
        if position == len(tokens) or not re.fullmatch(r"-?\d+", tokens[position]):
            found = tokens[position] if position < len(tokens) else "end of string"
            raise _unexpected(found, f"an integer after '{operator}'", text)
        return Requirement(key, operator, (tokens[position],)), position + 1
    raise _unexpected(operator, "'=', '!=', '==', 'in', 'notin', '<', '>' or ','", text)


def _key(tokens: list[str], position: int, text: str) -> str:
    if position == len(tokens) or not _is_word(tokens[position]):
        found = tokens[position] if position < len(tokens) else "end of string"
        raise _unexpected(found, "a label key", text)
    key = tokens[position]
    problem = _key_problem(key)
    if problem:
        raise SelectorError(
            f"invalid label selector {text!r}: invalid label key {key!r}: {problem}"
        )
    return key


def _value_list(tokens: list[str], position: int, text: str) -> tuple[tuple[str, ...], int]:
    if position == len(tokens) or tokens[position] != "(":
        found = tokens[position] if position < len(tokens) else "end of string"
        raise _unexpected(found, "'('", text)
    position += 1
    values: set[str] = set()
    current = ""
    while True:
        if position == len(tokens):
            raise _unexpected("end of string", "')'", text)
        token = tokens[position]
        position += 1
        if token == ")":
            values.add(current)
            return tuple(sorted(values)), position
        if token == ",":
            values.add(current)
            current = ""
        elif _is_word(token) and not current:
            current = token
        else:
            raise _unexpected(token, "a value, ',' or ')'", text)
        if current:
            _check_value(current, text)


def _key_problem(key: str) -> str | None:
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or len(prefix) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(prefix)):
        return "prefix part must be a lowercase RFC 1123 subdomain"
    if len(name) > 63:
        return "name part must be no more than 63 characters"
    if not _QUALIFIED_NAME.fullmatch(name):
        return (
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must "
            "start and end with an alphanumeric character"
        )
    return None


def _check_value(value: str, text: str) -> None:
    if value and (len(value) > 63 or not _QUALIFIED_NAME.fullmatch(value)):
        raise SelectorError(
            f"invalid label selector {text!r}: invalid label value {value!r}: must be 63 "
            "characters or less and consist of alphanumeric characters, '-', '_' or '.', "
            "starting and ending with an alphanumeric character"
        )


def _compare(value: str | None, operator: str, bound: str) -> bool:
    try:
        number = int(value or "")
    except ValueError:
        return False
    return number > int(bound) if operator == ">" else number < int(bound)


def _unexpected(found: str, expected: str, text: str) -> SelectorError:
    return SelectorError(
        f"unable to parse requirement in label selector {text!r}: found {found!r}, "
        f"expected: {expected}"
    )


def _split_unescaped(text: str, separator: str) -> list[str]:
    parts, current, escaped = [], "", False
    for char in text:
        if escaped:
            current += "\\" + char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == separator:
            parts.append(current)
            current = ""
        else:
            current += char
    if escaped:
        current += "\\"
    parts.append(current)
    return parts


def _split_term(term: str) -> tuple[str, str, str]:
    index = 0
    while index < len(term):
        if term[index] == "\\":
            index += 2
            continue
        for operator in ("!=", "==", "="):
            if term.startswith(operator, index):
                normal = "=" if operator == "==" else operator
                return term[:index], normal, term[index + len(operator) :]
        index += 1
    raise SelectorError(f"invalid field selector: {term!r}; can't understand {term!r}")


def _unescape(text: str, selector: str) -> str:
    out, index = "", 0
    while index < len(text):
        char = text[index]
        if char == "\\":
            following = text[index + 1 : index + 2]
            if following not in ("\\", ",", "="):
                raise SelectorError(
                    f"invalid field selector {selector!r}: invalid escape sequence "
                    f"'\\{following}' (escape only '\\', ',' and '=')"
                )
            out += following
            index += 2
        else:
            out += char
            index += 1
    return out


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")
