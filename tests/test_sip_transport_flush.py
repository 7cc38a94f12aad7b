"""SipTransport flushes by itself (nobody above wcsgw.sip pumps), on task.Clock, no sockets.

The reactor here is a ``task.Clock`` with just enough of listenUDP/listenTCP for ``bind()``:
what the adapter writes is recorded, and its one timer is a Clock call.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import task
from twisted.trial import unittest

from wcsgw.sip.account import SipAccount
from wcsgw.sip.endpoint import EndpointConfig, SipEndpoint
from wcsgw.sip.message import Headers, Request
from wcsgw.sip.parser import parse_message
from wcsgw.sip.target import Target
from wcsgw.sip.transport import SipTransport

PEER = Target("UDP", "192.0.2.7", 5070)


class _Host:
    port = 5099


class _UdpPort:
    def __init__(self, log: list[tuple[bytes, tuple[str, int]]]) -> None:
        self.log = log

    def getHost(self) -> _Host:  # noqa: N802 - Twisted API
        return _Host()

    def write(self, data: bytes, addr: tuple[str, int]) -> None:
        self.log.append((data, addr))

    def stopListening(self) -> None:  # noqa: N802
        pass


class FakeReactor(task.Clock):
    """A Clock that also 'listens': UDP writes are recorded in :attr:`written`."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[tuple[bytes, tuple[str, int]]] = []

    def listenUDP(self, port: int, protocol: Any, interface: str = "",  # noqa: N802
                  maxPacketSize: int = 8192) -> _UdpPort:  # noqa: N803
        return _UdpPort(self.written)

    def listenTCP(self, port: int, factory: Any, backlog: int = 50,  # noqa: N802
                  interface: str = "") -> _UdpPort:
        return _UdpPort([])


def options_request() -> Request:
    h = Headers()
    h.add("From", "<sip:gw@127.0.0.1>;tag=f1")
    h.add("To", "<sip:peer@192.0.2.7>")
    h.add("Call-ID", "flush-1")
    h.add("CSeq", "1 OPTIONS")
    return Request("OPTIONS", "sip:peer@192.0.2.7:5070", h)


def incoming_options(branch: str) -> bytes:
    return (
        "OPTIONS sip:gw@127.0.0.1:5099 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 192.0.2.7:5070;branch={branch}\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:alice@example.com>;tag=a1\r\n"
        "To: <sip:gw@127.0.0.1>\r\n"
        f"Call-ID: {branch}@example.com\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


class FlushTests(unittest.TestCase):
    def setUp(self) -> None:
        self.reactor = FakeReactor()
        self.transport = SipTransport(self.reactor, "127.0.0.1", 0)  # type: ignore[arg-type]
        self.transport.bind()
        self.endpoint = SipEndpoint(EndpointConfig(port=5099))
        self.transport.attach(self.endpoint)

    def methods(self) -> list[str]:
        out = []
        for data, _addr in self.reactor.written:
            msg = parse_message(data)
            out.append(msg.method if isinstance(msg, Request) else str(msg.status))
        return out

    def test_request_from_outside_leaves_before_the_call_returns(self) -> None:
        self.endpoint.send_request(options_request(), PEER, self.reactor.seconds(),
                                   lambda r, now: None)
        self.assertEqual(self.methods(), ["OPTIONS"])
        self.assertEqual(self.reactor.written[0][1], ("192.0.2.7", 5070))

    def test_timer_armed_and_fired_without_pumping(self) -> None:
        self.endpoint.send_request(options_request(), PEER, self.reactor.seconds(),
                                   lambda r, now: None)
        [call] = self.reactor.getDelayedCalls()
        self.assertAlmostEqual(call.getTime(), 0.5)  # Timer E = T1
        self.reactor.advance(0.5)
        self.assertEqual(self.methods(), ["OPTIONS", "OPTIONS"])  # retransmitted
        [call] = self.reactor.getDelayedCalls()  # one timer, re-armed
        self.assertAlmostEqual(call.getTime(), 1.5)  # then 2*T1 later

    def test_response_to_a_datagram_is_sent_within_the_entry(self) -> None:
        self.transport.received(incoming_options("z9hG4bKflush1"), PEER)
        self.assertEqual(self.methods(), ["200"])

    def test_several_wakes_inside_one_entry_flush_once_in_order(self) -> None:
        flushes: list[int] = []
        flush = self.transport._flush

        def counting_flush() -> None:
            flushes.append(len(self.reactor.written))
            flush()

        self.transport._flush = counting_flush  # type: ignore[method-assign]
        sent = []

        class Handler:
            def handle_request(self_, request: Any, txn: Any, source: Any, now: float) -> bool:
                # The handler sends two requests of its own while the endpoint dispatches.
                for _ in range(2):
                    sent.append(self.endpoint.send_request(options_request(), PEER, now,
                                                           lambda r, now: None))
                return False

        self.endpoint.handlers.append(Handler())
        self.transport.received(incoming_options("z9hG4bKflush2"), PEER)
        self.assertEqual(flushes, [0])  # one flush, after the endpoint returned
        self.assertEqual(self.methods(), ["OPTIONS", "OPTIONS", "200"])

    def test_register_from_outside_is_sent(self) -> None:
        account = SipAccount(login="1001", password="x", domain="192.0.2.7", port=5070)
        self.endpoint.register(account, self.reactor.seconds())
        self.assertEqual(self.methods(), ["REGISTER"])

    def test_nothing_sent_after_stop(self) -> None:
        self.transport.stop()
        self.endpoint.send_request(options_request(), PEER, self.reactor.seconds(),
                                   lambda r, now: None)
        self.assertEqual(self.reactor.written, [])
        self.assertEqual(self.reactor.getDelayedCalls(), [])
