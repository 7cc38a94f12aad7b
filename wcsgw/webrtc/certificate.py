"""The gateway's DTLS certificate: one self-signed ECDSA P-256 certificate per process.

Why one per gateway and not one per leg: browsers expect a server to keep its certificate
(WebRTC identities are the ``a=fingerprint`` in the SDP, not a CA chain), and a shared one
means a shared ``SSL_CTX`` (:func:`wcsgw.webrtc.dtls.server_context`), so a leg costs only
its ``SSL`` object.  Why ECDSA P-256: every browser accepts it, its handshake messages fit in
one datagram, and key generation is ~1 ms.  Why 30 days: long enough for any gateway run
between restarts we expect, short enough that a leaked key does not outlive a month; the
private key never leaves this object (nothing logs or shows it).
"""

from __future__ import annotations

import datetime
import secrets
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["DtlsCertificate", "VALIDITY", "format_fingerprint"]

#: how long a generated certificate is valid (it is also valid from one day back: clock skew)
VALIDITY: Final = datetime.timedelta(days=30)


def format_fingerprint(digest: bytes) -> str:
    """RFC 8122 form of a digest: upper-case hex pairs joined by colons."""
    return ":".join(f"{b:02X}" for b in digest)


class DtlsCertificate:
    """A private key and its self-signed certificate, with the ``a=fingerprint`` for SDP.

    ``contexts`` caches the DTLS server contexts built on it, one per SRTP profile list
    (:func:`wcsgw.webrtc.dtls.server_context` fills it), so every leg shares one.
    """

    def __init__(self, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
        self.key = key
        self.cert = cert
        #: ("sha-256", "AB:CD:...") for ``a=fingerprint``
        self.fingerprint: tuple[str, str] = (
            "sha-256", format_fingerprint(cert.fingerprint(hashes.SHA256())))
        self.contexts: dict[tuple[str, ...], Any] = {}

    @classmethod
    def generate(cls, now: datetime.datetime | None = None) -> "DtlsCertificate":
        """A fresh key and certificate, valid from a day before ``now`` for :data:`VALIDITY`."""
        now = now or datetime.datetime.now(datetime.timezone.utc)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, secrets.token_hex(8))])
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + VALIDITY)
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    @property
    def expires(self) -> datetime.datetime:
        """End of validity (UTC)."""
        return self.cert.not_valid_after_utc

    def __repr__(self) -> str:  # never the key
        return f"<DtlsCertificate {self.fingerprint[1][:11]}... until {self.expires:%Y-%m-%d}>"
