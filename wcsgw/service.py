"""Build the gateway's service tree from a validated :class:`~wcsgw.config.Config`.

Both ways of starting the gateway — the twistd plugin (``twistd -n wcsgw --config PATH``) and
``twistd -ny twistd.tac`` — call :func:`make_service`, so they run exactly the same thing.  The
tree is a ``MultiService`` with:

* the HTTP site (:class:`~wcsgw.api.listener.HttpService`, HTTPS when configured): the Phone
  UI, SDK, WebSocket, REST, health and metrics, all on one twisted.web ``Site`` at
  ``http.listen:http.port``;
* the SIP endpoint, :class:`wcsgw.sip.service.SipService` (UDP + TCP, accounts).

Logging goes through twisted.logger, filtered at ``[log] level`` (see
:func:`make_log_observer`).  Nothing here logs a password or a token: accounts are logged by
address of record only.
"""

from __future__ import annotations

import functools
from typing import IO, Any, Callable, Protocol, cast

from twisted.application.service import MultiService, Service
from twisted.internet import defer
from twisted.logger import ILogObserver, Logger
from twisted.python.components import Componentized
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from wcsgw import __version__
from wcsgw.api.banner import log_banner
from wcsgw.api.health import HealthResource
from wcsgw.api.listener import HttpService
from wcsgw.api.metrics import MetricsResource
from wcsgw.calls.stores import make_call_records, make_recordings
from wcsgw.config import Config, ConfigError
from wcsgw.sip.reactor import Clock
from wcsgw.sip.service import SipService
from wcsgw.sip.usage.policy import policy_of_settings, set_session_policy

__all__ = [
    "make_service",
    "make_site",
    "make_root",
    "make_log_observer",
    "GatewayService",
    "HttpService",
    "HealthResource",
]

log = Logger()

def make_log_observer(level: str, output: IO[str], format: str = "text") -> ILogObserver:
    """The ``[log]`` observer on ``output``: events below ``level`` dropped, Twisted's
    per-socket lines as debug, ``text`` or ``json`` lines, call lines given their session id
    (:mod:`wcsgw.api.logformat`; :func:`make_service` makes it a call registry watcher).

    twisted.logger's observers write every level, debug included, so without this filter an
    ``info`` gateway would still write every debug event.
    """
    from wcsgw.api.logformat import make_log_observer as make

    return make(level, output, format)  # type: ignore[return-value]  # zope Interfaces


