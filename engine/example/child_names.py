"""Names and label values derived from a Site's name, valid whatever that name is.

A Site's name is a DNS-1123 subdomain of up to 253 characters (dots allowed, a digit
first allowed). `<name>-config` can pass 253 characters, a Service name must be a
DNS-1035 label (at most 63, a letter first, no dots), and a label value at most 63. A
derived name that would be invalid is shortened with a hash of the full name, so it
stays unique and deterministic; a name that fits is kept as it reads.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

SUBDOMAIN_MAX: Final = 253
LABEL_MAX: Final = 63
_DIGEST_CHARS: Final = 10
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:_DIGEST_CHARS]


def _label_safe(text: str) -> str:
    """`text` lowercased with every character a DNS-1035 label refuses turned into '-'."""
    return re.sub(r"[^a-z0-9-]", "-", text.lower())


def is_subdomain(name: str) -> bool:
    """A valid DNS-1123 subdomain (ConfigMap and most object names)."""
    return len(name) <= SUBDOMAIN_MAX and _SUBDOMAIN.match(name) is not None


def is_dns1035_label(name: str) -> bool:
    """A valid DNS-1035 label (Service names)."""
    return len(name) <= LABEL_MAX and _DNS1035_LABEL.match(name) is not None


def is_label_value(value: str) -> bool:
    """A valid label value (empty allowed)."""
    return len(value) <= LABEL_MAX and _LABEL_VALUE.match(value) is not None


def subdomain_child(owner: str, suffix: str) -> str:
    """`<owner>-<suffix>` when it is a DNS-1123 subdomain, else `<owner cut>-<hash>-<suffix>`
    within 253 characters."""
    plain = f"{owner}-{suffix}"
    if is_subdomain(plain):
        return plain
    room = SUBDOMAIN_MAX - len(suffix) - _DIGEST_CHARS - 2
    cleaned = re.sub(r"[^a-z0-9.-]", "-", owner.lower())[:room]
    # every dot-separated part must be a non-empty label that starts and ends alphanumeric
    head = ".".join(part.strip("-") for part in cleaned.split(".") if part.strip("-"))
    return f"{head}-{_digest(owner)}-{suffix}" if head else f"{_digest(owner)}-{suffix}"


def label_child(owner: str, suffix: str) -> str:
    """`<owner>-<suffix>` when it is a DNS-1035 label, else a valid label of at most 63
    characters: the owner's name made label-safe and cut, a hash, the suffix."""
    plain = f"{owner}-{suffix}"
    if is_dns1035_label(plain):
        return plain
    room = LABEL_MAX - len(suffix) - _DIGEST_CHARS - 2
    head = _label_safe(owner)[:room].strip("-")
    if head and not head[0].isalpha():
        head = f"s{head[: room - 1]}".rstrip("-")
    name = f"{head}-{_digest(owner)}-{suffix}" if head else f"s{_digest(owner)}-{suffix}"
    return name


def label_value(owner: str) -> str:
    """`owner` when it is a valid label value, else its first characters and a hash
    (at most 63 characters, beginning and ending alphanumeric)."""
    if is_label_value(owner):
        return owner
    room = LABEL_MAX - _DIGEST_CHARS - 1
    head = re.sub(r"[^A-Za-z0-9_.-]", "-", owner)[:room]
    head = re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", head)
    return f"{head}-{_digest(owner)}" if head else _digest(owner)
