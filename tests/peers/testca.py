"""A throw-away certificate authority for tests that speak TLS (HTTPS/WSS, later SIP TLS).

Made at run time with the ``cryptography`` package into a temp folder the test owns: no
certificate or key is committed, nothing is trusted beyond the test, and each run gets fresh
keys.  The API is deliberately small::

    ca = make_ca(folder)                         # ca.cert_path, ca.spki_sha256
    cert, key = ca.issue(["localhost", "127.0.0.1"], folder)

Names that parse as IP addresses go into the certificate as IP SANs, the rest as DNS names.
Keys are ECDSA P-256 (fast to make; what ACME clients issue by default today).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import os
from pathlib import Path
from typing import Sequence

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CA", "make_ca", "spki_sha256", "fingerprint"]

_VALID = datetime.timedelta(days=2)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    os.chmod(path, 0o600)


def spki_sha256(cert_pem: bytes) -> str:
    """base64 SHA-256 of a certificate's SubjectPublicKeyInfo: what Chromium's
    ``--ignore-certificate-errors-spki-list`` takes."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def fingerprint(cert: bytes) -> str:
    """SHA-256 of a certificate (PEM or DER), hex: tells two certificates apart."""
    if cert.lstrip().startswith(b"-----"):
        cert = x509.load_pem_x509_certificate(cert).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(cert).hexdigest()


@attrs.define
class CA:
    """The test CA: its certificate on disk and its key in memory."""

    cert_path: Path
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    issued: int = 0

    @property
    def spki_sha256(self) -> str:
        return spki_sha256(self.cert_path.read_bytes())

    def issue(self, names: Sequence[str], folder: str | os.PathLike[str]) -> tuple[Path, Path]:
        """A server certificate for ``names`` (the first is the common name), signed by this
        CA, written as ``leafN.pem`` / ``leafN.key`` in ``folder``: (cert_path, key_path)."""
        self.issued += 1
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = []
        for name in names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                sans.append(x509.DNSName(name))
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(names[0]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + _VALID)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        cert_path = folder / f"leaf{self.issued}.pem"
        key_path = folder / f"leaf{self.issued}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, key_path)
        return cert_path, key_path


def make_ca(folder: str | os.PathLike[str]) -> CA:
    """A new CA whose certificate is written to ``folder/ca.pem`` (trust it with that file)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    name = _name("wcsgw test CA")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALID)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path = folder / "ca.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return CA(cert_path=cert_path, certificate=cert, key=key)
