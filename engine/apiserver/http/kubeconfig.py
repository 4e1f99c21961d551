"""Write a kubeconfig that points kubectl and kubernetes-asyncio at the embedded server."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import yaml

from engine.apiserver.http.auth import LOCAL_TOKEN

CONTEXT = "engine-apiserver"


def write_kubeconfig(
    path: Path,
    *,
    url: str,
    token: str = LOCAL_TOKEN,
    namespace: str = "default",
    ca_pem: bytes | None = None,
) -> None:
    """Write (mode 0600) a kubeconfig with one cluster, user and current context for `url`.

    `token` is the bearer token the server requires off loopback; on loopback the server
    does not authenticate and the placeholder only keeps clients that insist on
    credentials content. `ca_pem` (an HTTPS server's CA) becomes certificate-authority-data.
    """
    cluster: dict[str, str] = {"server": url}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": cluster}],
        "users": [{"name": CONTEXT, "user": {"token": token}}],
        "contexts": [
            {
                "name": CONTEXT,
                "context": {"cluster": CONTEXT, "user": CONTEXT, "namespace": namespace},
            }
        ],
        "current-context": CONTEXT,
        "preferences": {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        yaml.safe_dump(config, out, sort_keys=False)
