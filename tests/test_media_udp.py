"""Media ports and the SIP-side RTP socket (wcsgw.media.ports, wcsgw.media.udp) on 127.0.0.1
with free ports picked at run time: bind-tested allocation, pairs on even ports, no port handed
out twice while in use, release on close; symmetric RTP latching and its anti-hijack rule;
RTCP on port+1 or muxed.  Latching takes only the IPs the SDP or the signalling names (the
sans-IO Latch on a fake clock, and a stranger's socket on another 127/8 address)."""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet import reactor
from twisted.internet.protocol import DatagramProtocol
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.peers.ports import free_port
from tests.support import EventLog, inline
from wcsgw.media.ports import PortAllocator, PortsExhausted
from wcsgw.media.rtcp import build_rr
from wcsgw.media.rtp import build_rtp
from wcsgw.media.udp import Latch, RtpSocket, normalize_ip

HOST = "127.0.0.1"
#: a stranger on the same machine: tests run where all of 127.0.0.0/8 is on lo
OTHER = "127.0.0.2"


def port_range(span: int) -> tuple[int, int]:
    first = free_port("udp", HOST, span=span)
    return first, first + span - 1


def bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


class AllocatorTests(SynchronousTestCase):
    def test_pairs_on_even_ports_never_twice_and_round_robin(self) -> None:
        lo, hi = port_range(12)
        alloc = PortAllocator(HOST, lo, hi)
        pairs = []
        while True:
            try:
                pairs.append(alloc.allocate(2, even=True))
            except PortsExhausted:
                break
        flat = [p for pair in pairs for p in pair]
        self.assertEqual(len(flat), len(set(flat)))
        self.assertTrue(all(a % 2 == 0 and b == a + 1 for a, b in pairs))
        self.assertTrue(all(lo <= p <= hi for p in flat))
        self.assertGreaterEqual(len(pairs), 5)
        self.assertEqual(alloc.in_use, frozenset(flat))
        # a released pair comes back only once the cursor wraps to it
        alloc.release(pairs[0])
        self.assertEqual(alloc.allocate(2, even=True), pairs[0])
        alloc.release(pairs[2])
        alloc.release(pairs[2])  # double release is harmless
        self.assertEqual(alloc.allocate(2, even=True), pairs[2])

    def test_ports_held_by_others_are_skipped(self) -> None:
        lo, hi = port_range(4)
        squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(squatter.close)
        squatter.bind((HOST, lo))
        alloc = PortAllocator(HOST, lo, hi)
        got = [alloc.allocate()[0] for _ in range(hi - lo)]
        self.assertNotIn(lo, got)
        self.assertEqual(sorted(got), list(range(lo + 1, hi + 1)))
        self.assertRaises(PortsExhausted, alloc.allocate)

    def test_bad_arguments(self) -> None:
        self.assertRaises(ValueError, PortAllocator, HOST, 0, 10)
        self.assertRaises(ValueError, PortAllocator, HOST, 20, 10)
        self.assertRaises(ValueError, PortAllocator(HOST, 40000, 40001).allocate, 0)
        self.assertRaises(PortsExhausted, PortAllocator(HOST, 40001, 40001).allocate, 2, True)


