"""SIP over TLS (RFC 3261 §26.3.1, RFC 5630): the contexts our connections are made with.

Why a module of its own: which certificates we trust, which name we check and what we show
as a client are security decisions, made once from ``[sip]`` settings and kept apart from the
transport that only moves bytes.  The rules:

* TLS 1.2 or later only, on both sides.
* As a client we verify the server's certificate against ``sip.tls_ca`` (a PEM file) or, when
  that is empty, the system's CAs, and check it names the host we meant to reach (the proxy or
  domain as configured, before DNS; an IP literal is checked as an IP SAN).  The same name is
  sent as SNI.  There is no switch to turn verification off: an unverified TLS hop would only
  look secure.
* ``sip.tls_client_cert``/``tls_client_key`` (or, when unset, the listener's ``tls_cert``/
  ``tls_key``) are shown to servers that ask (mutual TLS with trunks).
* As a server (``sip.tls_port``) we present ``tls_cert``/``tls_key``; clients are not asked
  for a certificate (SIP clients authenticate with Digest).

Files that cannot be used raise :class:`TlsSetupError` naming the key, when the service is
built; the start path turns it into its one-line config error (the SIP core reads no config
module: its settings come in duck-typed).  Keys are never logged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from OpenSSL import SSL, crypto
from twisted.internet import ssl
from twisted.internet.error import VerifyError
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator

__all__ = ["SipTls", "TLS_MINIMUM", "TlsSetupError"]

#: RFC 7525 §3.1.1 (and the house rule): nothing older than TLS 1.2.
TLS_MINIMUM = ssl.TLSVersion.TLSv1_2


class TlsSetupError(ValueError):
    """A ``[sip]`` TLS file that cannot be used: ``key`` names the setting, ``problem`` why."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(" ".join(f"{key}: {problem}".split()))


def _read(key: str, path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise TlsSetupError(key, f"cannot read {path!r}: {exc.strerror or exc}") from None


def _certificates(key: str, path: str) -> list[ssl.Certificate]:
    """Every PEM certificate in the file (a chain or a CA bundle)."""
    pem = _read(key, path)
    marker = b"-----BEGIN CERTIFICATE-----"
    blocks = [marker + part for part in pem.split(marker)[1:]]
    if not blocks:
        raise TlsSetupError(key, f"{path!r} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
    try:
        return [ssl.Certificate.loadPEM(block) for block in blocks]
    except (SSL.Error, crypto.Error, ValueError) as exc:
        raise TlsSetupError(key, f"{path!r} holds a certificate that cannot be read: {exc}") from None


def _identity(cert_key: str, cert_path: str, key_key: str,
              key_path: str) -> tuple[ssl.PrivateCertificate, list[ssl.Certificate]]:
    """The leaf with its private key, and the rest of the chain to send with it."""
    chain = _certificates(cert_key, cert_path)
    key_pem = _read(key_key, key_path)
    if b"ENCRYPTED" in key_pem:
        raise TlsSetupError(key_key, "the key is encrypted: give the gateway an unencrypted key "
                          "file readable only by its user")
    try:
        private = ssl.KeyPair.load(key_pem, crypto.FILETYPE_PEM)
    except (SSL.Error, crypto.Error, ValueError):
        raise TlsSetupError(key_key, f"{key_path!r} holds no PEM private key") from None
    try:
        leaf = ssl.PrivateCertificate.fromCertificateAndKeyPair(  # type: ignore[no-untyped-call]
            chain[0], private)  # checks that the key matches the certificate
    except (SSL.Error, crypto.Error, ValueError, VerifyError):
        raise TlsSetupError(key_key, f"does not match the certificate in {cert_key}") from None
    return leaf, chain[1:]


class SipTls:
    """The TLS contexts of one SIP service: client options per server name, the listener's.

    Built from :class:`wcsgw.config.SipSettings` (anything with the ``tls_*`` attributes);
    every file is read and checked here, at start, not at the first call."""

    def __init__(self, settings: Any) -> None:
        s = settings
        self._trust: Any = (
            ssl.trustRootFromCertificates(  # type: ignore[no-untyped-call]
                _certificates("sip.tls_ca", s.tls_ca))
            if s.tls_ca else ssl.platformTrust())  # type: ignore[no-untyped-call]
        #: the listener's options (IOpenSSLContextFactory); None without tls_cert/tls_key
        self.server: Any = None
        self._client_cert: ssl.PrivateCertificate | None = None
        self._client_chain: list[ssl.Certificate] = []
        if s.tls_cert or s.tls_key:
            for key, other in (("tls_key", "tls_cert"), ("tls_cert", "tls_key")):
                if not getattr(s, key):
                    raise TlsSetupError(f"sip.{key}", f"must be set when sip.{other} is")
            leaf, chain = _identity("sip.tls_cert", s.tls_cert, "sip.tls_key", s.tls_key)
            self.server = ssl.CertificateOptions(
                privateKey=leaf.privateKey.original, certificate=leaf.original,
                extraCertChain=[c.original for c in chain], raiseMinimumTo=TLS_MINIMUM)
            self._client_cert, self._client_chain = leaf, chain
        if s.tls_port and self.server is None:
            raise TlsSetupError("sip.tls_cert", "must be set when sip.tls_port is (a TLS listener "
                              "needs a certificate and its key)")
        if s.tls_client_cert or s.tls_client_key:
            for key, other in (("tls_client_key", "tls_client_cert"),
                               ("tls_client_cert", "tls_client_key")):
                if not getattr(s, key):
                    raise TlsSetupError(f"sip.{key}", f"must be set when sip.{other} is")
            self._client_cert, self._client_chain = _identity(
                "sip.tls_client_cert", s.tls_client_cert, "sip.tls_client_key", s.tls_client_key)
        self._clients: dict[str, IOpenSSLClientConnectionCreator] = {}

    def client(self, server_name: str) -> IOpenSSLClientConnectionCreator:
        """Options for a connection to ``server_name`` (SNI and the name verified): made once
        per name, shared by every connection to it."""
        options = self._clients.get(server_name)
        if options is None:
            extra: dict[str, Any] = {"raiseMinimumTo": TLS_MINIMUM}
            if self._client_chain:
                extra["extraCertChain"] = [c.original for c in self._client_chain]
            options = ssl.optionsForClientTLS(
                server_name, trustRoot=self._trust, clientCertificate=self._client_cert,
                extraCertificateOptions=extra)
            self._clients[server_name] = options
        return options
