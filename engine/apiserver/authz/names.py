"""Names of RBAC objects: upstream validates them as path segments (so `system:discovery`
is valid), not as DNS subdomains."""

from __future__ import annotations

RBAC_GROUP = "rbac.authorization.k8s.io"


def path_segment_problem(name: str) -> str | None:
    """None when `name` may be an RBAC object's name, else upstream's explanation."""
    if not name:
        return "name or generateName is required"
    if name in (".", ".."):
        return f"may not be '{name}'"
    for bad in ("/", "%"):
        if bad in name:
            return f"may not contain '{bad}'"
    return None
