"""Static bearer tokens: the administrator token the server writes into its kubeconfig,
and a kube-apiserver `--token-auth-file` (CSV lines `token,user,uid,"group1,group2"`)."""

from __future__ import annotations

import csv
import hmac
from collections.abc import Mapping
from pathlib import Path

from engine.apiserver.authn.user_info import UserInfo


class TokenFileError(ValueError):
    """A token file that cannot be read or has a malformed line."""


def read_token_file(path: Path) -> dict[str, UserInfo]:
    """The users of a `--token-auth-file`; TokenFileError names the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise TokenFileError(f"--token-auth-file {path}: {error.strerror or error}") from None
    users: dict[str, UserInfo] = {}
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or row[0].startswith("#"):
            continue
        if len(row) < 3 or not row[0] or not row[1]:
            raise TokenFileError(
                f"--token-auth-file {path} line {number}: expected token,user,uid[,groups]"
            )
        groups = tuple(g.strip() for g in row[3].split(",") if g.strip()) if len(row) > 3 else ()
        users[row[0]] = UserInfo(row[1], uid=row[2], groups=groups).with_authenticated()
    return users


class StaticTokens:
    """Authenticates a token by constant-time comparison with each known token."""

    def __init__(self, users: Mapping[str, UserInfo]) -> None:
        self._users = dict(users)

    async def authenticate(self, token: str) -> UserInfo | None:
        """The token's user, or None when it is not one of these tokens."""
        found = None
        for known, user in self._users.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                found = user
        return found
