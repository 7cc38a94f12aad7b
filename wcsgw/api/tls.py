"""HTTPS and WSS on the gateway's one site: the listening port, and the certificate's reload.

Why natively and not only behind a reverse proxy: browsers give the microphone only to
``https://`` pages, and a gateway that needs a second daemon before its first call is a trap
for a first deployment.  The proxy stays a documented alternative (docs/configuration.md).
The site is the same either way — TLS wraps the connection below twisted.web, so the front
door (:mod:`wcsgw.api.front`: Host allow-list, body limit, header and body deadlines) and
every resource see the same requests as over plain HTTP.

Reloading: ACME clients renew certificates every few weeks by rewriting the two files, then
signal the service (``systemctl reload`` sends SIGHUP).  :class:`ReloadingTls` is the
connection creator the listening port holds; it makes each new connection from its *current*
context, and :meth:`ReloadingTls.reload` swaps that context for one built from the files as
they are now.  Connections already open keep the context they were made with, so calls and
open WebSockets never notice.  A reload that fails (a half-written file, a key that does not
match) keeps the old context and says why in the log: a running gateway must not lose its
HTTPS over a botched renewal.  (At start-up the same problems stop the gateway instead, with
one line naming the key: :mod:`wcsgw.api.tlscontext`.)
"""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any, Callable

from OpenSSL import SSL
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from twisted.logger import Logger
from zope.interface import implementer  # type: ignore[import-untyped]

from wcsgw.api.tlscontext import describe, read_files, server_context
from wcsgw.config import ConfigError

__all__ = ["ReloadingTls"]

log = Logger(namespace="wcsgw.http")

_Handler = Callable[[int, FrameType | None], Any] | int | None


@implementer(IOpenSSLServerConnectionCreator)
class ReloadingTls:
    """The listening port's connection creator: each connection from the current context.

    Built from the files at once (ConfigError naming the key when they are not usable);
    :meth:`reload` re-reads them; :meth:`watch_sighup` makes SIGHUP do that."""

    def __init__(self, cert_path: str, key_path: str) -> None:
        self.cert_path = cert_path
        self.key_path = key_path
        cert_pem, key_pem = read_files(cert_path, key_path)
        self._context = server_context(cert_pem, key_pem)
        #: subject and validity of the certificate in use, for the log
        self.loaded = describe(cert_pem)
        self._previous: _Handler = None
        self._watching = False

    @classmethod
    def from_settings(cls, http: Any) -> "ReloadingTls | None":
        """From :class:`wcsgw.config.HttpSettings`: None when the site is plain HTTP."""
        return cls(http.tls_cert, http.tls_key) if http.tls else None

    def serverConnectionForTLS(self, tlsProtocol: object) -> SSL.Connection:  # noqa: N802,N803 (Twisted API)
        return SSL.Connection(self._context, None)

    def reload(self) -> bool:
        """Swap in a context from the files as they are now; keep the old one (and log why)
        when they are not usable.  True when the new certificate is in use."""
        try:
            cert_pem, key_pem = read_files(self.cert_path, self.key_path)
            context = server_context(cert_pem, key_pem)
        except ConfigError as exc:
            log.error("TLS certificate not reloaded, the previous one stays in use: {problem}",
                      problem=str(exc))
            return False
        self._context = context
        self.loaded = describe(cert_pem)
        log.info("TLS certificate reloaded: {subject}", subject=self.loaded)
        return True

    # -- SIGHUP ------------------------------------------------------------------------------

    def watch_sighup(self, reactor: Any) -> None:
        """SIGHUP reloads the files.  Like Twisted's own SIGINT/SIGTERM handlers, the handler
        only hands the work to the reactor (``callFromThread`` is safe from a signal handler);
        a Python handler that was there before is still called."""
        if self._watching:
            return

        def on_hup(signum: int, frame: FrameType | None) -> None:
            reactor.callFromThread(self.reload)
            if callable(previous):
                previous(signum, frame)

        previous = signal.signal(signal.SIGHUP, on_hup)
        self._previous, self._watching = previous, True

    def stop_watching(self) -> None:
        """Give SIGHUP back to the handler it had before :meth:`watch_sighup`."""
        if self._watching:
            signal.signal(signal.SIGHUP, self._previous if self._previous is not None
                          else signal.SIG_DFL)
            self._previous, self._watching = None, False

