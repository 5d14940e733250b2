"""The node's TLS identity: a self-signed certificate made on first start and kept in its home.

The farm does not check it against any authority: it pins its SHA-256 fingerprint once the node proved
it holds the farm token bound to it (docs/protocol.md, "TLS and pinned identities"). The private key is
written owner-only (0600) in a private folder; ``--cert``/``--key`` use a certificate of your own instead.
"""

from __future__ import annotations

import datetime
import hashlib
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from farm.local.files import write_atomic
from farm.local.paths import data_dir

CERT_FILE = "node-cert.pem"
KEY_FILE = "node-key.pem"
VALID_DAYS = 3650


@dataclass(frozen=True, slots=True)
class NodeCertificate:
    """Where the certificate and key are, and the certificate's SHA-256 (hex of its DER form)."""

    cert: Path
    key: Path
    fingerprint: str

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert, self.key)
        return ctx


def tls_dir() -> Path:
    return data_dir() / "tls"


def fingerprint_of(cert_pem: bytes) -> str:
    """The SHA-256 of a PEM certificate's DER bytes, as ``aiohttp.Fingerprint`` checks it."""
    der = x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


def load_certificate(cert: Path, key: Path) -> NodeCertificate:
    """A certificate of the user's own (``--cert``/``--key``)."""
    return NodeCertificate(cert, key, fingerprint_of(cert.read_bytes()))


def load_or_create_certificate(folder: Path | None = None, *, name: str = "lanfarm-node") -> NodeCertificate:
    """This node's certificate, made on first start (an EC P-256 key, self-signed, valid 10 years)."""
    folder = folder or tls_dir()
    cert, key = folder / CERT_FILE, folder / KEY_FILE
    if cert.exists() and key.exists():
        return load_certificate(cert, key)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    private = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"LAN Farm node {name}"[:64])])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    key_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_atomic(key, key_pem, overwrite=True, mode=0o600)  # the key first: a cert without it is remade
    write_atomic(cert, certificate.public_bytes(serialization.Encoding.PEM), overwrite=True, mode=0o644)
    return load_certificate(cert, key)
