"""The site's front door: what every HTTP request must pass before any resource sees it.

Three attacks are stopped here, once for every path (``/``, ``/sdk/``, ``/ws``, ``/rest-api``,
``/health``, ``/metrics``), rather than in each resource:

* **DNS rebinding** (issue 10, item 7).  A page on ``evil.example`` re-points its own name at
  the gateway; the victim's browser then talks to the gateway believing it is
  ``evil.example`` — same origin, so it may read the replies, and the WebSocket's
  Origin-equals-Host check passes.  What the browser cannot fake is the ``Host`` header: it
  is the attacker's name.  So Host must be an IP literal (rebinding needs a name), ``localhost``
  or one of ``http.server_names``; anything else is **421 Misdirected Request**.
* **Big bodies** (item 10).  twisted.web reads a whole body — into a temporary file above
  100 kB — before any resource runs, so a 40 MB POST was read and spooled before REST's 401.
  Here ``Content-Length`` is judged as soon as the headers are in: over ``http.max_body`` is
  **413** at once, before the body is read and before any token is looked at, and the
  connection is closed.  A chunked body is counted as it arrives and cut off the same way.
* **Slow clients** (slow-loris).  Twisted's own ``timeOut`` is an *idle* timeout that every
  byte resets, so one byte every few seconds held a connection forever.  Here a request's
  headers must be complete within ``http.header_timeout`` of the connection (or of the
  previous response, for keep-alive) and its body within ``http.body_timeout`` of the
  headers; otherwise **408** (when a request was under way) and the connection is closed.

The decisions are pure functions (:func:`host_allowed`, :func:`judge_headers`), unit-tested on
their own; :class:`GuardedChannel` is the thin Twisted side — an ``HTTPChannel`` whose hooks
call them — with :class:`GuardedRequest` (counts chunked bodies) and :class:`GatewaySite`,
the Site that uses both.  The site speaks HTTP/1.1 only (no HTTP/2 upgrade), so every request
goes through this channel — over HTTPS too (:mod:`wcsgw.api.tls`), where the TLS layer sits
beneath it: the deadlines run from the TCP connection, so a client that never finishes its
TLS handshake is cut off like one that never finishes its headers.

Refusals are logged at info with the peer address (never a header value beyond the Host).
"""

from __future__ import annotations

import ipaddress
import json
import re
from io import BytesIO
from typing import Any, Iterable, Sequence

import attrs
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOProtocol
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel
from twisted.web.server import Request, Site

__all__ = [
    "FrontDoor",
    "GatewaySite",
    "GuardedChannel",
    "GuardedRequest",
    "Refusal",
    "host_allowed",
    "judge_headers",
]

log = Logger(namespace="wcsgw.http")

#: After a refusal, how long the gateway keeps discarding what the client still sends (so the
#: client reads the answer instead of a reset) before it aborts the connection.
LINGER = 2.0
#: Bodies up to this size are kept in memory (twisted.web's own threshold for a temp file).
_IN_MEMORY = 100_000
_PORT = re.compile(r"^[0-9]{0,5}$")
_BRACKETED = re.compile(r"^\[([0-9A-Fa-f:.]+)\](?::([0-9]{0,5}))?$")


def _name(value: str) -> str:
    """A host name as compared: lower case, one trailing dot (the root) dropped."""
    value = value.lower()
    return value.removesuffix(".")


@attrs.frozen
class FrontDoor:
    """The settings the front door enforces (``[http]``: see docs/configuration.md)."""

    server_names: frozenset[str] = frozenset()
    max_body: int = 64 * 1024
    header_timeout: float = 10.0
    body_timeout: float = 10.0

    @classmethod
    def from_settings(cls, http: Any) -> "FrontDoor":
        """From :class:`wcsgw.config.HttpSettings` (or anything with its attributes)."""
        return cls(server_names=frozenset(_name(n) for n in http.server_names),
                   max_body=http.max_body, header_timeout=http.header_timeout,
                   body_timeout=http.body_timeout)


@attrs.frozen
class Refusal:
    """An answer given at the door: status, reason phrase, and the message for the body."""

    status: int
    reason: str
    message: str

    def response(self) -> bytes:
        """The whole HTTP response: a short JSON body (like REST's errors), connection close."""
        body = json.dumps({"error": self.message}).encode()
        return (f"HTTP/1.1 {self.status} {self.reason}\r\n"
                "Content-Type: application/json\r\n"
                "Cache-Control: no-store\r\n"
                "X-Content-Type-Options: nosniff\r\n"
                f"Content-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n").encode() + body


