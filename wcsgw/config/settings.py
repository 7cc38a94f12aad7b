"""The settings themselves: one frozen attrs class per config section, ``Config`` holding them.

Why attrs frozen classes with defaults: every key has a safe default (``Config()`` is a
working loopback-only gateway), other layers read plain typed attributes and cannot change
them by accident, and secrets (passwords, REST tokens) are masked in ``repr``.  What values a
key may take is not here but in :mod:`wcsgw.config.sections`.
"""

from __future__ import annotations

from typing import Sequence

import attrs

from wcsgw import __version__
from wcsgw.config.dialplan import DialPlanSettings, RouteSettings

__all__ = [
    "LOG_LEVELS",
    "Account",
    "AppSettings",
    "CodecSettings",
    "Config",
    "HttpSettings",
    "LimitsSettings",
    "LogSettings",
    "MediaSettings",
    "PolicySettings",
    "RestSettings",
    "SipSettings",
    "TestLinesSettings",
    "IceServer",
    "WebRtcSettings",
    "advertised",
]

#: Accepted ``[log] level`` values, least to most severe.
LOG_LEVELS = ("debug", "info", "warn", "error")


def _mask(value: str) -> str:
    return "'***'" if value else "''"


def _mask_list(values: Sequence[str]) -> str:
    return "[" + ", ".join("'***'" for _ in values) + "]"


def advertised(advertised_address: str, listen: str) -> str:
    """The address peers are told to use: the configured advertised address, else the listen
    address, else 127.0.0.1 when listening on a wildcard (a wildcard is no address a peer
    could send to, and loopback is the safe guess for a default install)."""
    if advertised_address:
        return advertised_address
    if listen in ("0.0.0.0", "::"):
        return "127.0.0.1"
    return listen


@attrs.frozen
class HttpSettings:
    """The one twisted.web site (Phone UI, SDK, WebSocket, REST, health)."""

    listen: str = "127.0.0.1"
    port: int = 8080
    allowed_origins: tuple[str, ...] = ()
    #: Host header values accepted besides IP literals and localhost (DNS rebinding defence)
    server_names: tuple[str, ...] = ()
    #: seconds a client has to send a request's headers, then its body (slow-loris defence)
    header_timeout: float = 10.0
    body_timeout: float = 10.0
    #: largest request body (REST JSON), bytes; checked on Content-Length before reading
    max_body: int = 64 * 1024
    #: PEM files of the site's certificate chain (leaf first) and its private key: both set =
    #: HTTPS and WSS on ``port`` (wcsgw.api.tls), both re-read on SIGHUP; "" = plain HTTP
    tls_cert: str = ""
    tls_key: str = ""
    #: seconds a session, its registration and its calls outlive a dropped WebSocket, waiting
    #: for a ``connect`` with its ``authToken`` (0: the session ends with its socket)
    resume_seconds: int = 30

    @property
    def tls(self) -> bool:
        """Whether the site speaks HTTPS (the config check makes both files set or neither)."""
        return bool(self.tls_cert and self.tls_key)


@attrs.frozen
class SipSettings:
    """The SIP endpoint: one UDP and one TCP listener on the same port, and RFC 3261 timers."""

    listen: str = "127.0.0.1"
    port: int = 5060
    advertised_address: str = ""
    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    max_message_size: int = 65535
    max_connections: int = 1024
    idle_timeout: float = 300.0
    user_agent: str = f"wcsgw/{__version__}"
    no_answer_timeout: float = 60.0
    decline_status: int = 603
    #: SIP over TLS (wcsgw.sip.tls): the listener's port (0 = none), its certificate and key,
    #: the CA file servers are verified against ("" = the system's CAs), and the client
    #: certificate shown to servers that ask ("" = tls_cert/tls_key, if any)
    tls_port: int = 0
    tls_cert: str = ""
    tls_key: str = ""
    tls_ca: str = ""
    tls_client_cert: str = ""
    tls_client_key: str = ""
    #: seconds between RFC 5626 CRLF pings on the TCP/TLS connections we open; 0 = none
    keepalive_interval: int = 0

    #: RFC 3263 server location (wcsgw.sip.dnslocator): NAPTR/SRV/A for host names, with
    #: failover to the next target; off = names resolved by A record only, as before
    dns_location: bool = False
    #: the DNS servers asked ("ip" or "ip:port"); empty = those of /etc/resolv.conf
    dns_servers: tuple[str, ...] = ()
    #: RFC 4028 session timers (wcsgw.sip.usage.sessiontimer): the interval our INVITEs ask
    #: for (0 = none asked; a peer's is still honoured) and the shortest we take
    session_expires: int = 1800
    min_se: int = 90
    #: RFC 3262 100rel/PRACK (wcsgw.sip.usage.prack): "off", "supported" or "required"
    prack: str = "supported"

    @property
    def advertised_host(self) -> str:
        """Host to put in Via/Contact (see :func:`advertised`)."""
        return advertised(self.advertised_address, self.listen)


