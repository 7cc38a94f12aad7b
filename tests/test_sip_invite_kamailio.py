"""Outgoing calls through a real Kamailio to a real phone (baresip), on loopback.

Each test starts Kamailio (registrar + proxy: INVITEs from 1001 are challenged with 407), one
baresip phone registered as 1002, and the gateway's SipService in this process; the gateway
calls ``sip:1002@127.0.0.1:<kamailio port>`` as account 1001 with a plain PCMU offer (pointing
at a port nobody reads, except in the first test, which checks that the phone's RTP arrives
there as PCMU).  Cleanups stop the phone before Kamailio and the gateway, so nothing is left
running; the tests without Kamailio show Timer B and a refused TCP connection.
"""

from __future__ import annotations

from twisted.internet import reactor
from twisted.internet.protocol import DatagramProtocol
from twisted.trial import unittest

from tests.peers.baresip import Baresip
from tests.peers.kamailio import Kamailio
from tests.peers.ports import free_port
from tests.support import EventLog, inline
from wcsgw.config import SipSettings
from wcsgw.sip.account import SipAccount
from wcsgw.sip.invite import (
    REASON_NORMAL,
    REASON_TIMEOUT,
    REASON_TRANSPORT,
    Answered,
    Ended,
    Failed,
    InviteState,
    OutgoingInvite,
    Provisional,
)
from wcsgw.sip.service import SipService

# Short RFC 3261 timers: a lost request times out (64*T1) in 3.2 s instead of 32 s.
FAST = SipSettings(listen="127.0.0.1", port=0, t1=0.05, t2=0.4, t4=0.5)


def offer(rtp_port: int) -> bytes:
    """A plain audio offer: PCMU only, RTP/AVP, to a port nobody needs to read."""
    return (
        "v=0\r\n"
        "o=wcsgw 1 1 IN IP4 127.0.0.1\r\n"
        "s=-\r\n"
        "c=IN IP4 127.0.0.1\r\n"
        "t=0 0\r\n"
        f"m=audio {rtp_port} RTP/AVP 0\r\n"
        "a=rtpmap:0 PCMU/8000\r\n"
        "a=ptime:20\r\n"
        "a=sendrecv\r\n"
    ).encode()


class RtpSink(DatagramProtocol):
    """Notes the datagrams that arrive on the offer's audio port."""

    def __init__(self) -> None:
        self.packets = EventLog()

    def datagramReceived(self, data: bytes, addr: tuple) -> None:  # noqa: N802 (Twisted API)
        self.packets(data)


def is_final(event: object) -> bool:
    return isinstance(event, (Failed, Ended))


