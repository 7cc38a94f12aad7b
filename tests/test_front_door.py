"""The SIP port under abuse: garbage, truncated and oversized messages, half-open and
over-limit TCP connections.  Valid requests keep being answered in between, and what the
gateway buffers stays within its configured limits."""

from __future__ import annotations

import random

from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import DatagramProtocol, Protocol
from twisted.trial import unittest

from tests.support import EventLog, inline
from wcsgw.config import SipSettings
from wcsgw.sip.errors import SipParseError
from wcsgw.sip.parser import parse_message
from wcsgw.sip.service import SipService

LIMITS = SipSettings(listen="127.0.0.1", port=0, max_message_size=4096, max_connections=8,
                     idle_timeout=1.0)


def options(call_id: str, transport: str = "UDP", port: int = 9, pad: int = 0) -> bytes:
    padding = f"X-Pad: {'p' * pad}\r\n" if pad else ""
    return (
        f"OPTIONS sip:gw@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} 127.0.0.1:{port};branch=z9hG4bK{call_id};rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:flood@127.0.0.1>;tag=f1\r\n"
        "To: <sip:gw@127.0.0.1>\r\n"
        f"Call-ID: {call_id}\r\n"
        "CSeq: 1 OPTIONS\r\n"
        f"{padding}"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def junk(rng: random.Random, n: int) -> bytes:
    """One bad datagram of several kinds, chosen by ``rng`` (seeded: the run is repeatable)."""
    kind = n % 4
    if kind == 0:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 1500)))
    if kind == 1:
        whole = options(f"trunc{n}")
        cut = whole[: rng.randint(10, whole.index(b"\r\n\r\n") - 1)]
        return cut.rstrip(b"\r\n")[:-1]  # cut inside a header line, never at its end
    if kind == 2:
        return options(f"big{n}", pad=6000)  # larger than max_message_size: cut by the read
    # a request line and headers that are each almost right
    return (b"OPTIONS sip:gw@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKm"
            + str(n).encode() + b"\r\nCSeq: x OPTIONS\r\nCall-ID: m\r\nFrom: <sip:a@b>;tag=1\r\n"
            b"To: <sip:b@c>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")


class UdpClient(DatagramProtocol):
    def __init__(self) -> None:
        self.answers = EventLog()

    def datagramReceived(self, data: bytes, addr: tuple) -> None:  # noqa: N802
        try:
            self.answers(parse_message(data))
        except SipParseError:
            self.answers(data)


class TcpClient(Protocol):
    def __init__(self) -> None:
        self.received = b""
        self.lost: defer.Deferred = defer.Deferred()
        self.answers = EventLog()

    def dataReceived(self, data: bytes) -> None:  # noqa: N802
        self.received += data
        self.answers(data)

    def connectionLost(self, reason: object = None) -> None:  # noqa: N802
        self.lost.callback(None)


class FrontDoorTests(unittest.TestCase):
    def setUp(self) -> None:
        self.service = SipService(LIMITS)
        self.service.startService()
        self.addCleanup(self.service.stopService)
        self.transport = self.service.transport
        self.udp = UdpClient()
        port = reactor.listenUDP(0, self.udp, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.ups = EventLog()
        original = self.transport.stream_up

        def stream_up(stream: object) -> None:
            original(stream)
            self.ups(stream)

        self.transport.stream_up = stream_up

    def send_udp(self, data: bytes) -> None:
        self.udp.transport.write(data, ("127.0.0.1", self.service.port))

    async def udp_options_answered(self, call_id: str) -> None:
        self.send_udp(options(call_id))
        reply = await self.udp.answers.wait_for(
            lambda r: not isinstance(r, bytes) and r.headers.get("Call-ID") == call_id)
        self.assertEqual(reply.status, 200)

    async def connect(self) -> TcpClient:
        client = TcpClient()
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", self.service.port), client)
        self.addCleanup(lambda: client.transport.abortConnection())
        return client

    @inline
    async def test_udp_flood_with_valid_requests_between(self) -> None:
        rng = random.Random(4475)
        sent_junk = 0
        for batch in range(12):
            for _ in range(25):
                self.send_udp(junk(rng, sent_junk))
                sent_junk += 1
            await self.udp_options_answered(f"valid{batch}")
        stats = self.service.endpoint.stats
        self.assertEqual(stats.malformed, sent_junk)
        # The almost-right requests (bad CSeq) were addressable: they got 400s, not silence.
        self.assertGreaterEqual(stats.answered_400, sent_junk // 4)
        # (their 400s echo the broken CSeq, so the client keeps them as raw bytes)
        bad_requests = [r for r in self.udp.answers.events
                        if isinstance(r, bytes) and r.startswith(b"SIP/2.0 400 ")]
        self.assertEqual(len(bad_requests), stats.answered_400)
        self.assertEqual(len(self.service.endpoint.layer), 12)  # only the valid OPTIONS

    @inline
    async def test_half_open_connections_capped_and_reaped(self) -> None:
        half_open = []
        for _ in range(LIMITS.max_connections):
            client = await self.connect()
            client.transport.write(b"OPTIONS sip:gw@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1")
            half_open.append(client)
        await self.ups.wait_for(lambda _s: len(self.ups.events) >= LIMITS.max_connections)
        self.assertEqual(len(self.transport.streams), LIMITS.max_connections)

        # One more is refused at once, without a byte, and counted.
        extra = await self.connect()
        await extra.lost
        self.assertEqual(extra.received, b"")
        self.assertEqual(self.transport.refused_connections, 1)

        # UDP keeps working while TCP is full; buffers stay within the limit.
        await self.udp_options_answered("while-full")
        total = sum(s.framer.buffered for s in self.transport.streams)
        self.assertLessEqual(total, LIMITS.max_connections * LIMITS.max_message_size)
        self.assertTrue(all(0 < s.framer.buffered < 200 for s in self.transport.streams))

        # Idle half-open connections are closed by the gateway (idle_timeout), freeing slots.
        await defer.gatherResults([c.lost for c in half_open])
        self.assertEqual(len(self.transport.streams), 0)
        good = await self.connect()
        good.transport.write(options("tcp1", "TCP") + options("tcp2", "TCP") + b"\r\n\r\n")
        await good.answers.wait_for(lambda _d: good.received.count(b"SIP/2.0 200") == 2)
        self.assertIn(b"Call-ID: tcp1", good.received)
        self.assertIn(b"Call-ID: tcp2", good.received)

    @inline
    async def test_broken_streams_closed_others_untouched(self) -> None:
        good = await self.connect()
        bad_inputs = [
            b"X" * 20000,  # no end of headers, past every limit
            options("huge", "TCP").replace(b"Content-Length: 0", b"Content-Length: 100000"),
            b"GARBAGE GARBAGE\r\nNo-Length: here\r\n\r\n",  # stream framing needs Content-Length
            options("big", "TCP", pad=5000),  # headers larger than the message limit
        ]
        for data in bad_inputs:
            bad = await self.connect()
            bad.transport.write(data)
            await bad.lost
            self.assertNotIn(b"SIP/2.0 200", bad.received)
        self.assertGreaterEqual(self.service.endpoint.stats.malformed, len(bad_inputs))
        good.transport.write(options("still-here", "TCP"))
        await good.answers.wait_for(lambda _d: b"Call-ID: still-here" in good.received)
        self.assertIn(b"SIP/2.0 200 OK", good.received)
        self.assertTrue(all(s.framer.buffered == 0 for s in self.transport.streams))