@attrs.frozen
class MediaSettings:
    """Media sockets of both legs: the browser's (ICE-lite, DTLS-SRTP, one port per call) and
    the SIP side's (RTP on an even port, RTCP on the next), all from one port range."""

    listen: str = "127.0.0.1"
    advertised_address: str = ""
    #: what browsers are told (ICE candidate, c=): the public side behind 1:1 NAT; "" = as
    #: advertised_address.  Two keys because one address cannot be right for both sides
    #: when the gateway straddles a NAT: the PBX must never see the public address, the
    #: browser never the private one.
    browser_address: str = ""
    #: what the SIP side is told (c= and o= of SDP toward the PBX); "" = as advertised_address
    sip_address: str = ""
    port_min: int = 20000
    port_max: int = 29999
    rtp_timeout: float = 30.0
    #: one UDP port (and ICE-TCP on the same number) for every browser leg, outside the
    #: port range; 0 = a port per call from the range (wcsgw.webrtc.sharedport)
    browser_port: int = 0

    @property
    def advertised_host(self) -> str:
        """The default of both sides' addresses (see :func:`advertised`)."""
        return advertised(self.advertised_address, self.listen)

    @property
    def browser_host(self) -> str:
        """Address in ICE candidates and SDP toward browsers."""
        return self.browser_address or self.advertised_host

    @property
    def sip_host(self) -> str:
        """Address in SDP toward the SIP side."""
        return self.sip_address or self.advertised_host


@attrs.frozen
class TestLinesSettings:
    """The built-in test lines: ``echo`` (returns your audio) and ``tone`` (1 kHz), reachable
    with an empty SIP domain, so a fresh install can make a call with no PBX anywhere."""

    __test__ = False  # not a test case, whatever its name says

    enabled: bool = True


@attrs.frozen
class RestSettings:
    """REST API access: non-empty ``tokens`` means ``Authorization: Bearer <token>`` is needed."""

    tokens: tuple[str, ...] = attrs.field(default=(), repr=_mask_list)
    media_folder: str = ""


@attrs.frozen
class PolicySettings:
    """Where sessions may register/call; empty = only the gateway's own test lines."""

    allowed_domains: tuple[str, ...] = ()
    #: regular expressions a dialled number must match one of (empty: any number)
    allowed_numbers: tuple[str, ...] = ()
    #: regular expressions no dialled number may match (checked after allowed_numbers)
    denied_numbers: tuple[str, ...] = ()
    #: SIP header names browsers may add to their INVITEs (``X-*``: a prefix)
    allowed_headers: tuple[str, ...] = ("X-*",)
    #: a far end's REFER: "ask" the browser, "accept" within policy, or "refuse" (403)
    incoming_transfers: str = "ask"
    #: seconds the browser has to answer a transferRequest before it counts as refused
    transfer_timeout: float = 15.0


@attrs.frozen
class LimitsSettings:
    """Caps that keep one browser, one address or one session from taking the gateway for
    itself; each refusal is a clear error, and nothing of a refused call is left behind."""

    calls_per_session: int = 4
    sessions_per_ip: int = 20
    calls_per_minute_per_ip: int = 30
    max_sessions: int = 1000
    #: media ports kept for sessions that have no call yet: a session with a live call cannot
    #: take the last ``port_reserve`` free ports (at most a quarter of the range), so it cannot
    #: starve the others
    port_reserve: int = 64
    #: seconds a draining gateway (SIGTERM, REST) lets live calls finish before it ends them
    drain_seconds: int = 600
    #: overload control: new calls are refused while the event loop runs this late (median)
    #: over a short window (0: not checked) ...
    max_loop_lag_ms: int = 50
    #: ... or while the process uses more than this share of one core (0: not checked)
    max_cpu_percent: int = 90


@attrs.frozen
class LogSettings:
    """Minimum level of log events that are written, and how: ``text`` lines or ``json``
    (one JSON object a line, for log shippers)."""

    level: str = "info"
    format: str = "text"


@attrs.frozen
class ClusterSettings:
    """Several gateway processes as one (docs/scaling.md).  ``redis_url`` "" = one process,
    no shared state (nothing else here is read).  ``node_id``: this process's name in the
    cluster ("" = ``<host>:<http.port>``); ``internal_url``: where the other nodes reach this
    one's REST API to hand it a request for one of its calls ("" = ``http://<http.listen>:
    <http.port>``); ``secret``: the key that signs those requests (required with
    ``redis_url``; masked)."""

    redis_url: str = attrs.field(default="", repr=_mask)
    node_id: str = ""
    internal_url: str = ""
    secret: str = attrs.field(default="", repr=_mask)


@attrs.frozen
class StateSettings:
    """Where the gateway keeps what outlives a process (the call records' SQLite file, the
    recordings) unless their own keys say otherwise; relative to the working directory."""

    folder: str = "state"


@attrs.frozen
class CdrSettings:
    """Call detail records (docs/operations.md): ``database`` "" = ``cdr.sqlite`` in the state
    folder, or an SQLAlchemy URL (``sqlite:///path``, ``postgresql://user:pw@host/db``;
    masked: it may hold a password); records older than ``retention_days`` are deleted (0:
    kept for ever)."""

    database: str = attrs.field(default="", repr=_mask)
    retention_days: int = 90


