"""The security options' files and values: token files, webhook kubeconfigs, OIDC
prefixes, Go durations, and impersonation headers, with the one-line errors bad input
gets."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml
from multidict import CIMultiDict, CIMultiDictProxy

from engine.apiserver.authn.impersonation import impersonated
from engine.apiserver.authn.oidc import OidcOptions
from engine.apiserver.authn.static_tokens import TokenFileError, read_token_file
from engine.apiserver.authn.user_info import ADMIN, UserInfo, split_service_account
from engine.apiserver.authn.webhook import WebhookConfigError, read_reviewer
from engine.apiserver.store.errors import ApiError
from engine.cli.apiserver_flags import BadFlag, parse_duration


def test_a_token_file_gives_users_their_groups_and_system_authenticated(tmp_path: Path) -> None:
    path = tmp_path / "tokens.csv"
    path.write_text('# comment\nt1,alice,1,"dev,ops"\nt2,bob,2\n')
    users = read_token_file(path)
    assert users["t1"] == UserInfo("alice", uid="1", groups=("dev", "ops", "system:authenticated"))
    assert users["t2"].groups == ("system:authenticated",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("only-a-token\n", "line 1: expected token,user,uid", id="short-line"),
        pytest.param("t,,1\n", "line 1: expected token,user,uid", id="no-user"),
    ],
)
def test_a_bad_token_file_line_is_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "tokens.csv"
    path.write_text(text)
    with pytest.raises(TokenFileError, match=message):
        read_token_file(path)


def test_a_missing_token_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(TokenFileError, match=r"--token-auth-file .*nope\.csv"):
        read_token_file(tmp_path / "nope.csv")


def test_the_webhook_kubeconfig_names_server_ca_and_token(tmp_path: Path) -> None:
    path = tmp_path / "webhook.yaml"
    ca = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    path.write_text(yaml.safe_dump({
        "clusters": [{"name": "r", "cluster": {
            "server": "https://127.0.0.1:9443/review",
            "certificate-authority-data": base64.b64encode(ca).decode()}}],
        "users": [{"name": "u", "user": {"token": "secret"}}],
    }))  # fmt: skip
    reviewer = read_reviewer(path)
    assert (reviewer.url, reviewer.ca_pem, reviewer.token) == (
        "https://127.0.0.1:9443/review",
        ca,
        "secret",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("[1, 2]\n", "not a kubeconfig", id="not-a-mapping"),
        pytest.param("clusters: []\n", "no clusters entry", id="no-cluster"),
        pytest.param("clusters: [{cluster: {server: ftp://x}}]\n", "is no URL", id="bad-url"),
        pytest.param("clusters: [\n", "not YAML", id="not-yaml"),
    ],
)
def test_a_bad_webhook_kubeconfig_is_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "webhook.yaml"
    path.write_text(text)
    with pytest.raises(WebhookConfigError, match=message):
        read_reviewer(path)


@pytest.mark.parametrize(
    ("claim", "prefix", "expected"),
    [
        pytest.param("sub", None, "https://issuer.test#", id="default-for-sub"),
        pytest.param("email", None, "", id="default-for-email"),
        pytest.param("sub", "-", "", id="dash-means-none"),
        pytest.param("sub", "oidc:", "oidc:", id="given"),
    ],
)
def test_oidc_username_prefix_defaults_as_upstream(
    claim: str, prefix: str | None, expected: str
) -> None:
    options = OidcOptions(
        issuer_url="https://issuer.test", client_id="c", username_claim=claim,
        username_prefix=prefix,
    )  # fmt: skip
    assert options.prefix() == expected


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("120", 120.0), ("2m", 120.0), ("1h30m", 5400.0), ("0.5s", 0.5), ("0", 0.0)],
)
def test_durations_read_as_go_writes_them(text: str, seconds: float) -> None:
    assert parse_duration("--x", text) == seconds


@pytest.mark.parametrize("text", ["soon", "", "5 minutes", "m"])
def test_a_bad_duration_is_refused(text: str) -> None:
    with pytest.raises(BadFlag, match="not a duration"):
        parse_duration("--x", text)


def headers(**values: str) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict({k.replace("_", "-"): v for k, v in values.items()}))


def test_impersonating_a_service_account_gives_its_groups() -> None:
    asked: list[tuple[str, str, str]] = []
    user = impersonated(
        ADMIN,
        headers(Impersonate_User="system:serviceaccount:ns:robot"),
        check=lambda attrs: asked.append((attrs.resource, attrs.namespace, attrs.name)),
    )
    assert asked == [("serviceaccounts", "ns", "robot")]
    assert user.groups == (
        "system:serviceaccounts",
        "system:serviceaccounts:ns",
        "system:authenticated",
    )


def test_impersonating_groups_without_a_user_is_a_bad_request() -> None:
    with pytest.raises(ApiError) as bad:
        impersonated(ADMIN, headers(Impersonate_Group="ops"), check=lambda attrs: None)
    assert bad.value.code == 400


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("system:serviceaccount:ns:sa", ("ns", "sa"), id="account"),
        pytest.param("system:serviceaccount:ns", None, id="no-name"),
        pytest.param("system:serviceaccount:ns:a:b", None, id="extra-colon"),
        pytest.param("alice", None, id="plain-user"),
    ],
)
def test_service_account_user_names_split(name: str, expected: tuple[str, str] | None) -> None:
    assert split_service_account(name) == expected