class LatchTests(SynchronousTestCase):
    """The sans-IO latch on a fake clock (``now`` is a number): who may latch, and when the
    latch moves (only with a new SDP)."""

    SDP, PEER_NAT = ("10.0.0.5", 4000), ("203.0.113.9", 6000)
    SIGNALLING = "203.0.113.9"  # where the 2xx / INVITE came from
    ATTACKER = ("198.51.100.1", 7000)

    def latch(self) -> Latch:
        latch = Latch()
        latch.set_sdp(self.SDP, [self.SIGNALLING])
        return latch

    def test_attacker_first_then_peer(self) -> None:
        latch = self.latch()
        self.assertFalse(latch.accept(self.ATTACKER, 0.0))  # first packet, but not allowed
        self.assertEqual((latch.target, latch.latched, latch.rejected), (self.SDP, False, 1))
        self.assertTrue(latch.accept(self.SDP, 0.02))  # the phone itself latches
        self.assertEqual((latch.target, latch.latched), (self.SDP, True))
        self.assertFalse(latch.accept(self.ATTACKER, 0.03))
        self.assertEqual((latch.target, latch.rejected), (self.SDP, 2))

    def test_peer_silent_for_minutes_then_attacker(self) -> None:
        latch = self.latch()
        self.assertTrue(latch.accept(self.PEER_NAT, 0.0))
        for now in (1.0, 5.0, 60.0, 600.0, 3600.0):  # hold, VAD, a long silence: no relatch
            self.assertFalse(latch.accept(self.ATTACKER, now))
        self.assertEqual((latch.target, latch.rejected), (self.PEER_NAT, 5))
        self.assertTrue(latch.accept(self.PEER_NAT, 3601.0))  # the peer is still heard
        self.assertEqual(latch.last_heard, 3601.0)

    def test_nat_same_ip_as_signalling_other_port(self) -> None:
        latch = Latch()
        latch.set_sdp(("192.168.1.5", 4000), ["203.0.113.9"])  # private c=, public signalling
        self.assertTrue(latch.accept(("203.0.113.9", 61000), 0.0))
        self.assertEqual(latch.target, ("203.0.113.9", 61000))
        # once latched, another port of an allowed IP is somebody else (another phone behind
        # the same NAT, a process on the proxy's host): dropped
        self.assertFalse(latch.accept(("203.0.113.9", 61002), 0.1))
        self.assertFalse(latch.accept(("192.168.1.5", 4002), 0.2))
        self.assertEqual((latch.target, latch.rejected), (("203.0.113.9", 61000), 2))

    def test_the_sdp_address_itself_takes_over_an_ip_only_latch(self) -> None:
        # A transfer: the old phone (same host as the new one) still sends after the new
        # answer; the new phone sends from the port its SDP names and is heard.
        latch = Latch()
        new_phone, old_phone = ("192.0.2.7", 5004), ("192.0.2.7", 7078)
        latch.set_sdp(new_phone, ["192.0.2.1"])
        self.assertTrue(latch.accept(old_phone, 0.0))  # allowed by IP: latched for now
        self.assertEqual((latch.target, latch.exact), (old_phone, False))
        self.assertTrue(latch.accept(new_phone, 0.02))  # the SDP's own address: final
        self.assertEqual((latch.target, latch.exact), (new_phone, True))
        self.assertFalse(latch.accept(old_phone, 0.04))
        self.assertFalse(latch.accept(("192.0.2.1", 9000), 0.05))
        self.assertEqual(latch.rejected, 2)

    def test_new_sdp_relatches(self) -> None:
        latch = self.latch()
        self.assertTrue(latch.accept(self.PEER_NAT, 0.0))
        moved = ("192.0.2.7", 5004)  # re-INVITE (or a transfer) to another media address
        latch.set_sdp(moved, ["192.0.2.1"])
        self.assertEqual((latch.target, latch.latched), (moved, False))
        self.assertFalse(latch.accept(self.PEER_NAT, 1.0))  # the old IP is no longer allowed
        self.assertFalse(latch.accept(self.ATTACKER, 1.0))
        self.assertTrue(latch.accept(("192.0.2.1", 40000), 1.1))  # the new signalling IP
        self.assertEqual(latch.target, ("192.0.2.1", 40000))
        # the same SDP again (a session refresh) also resets: the peer's next packet latches
        latch.set_sdp(moved, ["192.0.2.1"])
        self.assertTrue(latch.accept(moved, 2.0))
        self.assertEqual(latch.target, moved)

    def test_without_sdp_nothing_is_heard(self) -> None:
        latch = Latch()
        self.assertFalse(latch.accept(("192.0.2.1", 1), 0.0))
        self.assertEqual((latch.target, latch.rejected), (None, 1))

    def test_ip_spellings_compare_equal(self) -> None:
        self.assertEqual(normalize_ip("::ffff:192.0.2.1"), "192.0.2.1")
        self.assertEqual(normalize_ip("[2001:DB8:0::1]"), "2001:db8::1")
        self.assertEqual(normalize_ip("fe80::1%eth0"), "fe80::1")
        latch = Latch()
        latch.set_sdp(("2001:db8::1", 4000), ["::ffff:192.0.2.9"])
        self.assertTrue(latch.accept(("192.0.2.9", 5000), 0.0))
        latch.set_sdp(("pbx.example.com", 4000))  # a name in c= allows no packet source
        self.assertFalse(latch.accept(("192.0.2.9", 5000), 0.0))


