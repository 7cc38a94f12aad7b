"""The site's listening port as a twistd service: plain HTTP, or HTTPS/WSS with the
certificate re-read on SIGHUP (:mod:`wcsgw.api.tls`)."""

from __future__ import annotations

from typing import Any

from twisted.application.service import Service
from twisted.logger import Logger
from twisted.web.server import Site

from wcsgw.api.tls import ReloadingTls
from wcsgw.config import HttpSettings
from wcsgw.sip.reactor import ListeningPort

__all__ = ["HttpService", "listen_site"]

log = Logger(namespace="wcsgw.http")


def listen_site(reactor: Any, http: HttpSettings, site: Site,
                tls: ReloadingTls | None) -> ListeningPort:
    """Listen on ``http.listen:http.port`` with the site: HTTPS through ``tls`` when given,
    plain HTTP otherwise.  TLS wraps the connection below twisted.web, so the front door
    (:mod:`wcsgw.api.front`) and every resource see the same requests either way."""
    if tls is None:
        port = reactor.listenTCP(http.port, site, interface=http.listen)
    else:
        port = reactor.listenSSL(http.port, site, tls, interface=http.listen)
    where = port.getHost()
    shown = f"[{where.host}]" if ":" in where.host else where.host
    scheme = "http" if tls is None else "https"
    log.info("{what} listening on {scheme}://{where}/{cert}", what=scheme.upper(), scheme=scheme,
             where=f"{shown}:{where.port}", cert="" if tls is None else f" ({tls.loaded})")
    return port  # type: ignore[no-any-return]


class HttpService(Service):
    """Listens with a Site on ``listen:port`` (TCP; HTTPS when ``[http] tls_cert`` and
    ``tls_key`` are set, the files re-read on SIGHUP).

    Like ``twisted.application.internet.TCPServer``, it binds in ``privilegedStartService`` so
    a busy port stops twistd at start-up instead of leaving a gateway without its HTTP face;
    unlike it, the bound address is public (:attr:`address`), which tests using port 0 need.
    The certificate files are read when the service is made, so a bad one stops the gateway
    while the service tree is built (ConfigError naming the key), before anything listens.
    """

    name = "http"

    def __init__(self, settings: HttpSettings, site: Site) -> None:
        self.settings = settings
        self.site = site
        self._port: ListeningPort | None = None
        #: HTTPS: the connection creator that SIGHUP reloads; None for plain HTTP
        self.tls = ReloadingTls.from_settings(settings)

    @property
    def address(self) -> tuple[str, int] | None:
        """(host, port) actually bound, or None when not listening."""
        if self._port is None:
            return None
        host = self._port.getHost()
        return host.host, host.port

    def _listen(self) -> None:
        if self._port is None:
            from twisted.internet import reactor

            self._port = listen_site(reactor, self.settings, self.site, self.tls)

    def privilegedStartService(self) -> None:
        super().privilegedStartService()  # type: ignore[no-untyped-call]
        self._listen()

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]
        self._listen()
        if self.tls is not None:
            from twisted.internet import reactor

            self.tls.watch_sighup(reactor)

    def stopService(self) -> Any:
        super().stopService()  # type: ignore[no-untyped-call]
        if self.tls is not None:
            self.tls.stop_watching()
        port, self._port = self._port, None
        if port is not None:
            return port.stopListening()
        return None