def host_allowed(host: bytes, server_names: Iterable[str] = ()) -> bool:
    """Whether a ``Host`` value (``name[:port]``, ``[v6][:port]``) may reach the site.

    Accepted: any IPv4 literal in dotted-quad form and any bracketed IPv6 literal (a rebinding
    page has a *name*; a browser never sends a numeric Host for one), ``localhost``, and the
    ``server_names`` (compared case-insensitively, without the port and one trailing dot).
    Refused: everything else, including forms that only some resolvers read as addresses
    (``127.1``, ``2130706433``, ``0x7f.0.0.1``), zone ids, and malformed ports."""
    try:
        text = host.decode("ascii")
    except UnicodeDecodeError:
        return False
    bracketed = _BRACKETED.match(text)
    if bracketed is not None:
        port = bracketed.group(2)
        if port and int(port) > 65535:
            return False
        try:
            ipaddress.IPv6Address(bracketed.group(1))
        except ValueError:
            return False
        return True
    name, colon, port = text.partition(":")
    if colon and (not _PORT.match(port) or (port and int(port) > 65535)):
        return False
    if not name or any(c.isspace() for c in name):
        return False
    try:
        ipaddress.IPv4Address(name)
        return True
    except ValueError:
        pass
    name = _name(name)
    return name == "localhost" or name in {_name(n) for n in server_names}


def _authority(target: bytes) -> bytes | None:
    """The authority of an absolute-form request target (``http://host:port/path``), else
    None (origin-form ``/path`` or ``*``)."""
    lowered = target[:8].lower()
    for scheme in (b"http://", b"https://"):
        if lowered.startswith(scheme):
            rest = target[len(scheme):]
            end = min((i for i in (rest.find(b"/"), rest.find(b"?"), rest.find(b"#")) if i >= 0),
                      default=len(rest))
            return rest[:end].rpartition(b"@")[2]
    return None


def _shown(host: bytes) -> str:
    return host[:100].decode("ascii", "replace")


def judge_headers(*, version: bytes, target: bytes, hosts: Sequence[bytes],
                  content_length: int | None, door: FrontDoor) -> Refusal | None:
    """The door's verdict once a request's headers are in (None: let it through).

    ``hosts``: every ``Host`` header value; ``content_length``: the announced length (None for
    a chunked body, which :class:`GuardedRequest` counts as it comes)."""
    if len(hosts) > 1:
        return Refusal(400, "Bad Request", "more than one Host header")
    if not hosts and version == b"HTTP/1.1":
        return Refusal(400, "Bad Request", "the Host header is required (HTTP/1.1)")
    # Without Host (HTTP/1.0) nothing can be checked, and no browser sends that: no rebinding.
    for host in (*hosts, *filter(None, [_authority(target)])):
        if not host_allowed(host, door.server_names):
            return Refusal(421, "Misdirected Request",
                           f"this gateway does not answer for the host {_shown(host)!r}: use "
                           "its address, localhost, or a name listed in http.server_names")
    if content_length is not None and content_length > door.max_body:
        return too_large(door.max_body)
    return None


def too_large(max_body: int) -> Refusal:
    return Refusal(413, "Content Too Large",
                   f"the body is larger than {max_body} bytes (http.max_body)")


