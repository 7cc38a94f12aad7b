"""What the endpoint says about itself on the wire: its host, its ports, Via and Contact.

Why apart from the endpoint: these are the endpoint's settings and the few strings made from
them alone — the Via sent-by and the Contact URI name the port we listen on for the
transport in use (TLS has its own port, RFC 3261 §18.2.1 and §20.10: a peer that opens a
connection to us, say to deliver an incoming call, must find TLS there).
"""

from __future__ import annotations

import attr

from wcsgw.sip.account import uri_host
from wcsgw.sip.transaction import TimerConfig

__all__ = ["EndpointConfig"]


@attr.s(frozen=True, auto_attribs=True)
class EndpointConfig:
    """What the endpoint says about itself on the wire."""

    host: str = "127.0.0.1"  # advertised in Via and Contact
    port: int = 5060
    user_agent: str = "wcsgw"
    timers: TimerConfig = attr.ib(factory=TimerConfig)
    #: the TLS listener's port (0: none): what Via and Contact name for TLS
    tls_port: int = 0

    def port_for(self, transport: str) -> int:
        """Where we listen for ``transport``."""
        if transport.upper() == "TLS" and self.tls_port:
            return self.tls_port
        return self.port

    def sent_by(self, transport: str) -> str:
        """The Via sent-by (host:port) of a request we send over ``transport``."""
        return f"{uri_host(self.host)}:{self.port_for(transport)}"

    def contact_uri(self, user: str | None, transport: str) -> str:
        userpart = f"{user}@" if user else ""
        suffix = "" if transport.upper() == "UDP" else f";transport={transport.lower()}"
        return f"sip:{userpart}{uri_host(self.host)}:{self.port_for(transport)}{suffix}"
