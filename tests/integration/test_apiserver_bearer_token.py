"""The API server's bearer token: none on loopback, a generated one off loopback; when a
token is set, the kubeconfig carries it, the real client gets through with it, and a
request without it or with another one gets a 401 Status (audited); probes stay open."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest
import yaml
from kubernetes_asyncio import client, config

from engine.apiserver.http.auth import LOCAL_TOKEN, is_loopback, required_token
from engine.apiserver.http.embedded import serve_apiserver


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_addresses_need_no_token(host: str) -> None:
    assert is_loopback(host)
    assert required_token(host, None) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "192.168.0.5", "api.example.com"])
def test_any_other_address_gets_a_fresh_random_token(host: str) -> None:
    assert not is_loopback(host)
    first, second = required_token(host, None), required_token(host, None)
    assert first is not None
    assert second is not None
    assert first != second
    assert len(first) >= 40


def test_a_given_token_is_required_on_any_address() -> None:
    assert required_token("127.0.0.1", "t0ken") == "t0ken"
    assert required_token("0.0.0.0", "t0ken") == "t0ken"


def kubeconfig_token(path: Path) -> str:
    document = yaml.safe_load(path.read_text())
    token: str = document["users"][0]["user"]["token"]
    return token


async def list_namespaces(kubeconfig: Path) -> list[str]:
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    async with client.ApiClient(configuration) as api:
        namespaces = await client.CoreV1Api(api).list_namespace()
        return [item.metadata.name for item in namespaces.items]


async def test_a_loopback_server_answers_without_credentials(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    async with serve_apiserver(kubeconfig_path=kubeconfig) as server:
        assert not server.token_required
        assert kubeconfig_token(kubeconfig) == LOCAL_TOKEN
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{server.url}/api/v1/namespaces") as response,
        ):
            assert response.status == 200


async def test_with_a_token_only_requests_carrying_it_are_served(tmp_path: Path) -> None:
    kubeconfig, audit = tmp_path / "kubeconfig", tmp_path / "audit.jsonl"
    token = required_token("0.0.0.0", None)
    async with serve_apiserver(kubeconfig_path=kubeconfig, audit_log=audit, token=token) as server:
        assert server.token_required
        assert kubeconfig_token(kubeconfig) == token
        assert kubeconfig.stat().st_mode & 0o777 == 0o600
        assert "default" in await list_namespaces(kubeconfig)

        url = f"{server.url}/api/v1/namespaces"
        async with aiohttp.ClientSession() as http:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
                async with http.get(url, headers=headers) as response:
                    assert response.status == 401
                    status = json.loads(await response.read())
                    assert status["reason"] == "Unauthorized"
                    assert token not in json.dumps(status)
            async with http.get(f"{server.url}/healthz") as response:
                assert response.status == 200
    codes = [json.loads(line)["code"] for line in audit.read_text().splitlines()]
    assert codes.count(401) == 3