class Peer(DatagramProtocol):
    """A test peer socket: records what it receives, sends where it is told."""

    def __init__(self) -> None:
        self.received = EventLog()

    def datagramReceived(self, data: bytes, addr: Any) -> None:  # noqa: N802
        self.received(data)

    def send(self, data: bytes, port: int) -> None:
        self.transport.write(data, (HOST, port))

    @property
    def port(self) -> int:
        return self.transport.getHost().port


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def rtp(seq: int) -> bytes:
    return build_rtp(payload_type=0, sequence=seq, timestamp=160 * seq, ssrc=1, payload=b"\xff" * 160)


class RtpSocketTests(TestCase):
    def setUp(self) -> None:
        lo, hi = port_range(8)
        self.alloc = PortAllocator(HOST, lo, hi)
        self.clock = FakeClock()
        self.got_rtp, self.got_rtcp = EventLog(), EventLog()
        self.sock = RtpSocket(reactor, self.alloc, on_rtp=lambda data, now: self.got_rtp(data),
                              on_rtcp=lambda data, now: self.got_rtcp(data), clock=self.clock)
        self.addCleanup(self.sock.close)

    def peer(self, host: str = HOST) -> Peer:
        p = Peer()
        listening = reactor.listenUDP(0, p, interface=host)
        self.addCleanup(listening.stopListening)
        return p

    def test_even_rtp_port_and_rtcp_on_the_next(self) -> None:
        self.assertEqual(self.sock.rtp_port % 2, 0)
        self.assertEqual(self.sock.port, self.sock.rtp_port)
        self.assertEqual(self.sock.host, HOST)
        self.assertEqual(self.sock.rtcp_port, self.sock.rtp_port + 1)
        self.assertFalse(bindable(self.sock.rtp_port))
        self.assertFalse(bindable(self.sock.rtcp_port))
        self.assertEqual(self.alloc.in_use, {self.sock.rtp_port, self.sock.rtcp_port})

    @inline
    async def test_latching_to_the_nat_address_and_refusing_strangers(self) -> None:
        sdp_peer, nat_peer, stranger = self.peer(), self.peer(), self.peer(OTHER)
        self.sock.set_remote(HOST, sdp_peer.port)
        # before anything arrives, media goes to the SDP address
        self.sock.send_rtp(rtp(1))
        self.assertEqual(await sdp_peer.received.wait_for(lambda d: True), rtp(1))
        # a stranger (another IP) that sends first does not latch
        stranger.send(rtp(66), self.sock.rtp_port)
        # the phone's packets come from another port of the SDP's IP (NAT): we latch there
        nat_peer.send(rtp(2), self.sock.rtp_port)  # sent after the stranger's, arrives after it
        self.assertEqual(await self.got_rtp.wait_for(lambda d: d == rtp(2)), rtp(2))
        self.assertNotIn(rtp(66), self.got_rtp.events)
        self.assertEqual(self.sock.remote_rtp, (HOST, nat_peer.port))
        self.sock.send_rtp(rtp(3))
        self.assertEqual(await nat_peer.received.wait_for(lambda d: True), rtp(3))
        # the phone goes quiet for ten minutes: the stranger still cannot take over
        self.clock.now += 600
        stranger.send(rtp(67), self.sock.rtp_port)
        same_ip = self.peer()
        same_ip.send(rtp(68), self.sock.rtp_port)  # an allowed IP, but not the latched port
        nat_peer.send(rtp(4), self.sock.rtp_port)
        await self.got_rtp.wait_for(lambda d: d == rtp(4))
        self.assertEqual([d for d in self.got_rtp.events if d in (rtp(66), rtp(67), rtp(68))], [])
        self.assertEqual(self.sock.rtp_latch.rejected, 3)
        self.assertEqual(self.sock.dropped, 3)
        self.sock.send_rtp(rtp(5))
        await nat_peer.received.wait_for(lambda d: d == rtp(5))
        self.assertEqual(stranger.received.events, [])
        # a new SDP (re-INVITE) whose signalling came from the other address: it may latch now
        self.sock.set_remote(HOST, sdp_peer.port, signalling=[OTHER])
        stranger.send(rtp(69), self.sock.rtp_port)
        await self.got_rtp.wait_for(lambda d: d == rtp(69))
        self.assertEqual(self.sock.remote_rtp, (OTHER, stranger.port))

    @inline
    async def test_rtcp_on_its_own_port_latches_separately(self) -> None:
        rtp_peer, rtcp_peer = self.peer(), self.peer()
        self.sock.set_remote(HOST, rtp_peer.port, rtcp_peer.port)
        self.sock.send_rtcp(build_rr(5))
        self.assertEqual(await rtcp_peer.received.wait_for(lambda d: True), build_rr(5))
        other = self.peer()
        other.send(build_rr(6), self.sock.rtcp_port)
        self.assertEqual(await self.got_rtcp.wait_for(lambda d: True), build_rr(6))
        self.assertEqual(self.sock.remote_rtcp, (HOST, other.port))
        self.assertEqual(self.sock.remote_rtp, (HOST, rtp_peer.port))  # RTP target untouched
        self.assertEqual(self.got_rtp.events, [])

    @inline
    async def test_rtcp_mux(self) -> None:
        peer = self.peer()
        self.sock.set_remote(HOST, peer.port, rtcp_mux=True)
        peer.send(rtp(1), self.sock.rtp_port)
        peer.send(build_rr(7), self.sock.rtp_port)
        self.assertEqual(await self.got_rtcp.wait_for(lambda d: True), build_rr(7))
        self.assertEqual(self.got_rtp.events, [rtp(1)])
        self.sock.send_rtcp(build_rr(8))
        self.assertEqual(await peer.received.wait_for(lambda d: d == build_rr(8)), build_rr(8))

    @inline
    async def test_close_releases_ports_and_stops_sending(self) -> None:
        ports = [self.sock.rtp_port, self.sock.rtcp_port]
        await self.sock.close()
        await self.sock.close()  # idempotent
        self.assertEqual(self.alloc.in_use, frozenset())
        self.assertTrue(all(bindable(p) for p in ports))
        self.sock.set_remote(HOST, 9)
        self.sock.send_rtp(b"late")  # no error after close
        self.assertEqual(self.sock.send_errors, 0)

    def test_a_peer_of_the_other_family_is_a_send_error_not_an_exception(self) -> None:
        """A SIP side whose SDP names an IPv6 address while the socket is IPv4 (Twisted raises
        InvalidAddressError, a ValueError): counted, and the call's packet path goes on."""
        self.sock.set_remote("2001:db8::1", 4000)
        self.sock.send_rtp(rtp(1))
        self.sock.send_rtcp(build_rr(7))
        self.assertEqual(self.sock.send_errors, 2)

    @inline
    async def test_exhaustion_and_retry_when_a_port_is_taken(self) -> None:
        lo = free_port("udp", HOST, span=5)
        lo += lo % 2
        alloc = PortAllocator(HOST, lo, lo + 3)
        first = RtpSocket(reactor, alloc)
        second = RtpSocket(reactor, alloc)
        self.assertEqual(sorted([first.rtp_port, second.rtp_port]), [lo, lo + 2])
        self.assertRaises(PortsExhausted, RtpSocket, reactor, alloc)
        await first.close()
        third = RtpSocket(reactor, alloc)
        self.assertEqual(third.rtp_port, first.rtp_port)
        await second.close()
        await third.close()
        self.assertEqual(alloc.in_use, frozenset())
