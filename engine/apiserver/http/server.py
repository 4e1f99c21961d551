"""Run the API server as a program until SIGTERM or SIGINT, announcing where it listens."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path

from engine.apiserver.http.auth import is_loopback
from engine.apiserver.http.embedded import serve_apiserver
from engine.apiserver.http.security import SecurityOptions
from engine.apiserver.kubelet.pod_stages import KubeletSettings


async def run_apiserver(
    *,
    db: str,
    host: str,
    port: int,
    kubeconfig_path: Path,
    audit_log: Path | None,
    announce: Callable[[str], None],
    kubelet: KubeletSettings | None = None,
    security: SecurityOptions | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT; `announce` gets one line with the URL and kubectl usage."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with serve_apiserver(
            db=db,
            host=host,
            port=port,
            kubeconfig_path=kubeconfig_path,
            audit_log=audit_log,
            kubelet=kubelet,
            security=security,
        ) as running:
            announce(
                f"API server listening on {running.url} (port {running.port}); "
                f"use: kubectl --kubeconfig {running.kubeconfig_path} get namespaces"
            )
            if running.plain_url != running.url:
                announce(f"plain HTTP on {running.plain_url} (loopback only)")
            if security is not None and security.rbac:
                announce(
                    "authorization: RBAC; the kubeconfig's user is in system:masters (an "
                    "administrator)"
                )
                if running.url.startswith("http:"):
                    announce(
                        "kubectl sends no bearer token over plain HTTP (it acts as "
                        "system:anonymous): add --secure-port 0 for HTTPS"
                    )
            elif (
                running.token_required
                and not is_loopback(host)
                and running.url == running.plain_url
            ):
                announce(
                    f"{host} is not a loopback address: every request must carry the bearer "
                    f"token written to {running.kubeconfig_path} (plain HTTP: use a trusted "
                    "network)"
                )
            await stop.wait()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
