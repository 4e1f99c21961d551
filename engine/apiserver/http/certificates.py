"""TLS for the API server: a CA it generates (kept in --cert-dir when given, so clients'
trust survives a restart) and a serving certificate it signs for loopback, the listen
address and the in-cluster names; or a certificate and key it is given."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SERVICE_NAMES = (
    "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)  # fmt: skip
VALIDITY = datetime.timedelta(days=365)


class CertificateError(ValueError):
    """A certificate or key file that is missing or unusable; names the file."""


@dataclass(frozen=True)
class ServingCertificate:
    """PEM files to serve with, and the CA (PEM) that clients should trust, if known."""

    cert_file: Path
    key_file: Path
    ca_pem: bytes | None

    def ssl_context(self) -> ssl.SSLContext:
        """A server-side TLS context (TLS 1.2 or newer) with this certificate."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(str(self.cert_file), str(self.key_file))
        except (ssl.SSLError, OSError) as error:
            raise CertificateError(
                f"--tls-cert-file {self.cert_file} / --tls-private-key-file {self.key_file}: "
                f"{error}"
            ) from None
        return context


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=mode)
    path.write_bytes(data)


def _new_ca(now: datetime.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "engine-apiserver-ca")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + 10 * VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _names(host: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in SERVICE_NAMES]
    addresses = {"127.0.0.1", "::1"}
    try:
        addresses.add(str(ipaddress.ip_address(host.strip("[]"))))
    except ValueError:
        if host not in SERVICE_NAMES:
            names.append(x509.DNSName(host))
    names.extend(x509.IPAddress(ipaddress.ip_address(a)) for a in sorted(addresses))
    return names


def _serving(
    ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, host: str, now: datetime.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(_names(host)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    cert_path, key_path = directory / "ca.crt", directory / "ca.key"
    if not (cert_path.exists() and key_path.exists()):
        return None
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except ValueError as error:
        raise CertificateError(f"--cert-dir {directory}: ca.crt/ca.key unusable: {error}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertificateError(f"--cert-dir {directory}: ca.key is not an EC private key")
    return cert, key


def generated_certificate(directory: Path, *, host: str) -> ServingCertificate:
    """A serving certificate for `host` signed by the CA in `directory` (ca.crt, ca.key;
    created when absent); apiserver.crt and apiserver.key are written beside them."""
    now = datetime.datetime.now(datetime.UTC)
    loaded = _load_ca(directory)
    if loaded is None:
        loaded = _new_ca(now)
        _write(directory / "ca.key", _key_pem(loaded[1]), 0o600)
        _write(directory / "ca.crt", loaded[0].public_bytes(serialization.Encoding.PEM), 0o644)
    ca, ca_key = loaded
    cert, key = _serving(ca, ca_key, host, now)
    cert_file, key_file = directory / "apiserver.crt", directory / "apiserver.key"
    _write(key_file, _key_pem(key), 0o600)
    _write(cert_file, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return ServingCertificate(
        cert_file=cert_file, key_file=key_file, ca_pem=ca.public_bytes(serialization.Encoding.PEM)
    )


def given_certificate(
    cert_file: Path, key_file: Path, *, ca_file: Path | None
) -> ServingCertificate:
    """The certificate and key given by flags; `ca_file` (if any) goes into the kubeconfig."""
    for flag, path in (("--tls-cert-file", cert_file), ("--tls-private-key-file", key_file)):
        if not path.is_file():
            raise CertificateError(f"{flag} {path}: no such file")
    ca_pem = ca_file.read_bytes() if ca_file is not None else None
    return ServingCertificate(cert_file=cert_file, key_file=key_file, ca_pem=ca_pem)
