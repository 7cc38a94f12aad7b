"""Fail fast on a wrong SIP port: an ICMP unreachable for a UDP request fails its transaction
(once it has retransmitted for ICMP_GRACE, 3 s), naming the host:port, instead of Timer B/F's
"timeout" after 32 s.

The pure parts on bytes and a fake clock (the error queue's messages, the text, the
transaction layer fed a transport error); then real sockets on 127.0.0.1 with the RFC's
default timers (T1 = 0.5 s: a timeout would take 32 s), a REGISTER and an INVITE to a UDP port
where nothing listens fail within the waits' 10 s, saying why; a request to another port is
untouched, and the socket is not left in POLLERR.
"""

from __future__ import annotations

import select
import struct

from twisted.internet import reactor
from twisted.internet.protocol import DatagramProtocol
from twisted.trial import unittest

from tests.peers.ports import free_port
from tests.support import EventLog, inline
from tests.test_sip_transaction import UDP_PEER, Harness, make_request
from wcsgw.config import Account, SipSettings
from wcsgw.sip.account import SipAccount
from wcsgw.sip.events import RegistrationFailed
from wcsgw.sip.invite import Failed, OutgoingInvite
from wcsgw.sip.registrationlog import failure_text
from wcsgw.sip.service import SipService
from wcsgw.sip.target import Target
from wcsgw.sip.transaction import State, TransactionTerminated, TransportFailed
from wcsgw.sip.udperrors import ICMP_GRACE, Unreachable, parse_error, reason_text

#: What Linux put in the control data of the error-queue messages seen (sock_extended_err,
#: then the offender's sockaddr): ECONNREFUSED, ICMP type 3 code 3 / ICMPv6 type 1 code 4.
V4_PORT_UNREACHABLE = (b"o\x00\x00\x00\x02\x03\x03\x00" + bytes(8)
                       + b"\x02\x00\x00\x00\x7f\x00\x00\x01" + bytes(8))
V6_PORT_UNREACHABLE = b"o\x00\x00\x00\x03\x01\x04\x00" + bytes(8) + b"\x0a\x00" + bytes(26)


def sock_err(origin: int, icmp_type: int, code: int) -> bytes:
    return struct.pack("=IBBBBII", 111, origin, icmp_type, code, 0, 0, 0)


class ParseTests(unittest.SynchronousTestCase):
    def test_port_unreachable_v4_and_v6(self) -> None:
        self.assertEqual(parse_error(("127.0.0.1", 5070), [(0, 11, V4_PORT_UNREACHABLE)]),
                         Unreachable("127.0.0.1", 5070, "port unreachable"))
        self.assertEqual(parse_error(("::1", 5070, 0, 0), [(41, 25, V6_PORT_UNREACHABLE)]),
                         Unreachable("::1", 5070, "port unreachable"))

    def test_addresses_are_canonical(self) -> None:
        mapped = parse_error(("::ffff:192.0.2.7", 5060, 0, 0), [(41, 25, sock_err(3, 1, 4))])
        self.assertEqual(mapped, Unreachable("192.0.2.7", 5060, "port unreachable"))
        long_v6 = parse_error(("2001:db8:0:0::1%lo", 5060, 0, 1), [(41, 25, sock_err(3, 1, 3))])
        self.assertEqual(long_v6, Unreachable("2001:db8::1", 5060, "address unreachable"))

    def test_other_errors_are_not_unreachables(self) -> None:
        local = sock_err(1, 0, 0)  # SO_EE_ORIGIN_LOCAL: EMSGSIZE and such
        for ancdata in ([(0, 11, local)], [(0, 11, sock_err(2, 11, 0))],  # time exceeded
                        [(0, 11, b"\x00" * 8)], [(0, 8, V4_PORT_UNREACHABLE)], []):
            self.assertIsNone(parse_error(("127.0.0.1", 5070), ancdata), ancdata)
        self.assertIsNone(parse_error(None, [(0, 11, V4_PORT_UNREACHABLE)]))

    def test_host_unreachable_and_unknown_codes(self) -> None:
        self.assertEqual(parse_error(("192.0.2.7", 5060), [(0, 11, sock_err(2, 3, 1))]).what,
                         "host unreachable")
        self.assertEqual(parse_error(("192.0.2.7", 5060), [(0, 11, sock_err(2, 3, 7))]).what,
                         "destination unreachable")

    def test_the_text_names_host_and_port(self) -> None:
        self.assertEqual(reason_text(Unreachable("127.0.0.1", 5070, "port unreachable")),
                         "No SIP server answers at 127.0.0.1:5070 (ICMP port unreachable)")
        self.assertEqual(reason_text(Unreachable("::1", 5070, "port unreachable")),
                         "No SIP server answers at [::1]:5070 (ICMP port unreachable)")

    def test_registration_log_line(self) -> None:
        reason = "No SIP server answers at 127.0.0.1:5070 (ICMP port unreachable)"
        line = failure_text("sip:1001@127.0.0.1", RegistrationFailed(None, reason, False, 2.0),
                            Target("UDP", "127.0.0.1", 5070))
        self.assertEqual(line, "registration sip:1001@127.0.0.1 failed: could not reach UDP "
                         "127.0.0.1:5070 (transport error: ICMP port unreachable: no SIP server "
                         "there); retrying in 2 s")


