"""One port for every browser leg ([media] browser_port, docs/contract.md): which leg a packet
belongs to, sans-IO.

With per-call ports the socket names the leg.  On a shared port the packet must, and only two
things in it can be trusted to:

* a STUN Binding request carries USERNAME ``<our ufrag>:<their ufrag>`` (RFC 8445 §7.2.2), and
  our ufrag is unique per leg: the request goes to that leg, which answers only if
  MESSAGE-INTEGRITY verifies with the leg's password.  The mux routes by the name alone and
  never decides trust: a guessed ufrag reaches a leg that ignores it.
* every other packet (DTLS, SRTP, SRTCP, STUN without USERNAME) goes by its source address,
  and only once that address passed an authenticated check of a leg (:meth:`Demux.prove`,
  told by the adapter after the leg accepted the check).  From any other address it is
  dropped here — the same rule the per-call leg applies to its own socket
  (:mod:`wcsgw.webrtc.control`), applied before a leg is even chosen.

Addresses of ICE-TCP connections are :class:`TcpAddress`: the same ``(host, port)`` tuple
for the STUN codec and the leg's bookkeeping, but never equal to a UDP source with the same
numbers, so a packet can only be sent back over the transport its pair was proven on.
"""

from __future__ import annotations

from typing import Any, Generic, Optional, TypeVar

from wcsgw.webrtc.stun import Address, is_stun

__all__ = ["Demux", "TcpAddress", "stun_username"]

Leg = TypeVar("Leg")

_USERNAME = 0x0006


class TcpAddress(tuple[str, int]):
    """The far end of an ICE-TCP connection: a ``(host, port)`` that is unequal to (and
    hashes apart from) the UDP address with the same numbers."""

    __slots__ = ()

    def __new__(cls, host: str, port: int) -> "TcpAddress":
        return super().__new__(cls, (host, port))

    def __eq__(self, other: object) -> bool:
        return type(other) is TcpAddress and tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(("tcp", self[0], self[1]))

    def __repr__(self) -> str:
        return f"tcp:{self[0]}:{self[1]}"


def stun_username(data: bytes) -> Optional[str]:
    """The USERNAME attribute of a STUN message that :func:`is_stun` accepted, None if it has
    none or the attributes are malformed.  A plain TLV walk: the leg parses (and checks) the
    message fully; this only names the leg."""
    end = 20 + int.from_bytes(data[2:4], "big")
    if end > len(data):
        return None
    offset = 20
    while offset + 4 <= end:
        kind = int.from_bytes(data[offset:offset + 2], "big")
        length = int.from_bytes(data[offset + 2:offset + 4], "big")
        value_end = offset + 4 + length
        if value_end > end:
            return None
        if kind == _USERNAME:
            try:
                return data[offset + 4:value_end].decode("utf-8")
            except UnicodeDecodeError:
                return None
        offset = value_end + (-length % 4)
    return None


class Demux(Generic[Leg]):
    """The legs registered on the shared port, by ufrag, and the addresses they proved."""

    def __init__(self) -> None:
        self._legs: dict[str, Leg] = {}
        self._proven: dict[Address, str] = {}
        self._addresses: dict[str, set[Address]] = {}
        #: packets routed to no leg (unknown ufrag, unproven source, not STUN/DTLS/SRTP)
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._legs)

    def __contains__(self, ufrag: object) -> bool:
        return ufrag in self._legs

    def register(self, ufrag: str, leg: Leg) -> None:
        """``leg`` answers checks naming ``ufrag``; a ufrag already taken is refused (two legs
        sharing one would each see the other's checks)."""
        if ufrag in self._legs:
            raise ValueError(f"ICE ufrag {ufrag!r} is already registered")
        self._legs[ufrag] = leg
        self._addresses[ufrag] = set()

    def unregister(self, ufrag: str) -> set[Address]:
        """The leg is gone: forget it and every address it proved (returned, so the adapter
        can close the ICE-TCP connections among them)."""
        self._legs.pop(ufrag, None)
        addresses = self._addresses.pop(ufrag, set())
        for address in addresses:
            self._proven.pop(address, None)
        return addresses

    def rekey(self, old: str, new: str) -> None:
        """The leg named ``old`` restarted ICE and is named ``new`` from now on: checks naming
        ``old`` reach no leg any more (dropped here), the addresses it proved stay its own
        until the leg says otherwise (:meth:`forget`).  ``new`` already taken is refused,
        like in :meth:`register`, and changes nothing."""
        if new in self._legs:
            raise ValueError(f"ICE ufrag {new!r} is already registered")
        leg = self._legs.pop(old)
        self._legs[new] = leg
        addresses = self._addresses.pop(old, set())
        self._addresses[new] = addresses
        for address in addresses:
            self._proven[address] = new

    def prove(self, address: Address, ufrag: str) -> None:
        """``address`` passed an authenticated check of the leg named ``ufrag``: its other
        packets go there from now on (an address belongs to one leg: the latest to prove it)."""
        if ufrag not in self._legs:
            return
        previous = self._proven.get(address)
        if previous == ufrag:
            return
        if previous is not None:
            self._addresses[previous].discard(address)
        self._proven[address] = ufrag
        self._addresses[ufrag].add(address)

    def forget(self, address: Address) -> None:
        """``address`` is gone (its ICE-TCP connection closed)."""
        ufrag = self._proven.pop(address, None)
        if ufrag is not None:
            self._addresses[ufrag].discard(address)

    def owner(self, address: Address) -> Optional[str]:
        """The ufrag of the leg that proved ``address``, if any."""
        return self._proven.get(address)

    def route(self, data: bytes, address: Address) -> Optional[Leg]:
        """The leg that should see ``data`` from ``address``; None: drop it."""
        leg = self._route(data, address)
        if leg is None:
            self.dropped += 1
        return leg

    def _route(self, data: bytes, address: Address) -> Optional[Leg]:
        if not data:
            return None
        first = data[0]
        if first < 4:
            if not is_stun(data):
                return None
            username = stun_username(data)
            if username is not None:
                return self._legs.get(username.partition(":")[0])
        elif not (19 < first < 64 or 127 < first < 192):  # RFC 7983: DTLS, RTP/RTCP
            return None
        ufrag = self._proven.get(address)
        return self._legs.get(ufrag) if ufrag is not None else None

    def legs(self) -> list[Any]:
        """The registered legs (for closing them all, metrics)."""
        return list(self._legs.values())
