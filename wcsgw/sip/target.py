"""Transport addresses: where a SIP message goes or came from.

A :class:`Target` is what the sans-IO layers hand to (and receive from) the Twisted transport
adapters.  It compares and hashes on ``(transport, host, port)`` only, so it can key the
"which transactions talk to this peer" index used for transport errors, while still carrying
the stream connection a request arrived on (RFC 3261 §18.2.2: responses go back over it).
"""

from __future__ import annotations

import attr

from wcsgw.sip.headers import Via

#: RFC 3261 §19.1.2 / §18: default ports when a Via or URI names none.
_DEFAULT_PORTS: dict[str, int] = {"TLS": 5061, "WSS": 5061}


def default_port(transport: str) -> int:
    """5061 for TLS (and secure WebSocket), 5060 otherwise (RFC 3261 §19.1.2)."""
    return _DEFAULT_PORTS.get(transport.upper(), 5060)


def unbracket(host: str) -> str:
    """``[2001:db8::1]`` -> ``2001:db8::1``: targets keep IPv6 literals without brackets."""
    if host.startswith("[") and host.endswith("]"):
        return host[1:-1]
    return host


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Target:
    """Where a message goes or came from."""

    transport: str  # "UDP" | "TCP" | "TLS" (upper case)
    host: str  # IP literal (IPv6 without brackets) or hostname
    port: int
    #: the stream connection a message came in on, reused for replies; not part of equality.
    connection: object | None = attr.ib(default=None, eq=False)
    #: the name this address was located from (RFC 3263), which a TLS server's certificate
    #: is checked against (RFC 5922 §4: the domain asked for, not the address DNS gave)
    name: str | None = attr.ib(default=None, eq=False)

    @property
    def reliable(self) -> bool:
        """Reliable transports get no retransmissions and zero-length wait timers (§17)."""
        return self.transport != "UDP"


def response_target(via: Via, connection: object | None = None) -> Target:
    """Where a response to a request with this top ``via`` is sent.

    RFC 3261 §18.2.2 with RFC 3581 §4 (rport): over a reliable transport the connection the
    request came in on is reused (``connection``; host/port are the fall-back if it closed);
    otherwise ``maddr`` if present, else the ``received`` address (or the sent-by host), at the
    ``rport`` port if the client asked for it, else the sent-by port.
    """
    transport = via.transport.upper()
    params = via.params
    maddr = params.get("maddr")
    rport = params.get("rport")
    if maddr:
        host = maddr
        port = via.port or default_port(transport)
    else:
        host = params.get("received") or via.host
        port = int(rport) if rport and rport.isdigit() else (via.port or default_port(transport))
    return Target(transport, unbracket(host), port, connection)
