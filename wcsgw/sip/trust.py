"""Who may act on a call and whom credentials go to: the SIP trust boundary, sans-IO.

Three rules of the gateway depend on knowing whether an address belongs to a host the
gateway has reason to trust (docs/sip-stack.md, "Trust boundary"):

* an in-dialog request (BYE, REFER, re-INVITE, ...) is taken only from the dialog's own peer
  or the account's proxy (:class:`~wcsgw.sip.dialogs.DialogRouter`);
* a Digest challenge is answered only when the challenged request went to the account's own
  registrar/proxy (:meth:`~wcsgw.sip.digest.DigestClient.handle_challenge`, ``to_server``);
* a new INVITE for a session is taken only from the registrar/proxy the session registered
  with (the call layer's ``InboundRouter``).

Hosts are compared by IP: the source of a request is an address, while the hosts it is
compared with (an outbound proxy, a domain, a Record-Route or Contact host) are often names.
Resolving a name is I/O, so it stays out of this module: :class:`AddressBook` only *remembers*
the addresses the transport adapter resolved (every name it sent to, and every name the core
asked for with :meth:`AddressBook.want`, which the adapter drains with
:meth:`AddressBook.take_lookups`).  A name not resolved yet matches nothing but itself:
trusting an unknown name would trust everyone.
"""

from __future__ import annotations

import ipaddress
from typing import Callable, Iterable

from twisted.logger import Logger

__all__ = ["AddressBook", "normalize_ip"]

log = Logger(namespace="wcsgw.sip.trust")

#: Names remembered at most (oldest forgotten first) and addresses kept per name: a peer that
#: names ever new hosts in its Contacts cannot grow the book without bound.
MAX_NAMES = 4096
MAX_ADDRESSES_PER_NAME = 16


def normalize_ip(host: str) -> str | None:
    """``host`` as a canonical IP literal, or None when it is not one.  IPv4-mapped IPv6
    (``::ffff:192.0.2.1``, what a dual-stack socket reports for an IPv4 peer) becomes the
    IPv4 address, and IPv6 brackets are dropped, so one address has one spelling."""
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address)


def _name_key(host: str) -> str:
    return host.strip().lower().rstrip(".")


class AddressBook:
    """Names the transport resolved, by name; and the names the core wants resolved."""

    def __init__(self, wanted: Callable[[], None] | None = None) -> None:
        #: called when a name joins the look-ups (the endpoint wakes its adapter with it, so
        #: a name wanted from outside a dispatch is resolved without anybody pumping)
        self._on_wanted = wanted
        self._addresses: dict[str, set[str]] = {}
        self._wanted: dict[str, None] = {}  # ordered set
        #: names handed to the adapter already: not asked again (a name that never resolves
        #: must not cost a lookup per dropped packet); sending to a name still learns it
        self._asked: set[str] = set()

    # -- fed by the transport adapter --

    def learn(self, name: str, address: str) -> None:
        """The transport resolved ``name`` to ``address`` (kept besides earlier answers:
        a name with several A records may have resolved to another one before)."""
        ip = normalize_ip(address)
        if ip is None or normalize_ip(name) is not None:
            return
        key = _name_key(name)
        self._wanted.pop(key, None)
        known = self._addresses.pop(key, None) or set()  # re-inserted: newest last
        if len(known) < MAX_ADDRESSES_PER_NAME:
            known.add(ip)
        self._addresses[key] = known
        while len(self._addresses) > MAX_NAMES:
            del self._addresses[next(iter(self._addresses))]

    def take_lookups(self) -> list[str]:
        """Names to resolve (each asked once until learned; the adapter calls :meth:`learn`)."""
        names = list(self._wanted)
        self._wanted.clear()
        if len(self._asked) + len(names) > MAX_NAMES:
            self._asked.clear()
        self._asked.update(names)
        return names

    # -- for the core --

    def want(self, hosts: Iterable[str]) -> None:
        """Ask for the names among ``hosts`` that are not known yet to be resolved."""
        added = False
        for host in hosts:
            if host and normalize_ip(host) is None:
                key = _name_key(host)
                if (key not in self._addresses and key not in self._asked
                        and key not in self._wanted and len(self._wanted) < MAX_NAMES):
                    self._wanted[key] = None
                    added = True
        if added and self._on_wanted is not None:
            self._on_wanted()

    def addresses(self, host: str) -> frozenset[str]:
        """The IPs ``host`` stands for: itself when it is a literal, else what it resolved to
        (empty when it never did)."""
        ip = normalize_ip(host)
        if ip is not None:
            return frozenset((ip,))
        return frozenset(self._addresses.get(_name_key(host), ()))

    def admits(self, source: str, hosts: Iterable[str]) -> bool:
        """Whether the address ``source`` (where a message came from) is one of ``hosts``."""
        ip = normalize_ip(source)
        if ip is None:
            return False
        return any(ip in self.addresses(host) for host in hosts if host)

    def same_host(self, host: str, hosts: Iterable[str]) -> bool:
        """Whether ``host`` (a name or literal: where a request goes) is one of ``hosts``,
        by name or by any resolved address."""
        key = _name_key(host)
        mine = self.addresses(host)
        for other in hosts:
            if not other:
                continue
            if _name_key(other) == key or mine & self.addresses(other):
                return True
        return False
