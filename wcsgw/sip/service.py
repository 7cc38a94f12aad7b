"""The SIP side of the gateway as a Twisted service: listeners, endpoint, static accounts.

Starting binds UDP and TCP on the configured port (and TLS on ``tls_port`` when set; the TLS
files are read and checked when the service is built, so a bad one stops the start naming its
key) and registers the configured accounts; stopping (twistd on SIGTERM) first removes those
bindings (REGISTER with Expires: 0) and waits for the registrar's answers — bounded, so an
unreachable registrar cannot hold shutdown — and only then closes the sockets.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from twisted.application.service import Service
from twisted.internet import defer
from twisted.logger import Logger

from wcsgw.sip.account import SipAccount
from wcsgw.sip.capture import Observer
from wcsgw.sip.endpoint import EndpointConfig, SipEndpoint
from wcsgw.sip.reactor import SipReactor
from wcsgw.sip.registrations import AccountRegistration
from wcsgw.sip.tls import SipTls
from wcsgw.sip.transaction import TimerConfig
from wcsgw.sip.transport import SipTransport

log = Logger(namespace="wcsgw.sip")

#: How long a stopping gateway waits for its un-REGISTERs to be answered.
UNREGISTER_GRACE = 4.0


def account_from_settings(settings: Any) -> SipAccount:
    """The config file's ``[[accounts]]`` entry as the SIP layer's account."""
    return SipAccount(
        login=settings.login,
        auth_name=settings.auth_name or None,
        password=settings.password,
        domain=settings.domain,
        outbound_proxy=settings.outbound_proxy or None,
        port=settings.port,
        transport=settings.transport,
        register=settings.register,
        expires=settings.expires,
        display_name=settings.display_name or None,
        srtp=getattr(settings, "srtp", "off"),
    )


class SipService(Service):
    """Owns one :class:`SipEndpoint` and its :class:`SipTransport`."""

    def __init__(
        self,
        settings: Any,
        accounts: Sequence[Any] = (),
        reactor: SipReactor | None = None,
    ) -> None:
        self.settings = settings
        self.accounts = [account_from_settings(a) for a in accounts]
        self._reactor = reactor
        self.endpoint: SipEndpoint | None = None
        self.transport: SipTransport | None = None
        self.registration_listeners: list[Callable[[SipAccount, object], None]] = []
        #: the TLS contexts, built (files read and checked) now: TlsSetupError names the key
        self.tls = SipTls(settings)
        #: the endpoint's capture observer, installed when it is built (wcsgw.sip.capture)
        self.capture: Observer | None = None

    @property
    def reactor(self) -> Any:
        if self._reactor is None:
            from twisted.internet import reactor

            self._reactor = reactor
        return self._reactor

    @property
    def port(self) -> int:
        assert self.transport is not None
        return self.transport.port

    def startService(self) -> None:  # noqa: N802 (Twisted API)
        super().startService()  # type: ignore[no-untyped-call]
        s = self.settings
        self.transport = SipTransport(
            self.reactor, s.listen, s.port,
            max_message_size=s.max_message_size,
            max_connections=s.max_connections,
            idle_timeout=s.idle_timeout,
            tls=self.tls,
            tls_port=s.tls_port,
            keepalive_interval=float(s.keepalive_interval),
        )
        port = self.transport.bind()
        self.endpoint = SipEndpoint(EndpointConfig(
            host=s.advertised_host, port=port, user_agent=s.user_agent,
            timers=TimerConfig(t1=s.t1, t2=s.t2, t4=s.t4), tls_port=self.transport.tls_port,
        ))
        self.endpoint.capture = self.capture
        self.transport.attach(self.endpoint)
        log.info("SIP listening on {listen}:{port} (UDP, TCP)", listen=s.listen, port=port)
        if self.transport.tls_port:
            log.info("SIP listening on {listen}:{port} (TLS)", listen=s.listen,
                     port=self.transport.tls_port)
        for account in self.accounts:
            if account.register:
                self.register(account)

    def register(
        self,
        account: SipAccount,
        listener: Callable[[object], None] | None = None,
        contact_user: str | None = None,
    ) -> AccountRegistration:
        """Keep ``account`` registered until :meth:`unregister` or the service stops.
        ``listener`` hears this registration's events; ``registration_listeners`` hear all."""
        assert self.endpoint is not None and self.transport is not None

        def fan_out(event: object) -> None:
            if listener is not None:
                listener(event)
            for observer in list(self.registration_listeners):
                observer(account, event)

        reg = self.endpoint.register(account, self.reactor.seconds(), fan_out,
                                     contact_user=contact_user)
        return reg

    def unregister(self, reg: AccountRegistration) -> None:
        if self.endpoint is not None and self.transport is not None:
            self.endpoint.unregister(reg, self.reactor.seconds())

    def stopService(self) -> defer.Deferred[None]:  # noqa: N802
        super().stopService()  # type: ignore[no-untyped-call]
        return defer.ensureDeferred(self._stop())

    async def _stop(self) -> None:
        endpoint, transport = self.endpoint, self.transport
        if endpoint is None or transport is None:
            return
        if endpoint.registrations:
            await self._unregister_all(endpoint, transport)
        await transport.stop()
        self.endpoint = None

    def _unregister_all(self, endpoint: SipEndpoint,
                        transport: SipTransport) -> defer.Deferred[None]:
        """Fires when every binding is removed, or after UNREGISTER_GRACE at the latest."""
        done: defer.Deferred[None] = defer.Deferred()

        def removed(_reg: AccountRegistration) -> None:
            if not endpoint.registrations and not done.called:
                done.callback(None)

        endpoint.registration_removed.append(removed)

        def grace_over() -> None:
            if not done.called:
                done.callback(None)

        timer = self.reactor.callLater(UNREGISTER_GRACE, grace_over)
        endpoint.unregister_all(self.reactor.seconds())

        def cleanup(result: object) -> object:
            endpoint.registration_removed.remove(removed)
            if timer.active():
                timer.cancel()
            return result

        return done.addBoth(cleanup)
