"""A DNS server the tests start: twisted.names, authoritative for a zone the test gives, on a
free loopback port, in a process (and process group) of its own.

Why a server of our own rather than bind9 or dnsmasq: the zone is a list the test writes
(NAPTR, SRV, A, AAAA, CNAME), it starts in a fraction of a second with no files to install,
and it is the same twisted.names that the gateway's resolver speaks to, on the wire.

Use::

    dns = DnsServer([("example.test", "NAPTR", [10, 10, "s", "SIP+D2T", "", "_sip._tcp.example.test"]),
                     ("_sip._tcp.example.test", "SRV", [10, 0, 5070, "a.example.test"]),
                     ("a.example.test", "A", "127.0.0.1")])
    await dns.start()           # fires with dns; dns.port is its UDP and TCP port
    ...                          # [sip] dns_servers = [f"127.0.0.1:{dns.port}"]
    await dns.stop()

A record is ``(name, type, data)`` or ``(name, type, data, ttl)`` (default TTL 60); NAPTR data
is ``[order, preference, flags, service, regexp, replacement]``, SRV ``[priority, weight,
port, target]``.  A name without records of the asked type answers NOERROR with no data; an
unknown name NXDOMAIN.  Queries are logged (``queries()``) so a test can assert what was asked.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, ClassVar, Sequence

from twisted.internet import defer

from tests.peers.daemon import ResendProbe, UdpDaemon
from tests.peers.ports import free_port

__all__ = ["DnsServer", "DnsServerError", "start_dns"]

ZoneRecord = Sequence[Any]


class DnsServerError(RuntimeError):
    pass


class _Probe(ResendProbe):
    """A query for the probe name; any answer with our id means the server is up."""

    def request(self) -> bytes:
        from twisted.names import dns

        message = dns.Message(id=4242, recDes=False)
        message.queries = [dns.Query(b"probe.invalid", dns.A, dns.IN)]
        data: bytes = message.toStr()
        return data

    def is_answer(self, data: bytes) -> bool:
        return len(data) >= 2 and data[:2] == (4242).to_bytes(2, "big")


class DnsServer(UdpDaemon):
    program: ClassVar[str] = "dnsserver"
    error: ClassVar[type[RuntimeError]] = DnsServerError

    def __init__(self, records: Sequence[ZoneRecord], host: str = "127.0.0.1",
                 port: int | None = None) -> None:
        super().__init__(host, "wcsgw-dns-", "dnsserver.log")
        self.records = [list(r) for r in records]
        self.port = port if port is not None else free_port("udp+tcp", host)

    def _prepare(self) -> None:
        (self.rundir / "zone.json").write_text(json.dumps(self.records))

    def command(self) -> list[str]:
        root = str(Path(__file__).resolve().parents[2])  # the work tree: run from rundir
        return [sys.executable, "-c", f"import sys; sys.path.insert(0, {root!r}); "
                "from tests.peers.dnsserver import main; main(sys.argv[1:])",
                str(self.rundir / "zone.json"), self.host, str(self.port),
                str(self.rundir / "queries.log")]

    def _probe(self) -> ResendProbe:
        return _Probe((self.host, self.port))

    def queries(self) -> list[tuple[str, str]]:
        """(name, type) of every query answered so far, in order (the probe's excluded)."""
        path = self.rundir / "queries.log"
        if not path.exists():
            return []
        out = []
        for line in path.read_text().splitlines():
            name, _, rtype = line.partition(" ")
            if name != "probe.invalid":
                out.append((name, rtype))
        return out


def start_dns(records: Sequence[ZoneRecord], host: str = "127.0.0.1") -> defer.Deferred[DnsServer]:
    """Start a :class:`DnsServer` for ``records``; fires with it once it answers."""
    return DnsServer(records, host).start()


# -- the server process -------------------------------------------------------------------

def _payload(rtype: str, data: Any, ttl: int) -> Any:
    from twisted.names import dns

    if rtype == "A":
        return dns.Record_A(data, ttl=ttl)
    if rtype == "AAAA":
        return dns.Record_AAAA(data, ttl=ttl)
    if rtype == "CNAME":
        return dns.Record_CNAME(data.encode(), ttl=ttl)
    if rtype == "SRV":
        priority, weight, port, target = data
        return dns.Record_SRV(priority, weight, port, target.encode(), ttl=ttl)
    if rtype == "NAPTR":
        order, preference, flags, service, regexp, replacement = data
        return dns.Record_NAPTR(order, preference, flags.encode(), service.encode(),
                                regexp.encode(), replacement.encode(), ttl=ttl)
    raise ValueError(f"unsupported record type {rtype}")


def _serve(zone_path: str, host: str, port: int, query_log: str) -> None:
    from twisted.internet import reactor
    from twisted.names import common, dns, error, server

    zone: dict[bytes, list[tuple[int, Any, int]]] = {}
    for record in json.loads(Path(zone_path).read_text()):
        name, rtype, data = record[0], record[1], record[2]
        ttl = int(record[3]) if len(record) > 3 else 60
        zone.setdefault(name.lower().rstrip(".").encode(), []).append(
            (getattr(dns, rtype), _payload(rtype, data, ttl), ttl))
    log = open(query_log, "a", buffering=1)

    class Zone(common.ResolverBase):
        def _lookup(self, name: bytes, cls: int, type: int, timeout: Any) -> Any:  # noqa: A002
            key = name.lower().rstrip(b".")
            log.write(f"{key.decode()} {dns.QUERY_TYPES.get(type, type)}\n")
            if key not in zone:
                return defer.fail(error.AuthoritativeDomainError(name))
            answers = [dns.RRHeader(name, t, dns.IN, ttl, payload, auth=True)
                       for t, payload, ttl in zone[key] if t == type]
            return defer.succeed((answers, [], []))

    factory = server.DNSServerFactory(authorities=[Zone()])
    reactor.listenUDP(port, dns.DNSDatagramProtocol(factory), interface=host)
    reactor.listenTCP(port, factory, interface=host)
    reactor.run()


def main(argv: Sequence[str]) -> None:
    """``zone.json host port queries.log``: serve until terminated."""
    _serve(argv[0], argv[1], int(argv[2]), argv[3])