class GuardedChannel(HTTPChannel):
    """``HTTPChannel`` with the front door: :func:`judge_headers` when the headers are in,
    absolute header and body deadlines, and a clean refusal (answer, half-close, discard
    what still comes, abort after :data:`LINGER`)."""

    site: "GatewaySite"
    _header_call: Any = None
    _body_call: Any = None
    _linger_call: Any = None
    _refused = False
    _partial = False  # bytes of a request arrived since the header deadline was armed

    @property
    def door(self) -> FrontDoor:
        return self.site.front

    # -- deadlines ------------------------------------------------------------------------

    def _arm_headers(self) -> None:
        self._cancel("_header_call")
        self._partial = False
        self._header_call = self.callLater(self.door.header_timeout,  # type: ignore[no-untyped-call]
                                           lambda: self._too_slow("headers"))

    def _cancel(self, name: str) -> None:
        call = getattr(self, name)
        setattr(self, name, None)
        if call is not None and call.active():
            call.cancel()

    def _too_slow(self, what: str) -> None:
        setattr(self, "_header_call" if what == "headers" else "_body_call", None)
        if self.transport is None or self._refused:
            return  # handed over (WebSocket) or already refused
        peer = self.transport.getPeer()  # type: ignore[misc]  # zope Interface, no plugin
        if what == "body" or self._partial:
            log.info("HTTP client {peer} too slow: its request {what} took longer than "
                     "http.{what_key} ({seconds} s)", peer=str(peer), what=what,
                     what_key="header_timeout" if what == "headers" else "body_timeout",
                     seconds=self.door.header_timeout if what == "headers"
                     else self.door.body_timeout)
            self._refuse(Refusal(408, "Request Timeout", f"the request {what} came too slowly"),
                         quiet=True)
        else:  # an idle connection between requests: just close it
            self._refused = True
            self._close(half=False)

    # -- refusing -----------------------------------------------------------------------------

    def refuse(self, refusal: Refusal) -> None:
        """Answer ``refusal`` now and close; nothing more of this connection is read."""
        self._refuse(refusal)

    def _refuse(self, refusal: Refusal, quiet: bool = False) -> None:
        if self._refused or self.transport is None:
            return
        self._refused = True
        if not quiet:
            log.info("HTTP {status} to {peer}: {message}", status=refusal.status,
                     peer=str(self.transport.getPeer()), message=refusal.message)  # type: ignore[misc]
        self.transport.write(refusal.response())  # type: ignore[call-arg,misc]  # zope Interface
        self._close(half=True)

    def _close(self, half: bool) -> None:
        """Close after what is written: half-close first when ``half`` (the client reads the
        answer and sees the end; what it still sends is discarded), abort after LINGER."""
        self._cancel("_header_call")
        self._cancel("_body_call")
        self._networkProducer.unregisterProducer()
        lose_write = getattr(self.transport, "loseWriteConnection", None)
        if half and isinstance(self.transport, TLSMemoryBIOProtocol):
            # HTTPS: the TLS layer hands loseWriteConnection through to the TCP socket beneath
            # it, cutting off what TLS still has to send.  TLS's own close is the half-close
            # here: close_notify after the answer, then reading on (and discarding) until the
            # client's close_notify or LINGER.
            self._networkProducer.resumeProducing()  # type: ignore[misc]
            self.transport.loseConnection()  # type: ignore[misc]  # untyped Twisted class
        elif half and lose_write is not None:
            self._networkProducer.resumeProducing()  # type: ignore[misc]  # keep reading (and discarding)
            lose_write()
        else:
            self.transport.loseConnection()  # type: ignore[misc,union-attr]  # zope Interface; transport set
        self._linger_call = self.callLater(LINGER, self._abort)  # type: ignore[no-untyped-call]

    def _abort(self) -> None:
        self._linger_call = None
        if self.transport is not None:
            self.transport.abortConnection()

    # -- HTTPChannel hooks --------------------------------------------------------------------

    def connectionMade(self) -> None:
        super().connectionMade()  # type: ignore[no-untyped-call]
        self._arm_headers()

    def dataReceived(self, data: bytes) -> None:
        if self._refused:
            return
        if self._header_call is not None:
            self._partial = True
        super().dataReceived(data)  # type: ignore[no-untyped-call]

    def lineReceived(self, line: bytes) -> None:
        if not self._refused:
            super().lineReceived(line)  # type: ignore[no-untyped-call]

    def rawDataReceived(self, data: bytes) -> None:
        if not self._refused:
            super().rawDataReceived(data)

    def allHeadersReceived(self) -> None:
        self._cancel("_header_call")
        request = self.requests[-1]
        refusal = judge_headers(
            version=self._version, target=self._path,  # type: ignore[arg-type]  # the bytes target
            hosts=request.requestHeaders.getRawHeaders(b"host") or [],
            content_length=self.length, door=self.door)
        if refusal is not None:
            self._refuse(refusal)
            return  # no gotLength (no body buffer), no "100 Continue"
        super().allHeadersReceived()  # type: ignore[no-untyped-call]
        if self.length != 0:
            self._body_call = self.callLater(self.door.body_timeout, lambda: self._too_slow("body"))  # type: ignore[no-untyped-call]

    def allContentReceived(self) -> None:
        if self._refused:
            return
        self._cancel("_body_call")
        super().allContentReceived()  # type: ignore[no-untyped-call]

    def requestDone(self, request: Any) -> None:
        # Armed before the buffered next request (pipelining) is replayed by super().
        if self.persistent and not self._refused:
            self._arm_headers()
        super().requestDone(request)  # type: ignore[no-untyped-call]

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        for name in ("_header_call", "_body_call", "_linger_call"):
            self._cancel(name)
        super().connectionLost(reason)  # type: ignore[no-untyped-call]


class GuardedRequest(Request):
    """A request whose body is counted as it arrives: a chunked body past ``max_body`` makes
    the channel answer 413 and close (a Content-Length body was judged at the headers)."""

    _received = 0

    def gotLength(self, length: int | None) -> None:
        door = getattr(self.channel, "door", None)
        if length is None and door is not None and door.max_body <= _IN_MEMORY:
            self.content = BytesIO()  # chunked, bounded: no temp file
            return
        super().gotLength(length)  # type: ignore[no-untyped-call]

    def handleContentChunk(self, data: bytes) -> None:
        channel: Any = self.channel
        door = getattr(channel, "door", None)
        if door is not None:
            if channel._refused:
                return
            self._received += len(data)
            if self._received > door.max_body:
                channel.refuse(too_large(door.max_body))
                return
        super().handleContentChunk(data)  # type: ignore[no-untyped-call]


class GatewaySite(Site):
    """The gateway's one ``Site``, with :class:`GuardedChannel` and :class:`GuardedRequest`.
    Tracebacks are never shown to clients (they may hold secrets)."""

    protocol = GuardedChannel  # type: ignore[assignment]
    requestFactory = GuardedRequest
    displayTracebacks = False

    def __init__(self, resource: Any, front: FrontDoor | None = None, **kwargs: Any) -> None:
        super().__init__(resource, **kwargs)  # type: ignore[no-untyped-call]
        self.front = front or FrontDoor()