class LayerTests(unittest.SynchronousTestCase):
    """The transaction layer on a fake clock: only the transactions to exactly that
    transport, address and port fail, at once, with the reason."""

    REASON = "No SIP server answers at 192.0.2.10:5060 (ICMP port unreachable)"

    def test_fails_only_the_exact_destination(self) -> None:
        h = Harness()
        invite = h.send_request(make_request(), UDP_PEER)
        register = h.send_request(make_request("REGISTER", branch="z9hG4bK-r"), UDP_PEER)
        other_port = h.send_request(make_request("OPTIONS", branch="z9hG4bK-p"),
                                    Target("UDP", UDP_PEER.host, 5070))
        other_host = h.send_request(make_request("OPTIONS", branch="z9hG4bK-h"),
                                    Target("UDP", "192.0.2.11", 5060))
        over_tcp = h.send_request(make_request("OPTIONS", branch="z9hG4bK-t", transport="TCP"),
                                  Target("TCP", UDP_PEER.host, 5060, connection=object()))
        h.run_until(0.1)
        h.take_events()
        h.layer.transport_error(Target("UDP", UDP_PEER.host, 5060), h.now, self.REASON)
        h.driver.pump()
        events = h.take_events()
        self.assertCountEqual(events, [
            TransportFailed(invite, self.REASON), TransactionTerminated(invite),
            TransportFailed(register, self.REASON), TransactionTerminated(register)])
        self.assertEqual([e.reason for e in events if isinstance(e, TransportFailed)],
                         [self.REASON] * 2)
        for untouched in (other_port, other_host, over_tcp):
            self.assertEqual(untouched.state, State.TRYING)
        # the others still run their own timers: Timer F is 32 s away
        h.run_until(31.9)
        self.assertEqual(h.take_events(), [])
        h.run_until(32.1)
        self.assertEqual(len([e for e in h.take_events() if isinstance(e, TransactionTerminated)]),
                         3)

    def test_a_young_transaction_is_spared_until_the_grace_is_over(self) -> None:
        """A server just starting answers ICMP for a moment: the retransmissions of the
        first ICMP_GRACE seconds still go; an ICMP error after that fails the request."""
        self.assertEqual(ICMP_GRACE, 3.0)
        h = Harness()
        txn = h.send_request(make_request("REGISTER", branch="z9hG4bK-y"), UDP_PEER)
        h.run_until(1.5)
        h.take_events()
        h.layer.transport_error(UDP_PEER, h.now, self.REASON, grace=ICMP_GRACE)
        h.driver.pump()
        self.assertEqual(h.take_events(), [])
        self.assertEqual(txn.state, State.TRYING)
        h.run_until(3.5)  # its retransmission at 3.5 s meets the ICMP error again
        h.layer.transport_error(UDP_PEER, h.now, self.REASON, grace=ICMP_GRACE)
        h.driver.pump()
        self.assertEqual(h.take_events(), [TransportFailed(txn, self.REASON),
                                           TransactionTerminated(txn)])

    def test_plain_transport_errors_keep_their_reason(self) -> None:
        h = Harness()
        txn = h.send_request(make_request("OPTIONS", branch="z9hG4bK-o"), UDP_PEER)
        h.layer.transport_error(UDP_PEER, h.now)
        h.driver.pump()
        self.assertEqual(h.take_events()[0], TransportFailed(txn, "transport"))


class RealSocketTests(unittest.TestCase):
    """With the RFC's default timers: a timeout would take 32 s; every wait here gives up
    after 10 s, so an answer within it is the ICMP error's."""

    timeout = 60
    SETTINGS = SipSettings(listen="127.0.0.1", port=0)

    def start(self, *accounts: Account) -> tuple[SipService, EventLog]:
        service = SipService(self.SETTINGS, accounts=accounts)
        events = EventLog()
        service.registration_listeners.append(events)
        service.startService()
        self.addCleanup(service.stopService)
        assert service.transport is not None
        self.assertTrue(service.transport.icmp_errors)
        return service, events

    @inline
    async def test_register_to_a_closed_port_fails_within_seconds(self) -> None:
        port = free_port("udp+tcp")
        service, events = self.start(Account(login="1001", password="pass1001",
                                             domain="127.0.0.1", port=port, transport="udp"))
        _, failure = await events.wait_for(lambda e: isinstance(e[1], RegistrationFailed),
                                           timeout=10.0)
        self.assertEqual(failure.reason,
                         f"No SIP server answers at 127.0.0.1:{port} (ICMP port unreachable)")
        self.assertIsNone(failure.status)
        self.assertFalse(failure.auth)
        self.assertIsNotNone(failure.retry_in)
        # the error queue was read: the socket is not left readable with POLLERR
        sock = service.transport._udp_port.socket  # type: ignore[union-attr]
        poll = select.poll()
        poll.register(sock, select.POLLIN)
        self.assertEqual(poll.poll(0), [])

    @inline
    async def test_invite_to_a_closed_port_fails_within_seconds_and_a_live_one_waits(self) -> None:
        service, _ = self.start()
        closed = free_port("udp+tcp")
        alive = free_port("udp+tcp")
        silent = reactor.listenUDP(alive, DatagramProtocol(), interface="127.0.0.1")
        self.addCleanup(silent.stopListening)
        assert service.endpoint is not None
        calls = []
        for port in (closed, alive):
            account = SipAccount(login="1001", domain="127.0.0.1", port=port, register=False)
            events = EventLog()
            invite = OutgoingInvite(service.endpoint, account, f"sip:1002@127.0.0.1:{port}",
                                    b"v=0\r\n", listener=events)
            invite.start(reactor.seconds())
            calls.append((invite, events))
        failed = await calls[0][1].wait_for(lambda e: isinstance(e, Failed), timeout=10.0)
        self.assertEqual(failed, Failed(None, f"No SIP server answers at 127.0.0.1:{closed} "
                                              "(ICMP port unreachable)"))
        # the INVITE to the port that reads and never answers is still trying
        self.assertEqual(calls[1][1].events, [])
        self.assertFalse(calls[1][0].terminated)
        calls[1][0].hangup(reactor.seconds())
