"""The webhook server's certificates: a self-signed CA and a serving certificate for
loopback and the Service's DNS names, kept in the state dir (keys owner-only), reused on
a restart, rotated before expiry (the threshold is a setting), the new one served
without a restart and a new CA handed on for the caBundle; an expired mounted
(cert-manager) certificate refused with a line that says what to do."""

from __future__ import annotations

import asyncio
import datetime
import ssl
from pathlib import Path

import pytest
from cryptography import x509

from engine import load_settings
from engine.journal.location import open_journal
from engine.webhooks.certificates import (
    CertificateError,
    Mounted,
    SelfSigned,
    ServingPair,
    service_hosts,
)
from engine.webhooks.server import WebhookServerDeps, serve_webhooks
from engine.webhooks.setup import certificates_for
from tests.support.quota_operator import OPERATOR

NOW = datetime.datetime(2026, 6, 1, tzinfo=datetime.UTC)


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_issued_once_reused_and_rotated_before_expiry(tmp_path: Path) -> None:
    store = SelfSigned(
        tmp_path / "certs",
        hosts=service_hosts("engine-webhook", "engine-system"),
        validity=datetime.timedelta(days=90),
        rotate_before=datetime.timedelta(days=10),
    )
    first = store.ensure(NOW)
    assert first.issued
    assert (tmp_path / "certs" / "tls.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "certs" / "ca.key").stat().st_mode & 0o777 == 0o600
    cert = _cert(first.cert_file)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {
        "localhost",
        "engine-webhook.engine-system.svc",
        "engine-webhook.engine-system.svc.cluster.local",
    } <= set(names.get_values_for_type(x509.DNSName))
    assert {str(a) for a in names.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}

    later = store.ensure(NOW + datetime.timedelta(days=79))  # 11 days left: kept
    assert not later.issued
    assert _cert(later.cert_file).serial_number == cert.serial_number
    rotated = store.ensure(NOW + datetime.timedelta(days=81))  # 9 days left: renewed
    assert rotated.issued
    assert rotated.ca_pem == first.ca_pem
    assert _cert(rotated.cert_file).serial_number != cert.serial_number
    assert rotated.not_after > first.not_after

    renamed = SelfSigned(tmp_path / "certs", hosts=("webhook.other",)).ensure(NOW)
    assert renamed.issued  # a host the certificate lacks: a new one


def test_a_ca_near_its_end_is_replaced_and_the_settings_choose_the_store(tmp_path: Path) -> None:
    store = SelfSigned(
        tmp_path, ca_validity=datetime.timedelta(days=40), rotate_before=datetime.timedelta(days=30)
    )
    first = store.ensure(NOW)
    renewed = store.ensure(NOW + datetime.timedelta(days=15))
    assert renewed.ca_pem != first.ca_pem
    assert renewed.issued

    settings = load_settings(
        env={"ENGINE_WEBHOOK_CERT_ROTATE_BEFORE_DAYS": "5"}, overrides={"state_dir": tmp_path}
    )
    chosen = certificates_for(settings)
    assert isinstance(chosen, SelfSigned)
    assert chosen.rotate_before == datetime.timedelta(days=5)
    assert chosen.directory == tmp_path / "webhook-certs"
    mounted = load_settings(
        env={
            "ENGINE_WEBHOOK_CERTIFICATES": "cert-manager",
            "ENGINE_WEBHOOK_CERT_DIR": str(tmp_path),
        },
        overrides={},
    )
    assert certificates_for(mounted) == Mounted(tmp_path)


def test_an_expired_mounted_certificate_is_refused_naming_it(tmp_path: Path) -> None:
    SelfSigned(tmp_path, validity=datetime.timedelta(days=1)).ensure(NOW)
    assert Mounted(tmp_path).ensure(NOW).not_after > NOW
    with pytest.raises(CertificateError, match=r"tls.crt expired at 2026-06-02.*renew it"):
        Mounted(tmp_path).ensure(NOW + datetime.timedelta(days=2))
    with pytest.raises(CertificateError, match="is missing; mount the cert-manager Secret"):
        Mounted(tmp_path / "empty").ensure(NOW)


class _Clocked:
    """SelfSigned at a moment the test moves."""

    def __init__(self, store: SelfSigned) -> None:
        self.store, self.now = store, datetime.datetime.now(datetime.UTC)

    def ensure(self) -> ServingPair:
        return self.store.ensure(self.now)


async def _served_serial(url: str, ca_pem: bytes) -> int:
    host, port = url.removeprefix("https://").split(":")
    context = ssl.create_default_context(cadata=ca_pem.decode())
    _, writer = await asyncio.open_connection(host, int(port), ssl=context)
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        return x509.load_der_x509_certificate(der).serial_number
    finally:
        writer.close()
        await writer.wait_closed()


async def test_the_running_server_serves_a_rotated_certificate_and_hands_on_a_new_ca(
    tmp_path: Path,
) -> None:
    # issued 45 days ago: the serving certificate and the CA have 15 and 25 days left,
    # below the 30-day threshold once the clock reaches today
    store = _Clocked(
        SelfSigned(
            tmp_path / "certs",
            validity=datetime.timedelta(days=60),
            ca_validity=datetime.timedelta(days=70),
            rotate_before=datetime.timedelta(days=30),
        )
    )
    today = store.now
    store.now = today - datetime.timedelta(days=45)
    new_cas: list[bytes] = []

    async def on_new_ca(ca_pem: bytes) -> None:
        new_cas.append(ca_pem)

    journal = await open_journal(tmp_path / "journal.db")
    deps = WebhookServerDeps(
        operator=OPERATOR,
        journal=journal,
        certificates=store,
        rotation_check_seconds=0.05,
        on_new_ca=on_new_ca,
    )
    try:
        async with serve_webhooks(deps) as running:
            first_ca = running.ca_pem
            before = await _served_serial(running.url, first_ca)
            await asyncio.sleep(0.15)
            assert not new_cas
            assert not running.pair.issued
            store.now = today
            for _ in range(100):
                await asyncio.sleep(0.05)
                if new_cas:
                    break
            assert new_cas
            assert new_cas[0] != first_ca
            assert running.ca_pem == new_cas[0]
            after = await _served_serial(running.url, new_cas[0])  # verified by the new CA
            assert after != before
            assert running.pair.not_after > today + datetime.timedelta(days=59)
    finally:
        await journal.close()