_PLACEHOLDER = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>wcsgw</title></head>
<body>
<h1>wcsgw</h1>
<p>wcsgw &mdash; Phone UI arrives with the first-call work.</p>
<p>Health: <a href="/health">/health</a></p>
</body>
</html>
"""


class PlaceholderPage(Resource):
    """``/`` until the Phone UI lands: says what this server is instead of a bare 404."""

    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/html; charset=utf-8")  # type: ignore[no-untyped-call]
        return _PLACEHOLDER.encode()


def make_root(config: Config, gateway: Any = None) -> Resource:
    """The resource tree of the one site: Phone UI, SDK and WebSocket from wcsgw.api when a
    call gateway is given (the placeholder page otherwise), and /health."""
    if gateway is None:
        root = Resource()  # type: ignore[no-untyped-call]
        # arg-type: putChild wants an IResource, a zope Interface mypy cannot match a class to
        root.putChild(b"", PlaceholderPage())  # type: ignore[no-untyped-call,arg-type]
        root.putChild(b"health", HealthResource())  # type: ignore[arg-type]
        root.putChild(b"metrics", MetricsResource(None, config.rest.tokens))  # type: ignore[arg-type]
        return root
    from wcsgw.api.rest import build_rest_resource
    from wcsgw.api.site import build_site

    rest = build_rest_resource(gateway, config.rest.tokens,
                               media_folder=config.rest.media_folder or None,
                               max_body=config.http.max_body)
    children = {"health": HealthResource(gateway), "rest-api": rest,  # 503 while draining
                "metrics": MetricsResource(gateway, config.rest.tokens)}
    # [webrtc] ice_servers: what `connect` hands each browser (TURN credentials minted per
    # session, on the wall clock the TURN server also reads)
    import time

    from wcsgw.api.iceservers import IceServers

    return build_site(gateway, children=children,
                      allowed_origins=config.http.allowed_origins,
                      server_names=config.http.server_names,
                      ice_servers=IceServers(config.webrtc.ice_servers, clock=time.time))


def make_site(config: Config, gateway: Any = None) -> Site:
    """The twisted.web Site behind the front door (:mod:`wcsgw.api.front`): every request's
    Host is checked against ``http.server_names``, its Content-Length against
    ``http.max_body`` before the body is read, and slow clients are cut off after
    ``http.header_timeout`` / ``http.body_timeout``.  Tracebacks are never shown to clients
    (they may hold secrets)."""
    from wcsgw.api.front import FrontDoor, GatewaySite

    site = GatewaySite(make_root(config, gateway), FrontDoor.from_settings(config.http))
    site.displayTracebacks = False
    return site


class GatewayService(MultiService):
    """The root service.  Carries the config and, optionally, the log observer to use.

    Why the ``setServiceParent`` hook: twistd picks its log observer from the application's
    ``ILogObserver`` component right after the plugin's ``makeService`` returns, and that
    component is the only public way for a plugin to put a level filter in front of the output.
    So when a ``log_observer`` was given and the parent is an ``Application`` without one, it is
    installed there.
    """

    #: the B2BUA (sessions, live calls), set by :func:`make_service`
    call_gateway: Any

    def __init__(self, config: Config, log_observer: ILogObserver | None = None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.config = config
        self.log_observer = log_observer

    def setServiceParent(self, parent: Any) -> Any:
        if (
            self.log_observer is not None
            and isinstance(parent, Componentized)
            and parent.getComponent(ILogObserver, None) is None  # type: ignore[no-untyped-call]
        ):
            parent.setComponent(ILogObserver, self.log_observer)  # type: ignore[no-untyped-call]
        return super().setServiceParent(parent)  # type: ignore[no-untyped-call]

    def startService(self) -> None:
        config = self.config
        accounts = ", ".join(a.aor for a in config.accounts) or "none"
        log.info(
            "wcsgw {version} starting: SIP {sip_listen}:{sip_port} (UDP+TCP, advertised as "
            "{advertised}), accounts: {accounts}, log level {log_level_name}",
            version=__version__,
            sip_listen=config.sip.listen,
            sip_port=config.sip.port,
            advertised=config.sip.advertised_host,
            accounts=accounts,
            log_level_name=config.log.level,
        )
        super().startService()  # type: ignore[no-untyped-call]
        for sip in (s for s in self if isinstance(s, SipService)):  # RFC 3262, 4028 policy
            set_session_policy(sip.endpoint, policy_of_settings(config.sip))
        log_banner(config, self)  # where it listens: the one source `make run` shows

    def stopService(self) -> Any:
        """Children stop one after the other, in reverse order of start — MultiService would
        stop them all at once, and the SIP sockets would close while the calls' BYEs are
        still waiting for their answers: the site first (no new calls), then the calls, the
        test lines, and the SIP endpoint last."""
        Service.stopService(self)  # type: ignore[no-untyped-call]

        async def in_order() -> None:
            for service in reversed(list(self)):
                await defer.maybeDeferred(service.stopService)

        return defer.ensureDeferred(in_order())


class ChildService(Protocol):
    """What :func:`make_service` does with the SIP service ``sip_factory`` makes (an
    ``IService``: a zope Interface, which mypy cannot check a class against)."""

    def setName(self, name: str) -> None: ...  # noqa: N802 (Twisted API)

    def setServiceParent(self, parent: Any) -> Any: ...  # noqa: N802 (Twisted API)


def _sip_service(config: Config) -> ChildService:
    # Imported here so a broken SIP layer shows up as an error naming it, at service build.
    from wcsgw.sip.service import SipService
    from wcsgw.sip.tls import TlsSetupError

    try:
        return _sip_class(config, SipService)(config.sip, accounts=config.accounts)
    except TlsSetupError as exc:  # a [sip] tls_* file that cannot be used
        raise ConfigError(exc.key, exc.problem) from None


def _sip_class(config: Config, plain: type[SipService]) -> type[SipService]:
    """RFC 3263 NAPTR/SRV location with failover when ``[sip] dns_location`` is on."""
    if config.sip.dns_location:
        from wcsgw.sip.dnslocator import LocatingSipService

        return LocatingSipService
    return plain


def make_service(
    config: Config,
    log_observer: ILogObserver | None = None,
    sip_factory: Callable[[Config], ChildService] = _sip_service,
) -> GatewayService:
    """The whole gateway as one ``MultiService`` (HTTP site + SIP endpoint).

    ``log_observer``: installed as the application's observer (see :class:`GatewayService`).
    ``sip_factory``: lets tests replace the SIP endpoint.
    """
    top = GatewayService(config, log_observer)
    # Start order matters (a MultiService starts its children in order): the SIP endpoint and
    # the test lines are up before the HTTP site lets a browser place a call.
    sip = sip_factory(config)
    if getattr(sip, "name", None) is None:
        sip.setName("sip")
    sip.setServiceParent(top)
    gateway = None
    if isinstance(sip, SipService):
        gateway = make_call_gateway(config, sip, top)
        call_ids = getattr(log_observer, "call_ids", None)
        if call_ids is not None:  # the log fills in session ids of lines naming only a call
            gateway.registry.watchers.append(call_ids)
    #: the B2BUA (sessions, live calls), for REST and for tests; None without a real SIP side
    top.call_gateway = gateway
    HttpService(config.http, make_site(config, gateway)).setServiceParent(top)  # type: ignore[no-untyped-call]
    return top


def codec_policy(config: Config) -> Any:
    """``[codecs]`` plus what this machine can transcode, checked: codecs that can be neither
    relayed nor transcoded are logged as warnings; a leg left with no usable codec raises
    ConfigError (naming the key and the Debian package to install)."""
    from wcsgw.calls.plan import CodecPolicy, check_policy
    from wcsgw.media.codeclibs import available

    c = config.codecs
    policy = CodecPolicy.from_names(c.sip, c.webrtc, c.video, c.transcoding)
    for warning in check_policy(policy, available()):
        log.warn("{problem}", problem=warning)  # trial takes a "warning" key for a Python warning
    return policy


def make_call_gateway(config: Config, sip: SipService, parent: MultiService) -> Any:
    """The B2BUA: media ports, the built-in test lines (when enabled) and the CallGateway."""
    from twisted.internet import reactor

    from wcsgw.calls.environment import CallEnvironment
    from wcsgw.calls.filecall import FileCall
    from wcsgw.calls.gateway import CallGateway
    from wcsgw.calls.handed import HandedCall
    from wcsgw.calls.inbound import InboundCall
    from wcsgw.calls.outbound import OutboundCall
    from wcsgw.calls.policy import Policy
    from wcsgw.calls.testlines import TestLines
    from wcsgw.media.ports import PortAllocator
    from wcsgw.sip.account import SipAccount

    media = config.media
    allocator = PortAllocator(media.listen, media.port_min, media.port_max)
    testlines = None
    if config.testlines.enabled:
        testlines = TestLines(reactor, allocator=allocator, sip_settings=config.sip)
        testlines.setName("testlines")  # type: ignore[no-untyped-call]
        testlines.setServiceParent(parent)  # type: ignore[no-untyped-call]

    def testlines_account() -> SipAccount:
        assert testlines is not None
        return SipAccount(login="wcsgw", domain="127.0.0.1", port=testlines.port)

    env = CallEnvironment(
        reactor=reactor, sip=sip, allocator=allocator, media_host=media.listen,
        browser_address=media.browser_host, sip_address=media.sip_host,
        rtp_timeout=media.rtp_timeout,
        no_answer_timeout=config.sip.no_answer_timeout,
        testlines_account=testlines_account if testlines is not None else None,
        decline_status=config.sip.decline_status,
        codecs=codec_policy(config),
        incoming_transfers=config.policy.incoming_transfers,
        transfer_timeout=config.policy.transfer_timeout,
    )
    from wcsgw.calls.accounts import AccountBook
    from wcsgw.calls.dialplan import DialPlan

    # [[accounts]] with a name: the very accounts the SIP service registers (one registration
    # each, shared by every session bound to one)
    accounts = AccountBook((held.name, account) for held, account
                           in zip(config.accounts, sip.accounts) if held.name)
    policy = Policy(config.policy.allowed_domains, testlines.uri if testlines else None,
                    allowed_numbers=config.policy.allowed_numbers,
                    denied_numbers=config.policy.denied_numbers,
                    allowed_headers=config.policy.allowed_headers,
                    dialplan=DialPlan.from_settings(config.dialplan, config.routes,
                                                    accounts.named))
    env.policy = policy
    from wcsgw.webrtc.certificate import DtlsCertificate

    env.certificate = DtlsCertificate.generate()
    shared: Any = None
    if media.browser_port:
        # One UDP port (+ ICE-TCP) for every browser leg: legs register there, take no port.
        from wcsgw.webrtc.leg import WebRtcLeg
        from wcsgw.webrtc.sharedport import SharedPort, SharedPortService

        shared = SharedPort(reactor, media.listen, media.browser_port)
        SharedPortService(shared).setServiceParent(parent)  # type: ignore[no-untyped-call]
        env.make_browser_leg = functools.partial(WebRtcLeg, mux=shared)
    # [limits]: the call-rate window runs on the reactor's clock (tests inject their own)
    gateway = CallGateway(sip, policy, functools.partial(OutboundCall, env=env), limits=config.limits,
                          clock=cast(Clock, reactor).seconds)
    gateway.inbound_factory = functools.partial(InboundCall, env=env)
    gateway.file_call_factory = functools.partial(FileCall, env=env)
    gateway.handed_call_factory = functools.partial(HandedCall, env=env)
    make_recordings(config, gateway, parent)
    gateway.resume_seconds = config.http.resume_seconds  # a dropped WebSocket's session waits
    gateway.media_ports = allocator  # the port reserve ([limits]), metrics, tests: ports in use
    gateway.browser_port = shared  # its counters in /metrics
    gateway.accounts = accounts
    from wcsgw.calls.trunks import Trunks, TrunkService

    # the named [[accounts]] as trunks: OPTIONS keep-alive, caller identity (RFC 3325)
    gateway.trunks = Trunks.from_config(config.accounts, sip.accounts)
    TrunkService(gateway.trunks, sip).setServiceParent(parent)  # type: ignore[no-untyped-call]
    if config.apps:  # [[apps]]: the REST hooks (none configured: none asked, as before)
        from wcsgw.calls.hooks.client import make_hooks

        gateway.hooks = make_hooks(config.apps, reactor)
    make_call_records(config, gateway, parent)
    from wcsgw.calls.messages import make_messages

    make_messages(gateway, parent)  # gateway.messages: SIP MESSAGE both ways
    from wcsgw.calls.statsticker import StatsTicker, session_attached

    # callStats every 5 s per call with media, one timer for all calls
    gateway.registry.watchers.append(StatsTicker(reactor, listening=session_attached(gateway.sessions)))
    from wcsgw.calls.ladders import install_ladders

    install_ladders(gateway, sip)  # the SIP ladder of every call (docs/operations.md)
    from wcsgw.calls.lifecycle import CallsService

    CallsService(gateway).setServiceParent(parent)  # type: ignore[no-untyped-call]
    from wcsgw.cluster.service import make_cluster

    make_cluster(config, gateway, parent)  # gateway.cluster; None without [cluster] redis_url
    cluster = getattr(gateway, "cluster", None)
    env.node_id = cluster.node_id if cluster is not None else None  # the call object's node
    return gateway
