"""Where a socket of ours can send what an SDP names.

Why this exists: with ``media.listen = "::"`` the SIP side's sockets are dual-stack IPv6
sockets (docs/configuration.md, ``[media]``), and an IPv6 socket cannot be given an IPv4
address to send to (Twisted refuses it before the kernel sees it) — yet the PBX's SDP names an
IPv4 address.  The kernel reaches that address through its IPv4-mapped form
(``::ffff:192.0.2.1``), and the socket's latch compares addresses normalized, so packets
from the PBX (which arrive in the mapped form) still match what its SDP said.
"""

from __future__ import annotations

import ipaddress

__all__ = ["sendable"]


def sendable(address: str, bind_host: str) -> str:
    """``address`` as a socket bound to ``bind_host`` can send to it: an IPv4 address in its
    IPv4-mapped IPv6 form when the socket is IPv6; anything else unchanged."""
    if ":" not in bind_host:
        return address
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:  # a name: nothing to map (and nothing a socket sends to)
        return address
    return f"::ffff:{ip}" if ip.version == 4 else address