@attrs.frozen
class RecordingSettings:
    """Call recordings: ``folder`` "" = ``recordings`` in the state folder; ``all_calls``
    records every browser-to-phone call from its answer (else on demand: ``record``, REST
    ``call/record``, a hook's reply)."""

    folder: str = ""
    all_calls: bool = False


@attrs.frozen
class CodecSettings:
    """Which codecs each leg is offered, in order, and whether the gateway may transcode.

    Names are the catalogue's spellings (:mod:`wcsgw.sdp.catalogue`: ``"opus"``, ``"PCMU"``,
    ``"speex/16000"``), normalised whatever case the file used.  telephone-event is never
    listed: it is added at each clock rate an offer needs."""

    sip: tuple[str, ...] = ("opus", "G722", "PCMU", "PCMA", "G729", "speex/16000", "speex/8000")
    webrtc: tuple[str, ...] = ("opus", "PCMU", "PCMA", "G722")
    video: tuple[str, ...] = ("VP8", "H264")
    transcoding: bool = True


@attrs.frozen
class IceServer:
    """One STUN/TURN server browsers are told about (``[webrtc] ice_servers``).

    With ``secret`` (coturn's ``use-auth-secret``) each session gets its own short-lived
    username and credential, minted from it (:mod:`wcsgw.api.iceservers`); the secret itself
    never leaves the gateway.  ``username`` + ``credential`` are given to every browser as
    they are.  Both are masked in ``repr``."""

    urls: tuple[str, ...]
    username: str = ""
    credential: str = attrs.field(default="", repr=_mask)
    secret: str = attrs.field(default="", repr=_mask)
    #: seconds a minted credential stays valid (coturn refuses it after that)
    ttl: int = 86400


@attrs.frozen
class WebRtcSettings:
    """What browsers are told for their side of ICE.  The gateway itself stays ICE-lite: a
    browser that relays through TURN still reaches the gateway's host candidate."""

    ice_servers: tuple[IceServer, ...] = ()


@attrs.frozen
class Account:
    """A static SIP account the gateway registers at start and unregisters at stop (trunk-style).

    ``auth_name`` (the digest username) defaults to ``login``; an empty one means the same.
    ``name`` makes it a server-held account that sessions and REST calls use by that name
    (empty: a registration only).
    """

    login: str
    domain: str
    name: str = ""
    auth_name: str = ""
    password: str = attrs.field(default="", repr=_mask)
    outbound_proxy: str = ""
    #: 5061 when unset and transport is tls (wcsgw.config.sections)
    port: int = 5060
    transport: str = "udp"
    register: bool = True
    expires: int = 600
    display_name: str = ""
    #: SDES-SRTP toward this account's SIP side: off, optional or mandatory
    srtp: str = "off"
    #: trunk health and caller identity (docs/configuration.md): named accounts only
    options_interval: int = 0
    options_failures: int = 3
    asserted_identity: str = ""
    privacy: str = ""

    def __attrs_post_init__(self) -> None:
        if not self.auth_name:
            object.__setattr__(self, "auth_name", self.login)  # frozen: set once, here

    @property
    def aor(self) -> str:
        """Address of record, ``sip:login@domain``."""
        return f"sip:{self.login}@{self.domain}"

    @property
    def server_host(self) -> str:
        """Where requests go: the outbound proxy if set, else the domain (port: :attr:`port`)."""
        return self.outbound_proxy or self.domain


@attrs.frozen
class AppSettings:
    """An ``[[apps]]`` entry (docs/hooks.md): the backend that decides for the sessions whose
    ``appKey`` is ``key`` ("" = sessions that send none), at ``hook_url``, signing with
    ``secret`` (masked), waiting ``timeout`` seconds for a decision."""

    hook_url: str
    secret: str = attrs.field(repr=_mask)
    key: str = ""
    timeout: float = 5.0


@attrs.frozen
class Config:
    """The whole validated configuration.  ``Config()`` is the built-in defaults."""

    http: HttpSettings = HttpSettings()
    sip: SipSettings = SipSettings()
    media: MediaSettings = MediaSettings()
    testlines: TestLinesSettings = TestLinesSettings()
    rest: RestSettings = RestSettings()
    policy: PolicySettings = PolicySettings()
    limits: LimitsSettings = LimitsSettings()
    log: LogSettings = LogSettings()
    state: StateSettings = StateSettings()
    cluster: ClusterSettings = ClusterSettings()
    cdr: CdrSettings = CdrSettings()
    recording: RecordingSettings = RecordingSettings()
    codecs: CodecSettings = CodecSettings()
    webrtc: WebRtcSettings = WebRtcSettings()
    accounts: tuple[Account, ...] = ()
    dialplan: DialPlanSettings = DialPlanSettings()
    routes: tuple[RouteSettings, ...] = ()
    apps: tuple[AppSettings, ...] = ()