class OutgoingCallTests(unittest.TestCase):
    timeout = 60

    async def setup_peers(self, answermode: str = "auto", transport: str = "udp"
                          ) -> tuple[Kamailio, Baresip, SipService, SipAccount]:
        kam = Kamailio()
        self.addCleanup(kam.stop)  # cleanups run last-in first-out: Kamailio stops last
        await kam.start()
        gateway = SipService(FAST)
        gateway.startService()
        self.addCleanup(gateway.stopService)
        phone = Baresip("1002", "pass1002", registrar_port=kam.port, answermode=answermode)
        self.addCleanup(phone.stop)
        await phone.start()
        await phone.registered()
        rows = await kam.bindings("1002")
        self.assertEqual(len(rows), 1)
        self.assertIn(f"127.0.0.1:{phone.sip_port}", rows[0]["contact"])
        account = SipAccount(login="1001", password="pass1001", domain="127.0.0.1",
                             port=kam.port, transport=transport, register=False)
        return kam, phone, gateway, account

    def call(self, gateway: SipService, account: SipAccount, kam: Kamailio,
             user: str = "1002", no_answer_timeout: float = 60.0, rtp_port: int | None = None
             ) -> tuple[OutgoingInvite, EventLog]:
        events = EventLog()
        assert gateway.endpoint is not None and gateway.transport is not None
        invite = OutgoingInvite(gateway.endpoint, account, f"sip:{user}@127.0.0.1:{kam.port}",
                                offer(rtp_port or free_port("udp")), listener=events,
                                no_answer_timeout=no_answer_timeout)
        invite.start(reactor.seconds())
        return invite, events

    def hangup(self, gateway: SipService, invite: OutgoingInvite) -> None:
        assert gateway.transport is not None
        invite.hangup(reactor.seconds())

    @inline
    async def test_answered_then_we_hang_up(self) -> None:
        kam, phone, gateway, account = await self.setup_peers()
        rtp = RtpSink()
        port = reactor.listenUDP(0, rtp, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        mark = phone.mark()
        invite, events = self.call(gateway, account, kam, rtp_port=port.getHost().port)

        answered = await events.wait_for(lambda e: isinstance(e, (Answered, Failed)))
        self.assertIsInstance(answered, Answered)
        sdp = answered.sdp.decode()
        self.assertIn("m=audio ", sdp)
        self.assertIn("PCMU/8000", sdp)
        self.assertIn("c=IN IP4 127.0.0.1", sdp)
        # Kamailio challenged the first INVITE; the second carried the answer.
        assert invite.invite is not None
        self.assertEqual(invite.invite.cseq, (2, "INVITE"))
        self.assertIn('username="1001"', invite.invite.headers.get("Proxy-Authorization"))
        self.assertEqual(invite.state, InviteState.CONFIRMED)
        # Kamailio stays in the path (Record-Route), so the dialog routes through it.
        assert invite.dialog is not None
        self.assertEqual(len(invite.dialog.route_set), 1)
        self.assertIn(f"127.0.0.1:{kam.port}", invite.dialog.route_set[0])
        established = await phone.wait_event("CALL_ESTABLISHED", since=mark)
        self.assertEqual(established["direction"], "incoming")
        # The phone took our offer: PCMU (payload type 0) RTP to the port we named.
        packet = await rtp.packets.wait_for(lambda p: True)
        self.assertEqual(packet[0] >> 6, 2)  # RTP version
        self.assertEqual(packet[1] & 0x7F, 0)
        self.assertEqual(len(packet), 12 + 160)  # 20 ms of G.711

        self.hangup(gateway, invite)
        ended = await events.wait_for(is_final)
        self.assertEqual(ended, Ended(REASON_NORMAL, by_remote=False))
        closed = await phone.wait_event("CALL_CLOSED", since=mark)
        self.assertEqual(closed["id"], established["id"])
        self.assertEqual([type(e) for e in events.events if is_final(e)], [Ended])
        self.assertEqual(len(phone.recordings()), 1)  # sndfile's dump of this call

    @inline
    async def test_phone_hangs_up(self) -> None:
        kam, phone, gateway, account = await self.setup_peers()
        mark = phone.mark()
        invite, events = self.call(gateway, account, kam)
        await events.wait_for(lambda e: isinstance(e, Answered))
        await phone.wait_event("CALL_ESTABLISHED", since=mark)

        await phone.command("hangup")
        ended = await events.wait_for(is_final)
        self.assertEqual(ended, Ended(REASON_NORMAL, by_remote=True))
        self.assertEqual(invite.state, InviteState.TERMINATED)
        await phone.wait_event("CALL_CLOSED", since=mark)

    @inline
    async def test_phone_rejects(self) -> None:
        """Manual answer mode, then ``hangup`` on the ringing call: baresip answers
        486 (the call layer's BUSY)."""
        kam, phone, gateway, account = await self.setup_peers(answermode="manual")
        mark = phone.mark()
        invite, events = self.call(gateway, account, kam)
        await phone.wait_event("CALL_INCOMING", since=mark)
        ringing = await events.wait_for(lambda e: isinstance(e, Provisional) and e.status == 180)
        self.assertEqual(ringing.reason, "Ringing")

        await phone.command("hangup")
        failed = await events.wait_for(is_final)
        self.assertIsInstance(failed, Failed)
        self.assertEqual(failed.status, 486)
        self.assertTrue(failed.reason.startswith("486 "), failed.reason)
        self.assertEqual(invite.final_status, 486)

    @inline
    async def test_unknown_user(self) -> None:
        """Nobody registered as 1004: Kamailio's location lookup fails with 404."""
        kam, phone, gateway, account = await self.setup_peers()
        invite, events = self.call(gateway, account, kam, user="1004")
        failed = await events.wait_for(is_final)
        self.assertEqual(failed, Failed(404, "404 Not Found"))
        self.assertEqual(phone.events, [])

    @inline
    async def test_cancel_while_ringing(self) -> None:
        kam, phone, gateway, account = await self.setup_peers(answermode="manual")
        mark = phone.mark()
        invite, events = self.call(gateway, account, kam)
        incoming = await phone.wait_event("CALL_INCOMING", since=mark)
        await events.wait_for(lambda e: isinstance(e, Provisional) and e.status == 180)

        self.hangup(gateway, invite)
        self.assertEqual(invite.state, InviteState.CANCELLING)
        closed = await phone.wait_event("CALL_CLOSED", since=mark)
        self.assertEqual(closed["id"], incoming["id"])
        ended = await events.wait_for(is_final)
        self.assertEqual(ended, Ended(REASON_NORMAL, by_remote=False))
        self.assertEqual(invite.final_status, 487)
        self.assertNotIn("CALL_ESTABLISHED", [e["type"] for e in phone.events[mark:]])

    @inline
    async def test_over_tcp(self) -> None:
        kam, phone, gateway, account = await self.setup_peers(transport="tcp")
        mark = phone.mark()
        invite, events = self.call(gateway, account, kam)
        answered = await events.wait_for(lambda e: isinstance(e, (Answered, Failed)))
        self.assertIsInstance(answered, Answered)
        assert invite.invite is not None
        self.assertEqual(invite.invite.top_via.transport, "TCP")
        await phone.wait_event("CALL_ESTABLISHED", since=mark)
        self.hangup(gateway, invite)
        self.assertEqual(await events.wait_for(is_final), Ended(REASON_NORMAL, by_remote=False))
        await phone.wait_event("CALL_CLOSED", since=mark)

    @inline
    async def test_no_answer_timeout(self) -> None:
        """The phone rings and nobody answers: the session's own deadline, kept by the
        endpoint and armed by the transport, sends the CANCEL."""
        kam, phone, gateway, account = await self.setup_peers(answermode="manual")
        mark = phone.mark()
        started = reactor.seconds()
        invite, events = self.call(gateway, account, kam, no_answer_timeout=1.0)
        incoming = await phone.wait_event("CALL_INCOMING", since=mark)
        failed = await events.wait_for(is_final)
        self.assertEqual(failed, Failed(None, REASON_TIMEOUT))
        self.assertGreaterEqual(reactor.seconds() - started, 1.0)
        self.assertEqual(invite.final_status, 487)
        closed = await phone.wait_event("CALL_CLOSED", since=mark)
        self.assertEqual(closed["id"], incoming["id"])


class NoPeerTests(unittest.TestCase):
    @inline
    async def test_nobody_answers_timer_b(self) -> None:
        """UDP into the void: Timer B (64*T1) ends the call as a request timeout."""
        gateway = SipService(FAST)
        gateway.startService()
        self.addCleanup(gateway.stopService)
        port = free_port("udp+tcp")
        # a socket that reads and never answers: a closed port would answer ICMP, which fails
        # the INVITE at once (tests.test_sip_icmp)
        silent = reactor.listenUDP(port, DatagramProtocol(), interface="127.0.0.1")
        self.addCleanup(silent.stopListening)
        account = SipAccount(login="1001", password="pass1001", domain="127.0.0.1", port=port,
                             register=False)
        events = EventLog()
        assert gateway.endpoint is not None and gateway.transport is not None
        invite = OutgoingInvite(gateway.endpoint, account, f"sip:1002@127.0.0.1:{port}",
                                offer(free_port("udp")), listener=events)
        started = reactor.seconds()
        invite.start(started)
        failed = await events.wait_for(is_final)
        self.assertEqual(failed, Failed(None, REASON_TIMEOUT))
        self.assertGreaterEqual(reactor.seconds() - started, 64 * FAST.t1 * 0.9)
        self.assertEqual(events.events, [failed])
        self.assertEqual(gateway.endpoint.timed_users, [])

    @inline
    async def test_tcp_connection_refused(self) -> None:
        """TCP to a port nobody listens on: a transport error, at once, not after Timer B."""
        gateway = SipService(FAST)
        gateway.startService()
        self.addCleanup(gateway.stopService)
        port = free_port("udp+tcp")
        account = SipAccount(login="1001", password="pass1001", domain="127.0.0.1", port=port,
                             transport="tcp", register=False)
        events = EventLog()
        assert gateway.endpoint is not None and gateway.transport is not None
        invite = OutgoingInvite(gateway.endpoint, account, f"sip:1002@127.0.0.1:{port}",
                                offer(free_port("udp")), listener=events)
        started = reactor.seconds()
        invite.start(started)
        failed = await events.wait_for(is_final)
        self.assertEqual(failed, Failed(None, REASON_TRANSPORT))
        self.assertLess(reactor.seconds() - started, 64 * FAST.t1)
