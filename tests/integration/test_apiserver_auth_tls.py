"""HTTPS: the server's generated CA goes into its kubeconfig and survives a restart in
--cert-dir; a client that does not trust it is refused at the handshake; plain HTTP
stays on loopback with the same authentication; a given certificate is served as is."""

from __future__ import annotations

import base64
import ssl
from pathlib import Path

import aiohttp
import pytest
import yaml

from engine.apiserver.http.certificates import generated_certificate
from engine.apiserver.http.embedded import serve_apiserver
from engine.apiserver.http.security import SecurityOptions


def kubeconfig_ca(path: Path) -> bytes:
    cluster = yaml.safe_load(path.read_text())["clusters"][0]["cluster"]
    return base64.b64decode(cluster["certificate-authority-data"])


async def get(url: str, *, ca: bytes | None, token: str | None) -> int:
    context: ssl.SSLContext | bool = True
    if ca is not None:
        context = ssl.create_default_context(cadata=ca.decode())
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    connector = aiohttp.TCPConnector(ssl=context if url.startswith("https") else False)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(f"{url}/api/v1/namespaces", headers=headers) as response,
    ):
        return response.status


async def test_the_generated_ca_is_in_the_kubeconfig_and_kept_in_the_cert_dir(
    tmp_path: Path,
) -> None:
    options = SecurityOptions(authorization_mode="RBAC", secure_port=0, cert_dir=tmp_path / "pki")
    kubeconfig = tmp_path / "kubeconfig"
    async with serve_apiserver(kubeconfig_path=kubeconfig, security=options) as server:
        assert server.url.startswith("https://127.0.0.1:")
        assert server.plain_url.startswith("http://127.0.0.1:")
        ca = kubeconfig_ca(kubeconfig)
        assert ca == (tmp_path / "pki" / "ca.crt").read_bytes() == server.ca_pem
        assert await get(server.url, ca=ca, token=server.admin_token) == 200
        assert await get(server.plain_url, ca=None, token=server.admin_token) == 200
        assert await get(server.plain_url, ca=None, token=None) == 403  # anonymous
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await get(server.url, ca=None, token=server.admin_token)
    async with serve_apiserver(kubeconfig_path=kubeconfig, security=options) as again:
        assert again.ca_pem == ca
        assert await get(again.url, ca=ca, token=again.admin_token) == 200


async def test_a_given_certificate_and_key_are_served(tmp_path: Path) -> None:
    made = generated_certificate(tmp_path / "elsewhere", host="127.0.0.1")
    options = SecurityOptions(
        tls_cert_file=made.cert_file,
        tls_private_key_file=made.key_file,
        tls_ca_file=tmp_path / "elsewhere" / "ca.crt",
    )
    kubeconfig = tmp_path / "kubeconfig"
    async with serve_apiserver(kubeconfig_path=kubeconfig, security=options) as server:
        assert server.url.startswith("https://")
        assert kubeconfig_ca(kubeconfig) == made.ca_pem
        assert server.token_required  # off the plain loopback default: the token is needed
        assert await get(server.url, ca=made.ca_pem, token=server.admin_token) == 200
        assert await get(server.url, ca=made.ca_pem, token=None) == 401
