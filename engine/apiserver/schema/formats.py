"""The string `format`s a Kubernetes CRD schema may check, as a jsonschema FormatChecker.

Mirrors the formats kube-openapi validates for custom resources; unknown formats (and
non-string values) pass, as they do in Kubernetes.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Callable
from datetime import date, datetime
from urllib.parse import urlsplit

from jsonschema import FormatChecker

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)
_DATE_TIME = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$", re.ASCII
)
_UUID = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-([0-9a-f])[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I
)
_MAC = re.compile(
    r"^([0-9a-f]{2}([:-])[0-9a-f]{2}(\2[0-9a-f]{2}){4}((\2[0-9a-f]{2}){2}|(\2[0-9a-f]{2}){14})?"
    r"|[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4})$",
    re.I,
)
_HOST_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", re.I)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_DURATION = re.compile(r"^[-+]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d|w))+$")
_HEX_COLOR = re.compile(r"^#?([0-9a-f]{3}|[0-9a-f]{6})$", re.I)
_RGB_COLOR = re.compile(r"^rgb\(\s*\d{1,3}\s*,\s*\d{1,3}\s*,\s*\d{1,3}\s*\)$")


def _is_date(text: str) -> bool:
    if not _DATE.match(text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _is_date_time(text: str) -> bool:
    match = _DATE_TIME.match(text)
    if not match:
        return False
    day, clock, fraction, zone = match.groups()
    zone = "+00:00" if zone in ("Z", "z") else zone
    micros = (fraction or ".0")[:7]  # Python parses at most microseconds
    try:
        datetime.fromisoformat(f"{day}T{clock}{micros}{zone}")
    except ValueError:
        return False
    return True


def _is_uuid_version(version: str | None) -> Callable[[str], bool]:
    def check(text: str) -> bool:
        match = _UUID.match(text)
        return match is not None and (version is None or match.group(1) == version)

    return check


def _is_ip(
    kind: type[ipaddress.IPv4Address] | type[ipaddress.IPv6Address],
) -> Callable[[str], bool]:
    def check(text: str) -> bool:
        try:
            kind(text)
        except ValueError:
            return False
        return True

    return check


def _is_cidr(text: str) -> bool:
    if "/" not in text:
        return False
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def _is_hostname(text: str) -> bool:
    return 0 < len(text) <= 255 and all(_HOST_LABEL.match(p) for p in text.split("."))


def _is_uri(text: str) -> bool:
    # Go's url.ParseRequestURI: an absolute URI or an absolute path, no whitespace.
    if not text or any(c.isspace() for c in text):
        return False
    if text.startswith("/"):
        return True
    try:
        parts = urlsplit(text)
    except ValueError:
        return False
    return bool(parts.scheme) and bool(parts.netloc or parts.path)


def _is_byte(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


_CHECKS: dict[str, Callable[[str], bool]] = {
    "byte": _is_byte,
    "date": _is_date,
    "date-time": _is_date_time,
    "datetime": _is_date_time,
    "uuid": _is_uuid_version(None),
    "uuid3": _is_uuid_version("3"),
    "uuid4": _is_uuid_version("4"),
    "uuid5": _is_uuid_version("5"),
    "ipv4": _is_ip(ipaddress.IPv4Address),
    "ipv6": _is_ip(ipaddress.IPv6Address),
    "cidr": _is_cidr,
    "mac": lambda text: bool(_MAC.match(text)),
    "hostname": _is_hostname,
    "email": lambda text: bool(_EMAIL.match(text)),
    "uri": _is_uri,
    "duration": lambda text: text == "0" or bool(_DURATION.match(text)),
    "hexcolor": lambda text: bool(_HEX_COLOR.match(text)),
    "rgbcolor": lambda text: bool(_RGB_COLOR.match(text)),
}


def _string_check(check: Callable[[str], bool]) -> Callable[[object], bool]:
    return lambda value: not isinstance(value, str) or check(value)


def _checker() -> FormatChecker:
    checker = FormatChecker(formats=())
    for name, check in _CHECKS.items():
        checker.checks(name)(_string_check(check))
    return checker


KUBERNETES_FORMATS = _checker()
"""Read-only after import: the format checker every compiled CRD validator shares."""
