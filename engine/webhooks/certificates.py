"""The webhook server's certificates: a self-signed CA and a serving certificate it
signs, persisted in `<state dir>/webhook-certs/` and rotated before they expire; or a
certificate and key issued by cert-manager (its Secret mounted as a directory).

Files: `ca.crt`, `ca.key` (the CA; only with self-signed), `tls.crt`, `tls.key` (the
serving pair: cert-manager's Secret uses the same names). Keys are written owner-only.
The serving certificate names 127.0.0.1, ::1, localhost and the Service's DNS names.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_FILE, CA_KEY_FILE, CERT_FILE, KEY_FILE = "ca.crt", "ca.key", "tls.crt", "tls.key"
CERT_DIR = "webhook-certs"


class CertificateError(ValueError):
    """A certificate or key file that is missing, unreadable or expired; names it."""


def service_hosts(service: str, namespace: str) -> tuple[str, ...]:
    """The DNS names the API server uses for a webhook Service."""
    return (
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    )


@dataclass(frozen=True, slots=True)
class ServingPair:
    """The files to serve with, the CA to trust (PEM) and when the certificate expires."""

    cert_file: Path
    key_file: Path
    ca_pem: bytes
    not_after: datetime.datetime
    issued: bool
    """True when this call issued a new serving certificate (first start or rotation)."""

    def load_into(self, context: ssl.SSLContext) -> None:
        """Load the pair into `context` (new handshakes use it; open connections keep
        theirs). Errors: `CertificateError` naming the files."""
        try:
            context.load_cert_chain(str(self.cert_file), str(self.key_file))
        except (ssl.SSLError, OSError) as error:
            raise CertificateError(
                f"webhook certificate {self.cert_file} / key {self.key_file}: {error}"
            ) from None

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.load_into(context)
        return context


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write atomically (a reader never sees half a file) with `mode`."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".new")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    os.replace(partial, path)


def _usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        key_cert_sign=ca,
        crl_sign=ca,
        content_commitment=False,
        key_encipherment=not ca,
        data_encipherment=False,
        key_agreement=False,
        encipher_only=False,
        decipher_only=False,
    )


def _new_ca(
    now: datetime.datetime, validity: datetime.timedelta
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "engine-webhook-ca")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(ca=True), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _alt_names(hosts: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in ("localhost", "127.0.0.1", "::1", *hosts):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    unique: list[x509.GeneralName] = []
    for name in names:
        if name not in unique:
            unique.append(name)
    return unique


def _new_serving(
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    hosts: Sequence[str],
    now: datetime.datetime,
    validity: datetime.timedelta,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    not_after = min(now + validity, ca.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "engine-webhook")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(_alt_names(hosts)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _load_cert(path: Path) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise CertificateError(f"webhook certificate {path} is not usable: {error}") from None


def _names_of(cert: x509.Certificate) -> set[str]:
    try:
        extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return set()
    return {str(n.value) for n in extension.value}


@dataclass(frozen=True, slots=True)
class SelfSigned:
    """Issues and rotates the CA and serving certificate in `directory`.

    `rotate_before`: a certificate expiring sooner than this is replaced (the serving
    one by a new one from the same CA; the CA, when it is the one expiring, by a new CA,
    whose PEM the caller must inject into the webhook configurations again).
    """

    directory: Path
    hosts: tuple[str, ...] = ()
    validity: datetime.timedelta = datetime.timedelta(days=365)
    ca_validity: datetime.timedelta = datetime.timedelta(days=3650)
    rotate_before: datetime.timedelta = datetime.timedelta(days=30)

    def ensure(self, now: datetime.datetime | None = None) -> ServingPair:
        """The current pair, issuing or rotating what is missing, expiring or lacks a
        host. Errors: `CertificateError` for a file that cannot be read or written."""
        moment = now or datetime.datetime.now(datetime.UTC)
        d = self.directory
        try:
            return self._ensure(moment, d)
        except OSError as error:
            raise CertificateError(
                f"webhook certificates in {d} cannot be written: {error.strerror or error}; "
                "pass another --state-dir"
            ) from None

    def _ensure(self, moment: datetime.datetime, d: Path) -> ServingPair:
        ca = _load_cert(d / CA_FILE)
        ca_key: ec.EllipticCurvePrivateKey | None = None
        if ca is not None and (d / CA_KEY_FILE).exists():
            loaded = serialization.load_pem_private_key((d / CA_KEY_FILE).read_bytes(), None)
            ca_key = loaded if isinstance(loaded, ec.EllipticCurvePrivateKey) else None
        if ca is None or ca_key is None or ca.not_valid_after_utc - moment < self.rotate_before:
            ca, ca_key = _new_ca(moment, self.ca_validity)
            _write(d / CA_KEY_FILE, _key_pem(ca_key), 0o600)
            _write(d / CA_FILE, ca.public_bytes(serialization.Encoding.PEM), 0o644)
            (d / CERT_FILE).unlink(missing_ok=True)
        serving = _load_cert(d / CERT_FILE)
        wanted = {str(n.value) for n in _alt_names(self.hosts)}
        stale = (
            serving is None
            or not (d / KEY_FILE).exists()
            or serving.issuer != ca.subject
            or serving.not_valid_after_utc - moment < self.rotate_before
            or not wanted <= _names_of(serving)
        )
        if stale:
            serving, key = _new_serving(ca, ca_key, self.hosts, moment, self.validity)
            _write(d / KEY_FILE, _key_pem(key), 0o600)
            _write(d / CERT_FILE, serving.public_bytes(serialization.Encoding.PEM), 0o644)
        assert serving is not None
        return ServingPair(
            cert_file=d / CERT_FILE,
            key_file=d / KEY_FILE,
            ca_pem=ca.public_bytes(serialization.Encoding.PEM),
            not_after=serving.not_valid_after_utc,
            issued=stale,
        )


@dataclass(frozen=True, slots=True)
class Mounted:
    """A pair someone else issues and rotates (cert-manager's Secret in `directory`);
    read again at every `ensure` so a renewed Secret is served without a restart."""

    directory: Path

    def ensure(self, now: datetime.datetime | None = None) -> ServingPair:
        moment = now or datetime.datetime.now(datetime.UTC)
        cert = _load_cert(self.directory / CERT_FILE)
        if cert is None:
            raise CertificateError(
                f"webhook certificate {self.directory / CERT_FILE} is missing; mount the "
                "cert-manager Secret there or set webhook_certificates = 'self-signed'"
            )
        if cert.not_valid_after_utc <= moment:
            raise CertificateError(
                f"webhook certificate {self.directory / CERT_FILE} expired at "
                f"{cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}; renew it (cert-manager: "
                "cmctl renew CERTIFICATE) and the engine serves the new one"
            )
        ca_file = self.directory / CA_FILE
        ca_pem = ca_file.read_bytes() if ca_file.exists() else b""
        return ServingPair(
            self.directory / CERT_FILE,
            self.directory / KEY_FILE,
            ca_pem,
            cert.not_valid_after_utc,
            issued=False,
        )
