"""The failure an authenticator raises for a token it recognises but rejects."""

from __future__ import annotations


class TokenRejected(Exception):
    """A token meant for this authenticator that is invalid (expired, wrongly signed, for
    another audience) or could not be checked (the reviewer is down); the request gets
    401 Unauthorized and the reason goes to the server's log, not to the client."""
