"""The TLS context of the gateway's HTTPS/WSS site, from the certificate and key files' bytes.

What the context allows, and why:

* TLS 1.2 and 1.3 only (1.0/1.1 are deprecated by RFC 8996; every browser that does WebRTC
  speaks 1.2).  TLS 1.3 keeps OpenSSL's default suites, all AEAD with ephemeral keys;
  TLS 1.2 is limited to ECDHE key exchange with AES-GCM or ChaCha20-Poly1305
  (:data:`TLS12_CIPHERS`): forward secrecy and authenticated encryption, nothing else.
* No compression (CRIME), no renegotiation (a client-driven CPU sink, and never needed by a
  browser), no session tickets (their key would outlive the sessions it protects: with
  tickets off OpenSSL resumes from its in-memory cache instead).

Bad files are refused with one line naming the key (:class:`~wcsgw.config.ConfigError`):
unreadable, no certificate or no key in it, an encrypted key, or a key that does not belong to
the certificate.  Key material never reaches a message.  Only :func:`read_files` touches the
disk; :func:`server_context` works on bytes, so the checks are unit-tested without files.
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from OpenSSL import SSL, crypto

from wcsgw.config import ConfigError

__all__ = ["TLS12_CIPHERS", "describe", "read_files", "server_context"]

#: TLS 1.2 suites: ECDHE (forward secrecy) with an AEAD cipher, ECDSA or RSA certificates.
TLS12_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
)
#: pyOpenSSL names SSL_OP_NO_RENEGOTIATION only when its OpenSSL has it (1.1.0h and later, the
#: value has not changed since); without the name the option is still set by its value.
_NO_RENEGOTIATION: int = getattr(SSL, "OP_NO_RENEGOTIATION", 1 << 30)
_OPTIONS = (SSL.OP_NO_COMPRESSION | _NO_RENEGOTIATION | SSL.OP_NO_TICKET
            | SSL.OP_CIPHER_SERVER_PREFERENCE)
_CERT_KEY = "http.tls_cert"
_KEY_KEY = "http.tls_key"


def read_files(cert_path: str, key_path: str) -> tuple[bytes, bytes]:
    """Both files' bytes; ConfigError naming the key of the one that cannot be read."""
    out: list[bytes] = []
    for key, path in ((_CERT_KEY, cert_path), (_KEY_KEY, key_path)):
        try:
            out.append(Path(path).read_bytes())
        except OSError as exc:
            raise ConfigError(key, f"cannot read {path!r}: {exc.strerror or exc}") from None
    return out[0], out[1]


def _certificates(cert_pem: bytes) -> list[x509.Certificate]:
    try:
        chain = x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        chain = []
    if not chain:
        raise ConfigError(_CERT_KEY, "holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
    return chain


def _private_key(key_pem: bytes) -> crypto.PKey:
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise ConfigError(_KEY_KEY, "the key is encrypted: give the gateway an unencrypted "
                          "key file that only its user can read") from None
    except (ValueError, crypto.Error):
        raise ConfigError(_KEY_KEY, "holds no PEM private key (-----BEGIN ... PRIVATE KEY-----)"
                          ) from None
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, dsa.DSAPrivateKey,
                            ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
        raise ConfigError(_KEY_KEY, f"unsupported key type {type(key).__name__}")
    return crypto.PKey.from_cryptography_key(key)


def server_context(cert_pem: bytes, key_pem: bytes) -> SSL.Context:
    """The server context for one certificate chain (leaf first, then intermediates, as ACME
    clients write ``fullchain.pem``) and its private key.

    Raises ConfigError naming ``http.tls_cert`` (no certificate) or ``http.tls_key`` (no key,
    an encrypted key, or a key that is not the certificate's)."""
    chain = _certificates(cert_pem)
    key = _private_key(key_pem)
    context = SSL.Context(SSL.TLS_SERVER_METHOD)
    context.set_min_proto_version(SSL.TLS1_2_VERSION)
    context.set_options(_OPTIONS)
    context.set_cipher_list(TLS12_CIPHERS.encode())
    context.set_session_id(b"wcsgw")  # the resumption cache's id (tickets are off)
    context.use_certificate(crypto.X509.from_cryptography(chain[0]))
    for extra in chain[1:]:
        context.add_extra_chain_cert(crypto.X509.from_cryptography(extra))
    try:
        context.use_privatekey(key)
        context.check_privatekey()
    except SSL.Error:
        raise ConfigError(_KEY_KEY, f"does not match the certificate in {_CERT_KEY}") from None
    return context


def _subject(cert_pem: bytes) -> str:
    """What the log says of a certificate: its subject and end of validity (public data)."""
    cert = _certificates(cert_pem)[0]
    return f"{cert.subject.rfc4514_string()}, valid until {cert.not_valid_after_utc:%Y-%m-%d}"


def describe(cert_pem: bytes) -> str:
    """What the log says of a certificate: its subject and end of validity (public data)."""
    cert = _certificates(cert_pem)[0]
    return f"{cert.subject.rfc4514_string()}, valid until {cert.not_valid_after_utc:%Y-%m-%d}"
