"""In-dialog functions against real peers on loopback: Kamailio (registrar + Record-Routing
proxy) and baresip phones — re-INVITE both ways (hold, resume), INFO DTMF, REFER both ways.

The gateway side is this process's SipService with the sans-IO sessions on top: an
:class:`OutgoingInvite` (as 1001, through Kamailio, which challenges the INVITE) for the calls
we place, an :class:`IncomingInvite` for the calls a phone places to us straight.  Our SDP is a
plain PCMU offer or answer naming a UDP port nobody reads (media is not what is tested here).
Every test stops its phones before Kamailio and the gateway (cleanups run last-in first-out),
so nothing is left running.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.internet.protocol import DatagramProtocol
from twisted.trial import unittest

from tests.peers.baresip import Baresip
from tests.peers.kamailio import Kamailio
from tests.peers.ports import free_port
from tests.support import EventLog, deferred_sleep, inline
from wcsgw.config import SipSettings
from wcsgw.sip.account import SipAccount
from wcsgw.sip.info import DTMF_RELAY, dtmf_relay_body
from wcsgw.sip.invite import Answered, Ended, Failed, OutgoingInvite
from wcsgw.sip.message import Request
from wcsgw.sip.service import SipService
from wcsgw.sip.session import (
    InfoAnswered,
    ReferAccepted,
    ReferFailed,
    ReferProgress,
    ReferReceived,
    ReinviteAnswered,
    ReinviteConfirmed,
    ReinviteFailed,
    ReinviteOffered,
)
from wcsgw.sip.target import Target
from wcsgw.sip.transaction import ServerTransaction
from wcsgw.sip.uas import Confirmed, IncomingInvite

# Short RFC 3261 timers: a lost request times out (64*T1) in 3.2 s instead of 32 s.
FAST = SipSettings(listen="127.0.0.1", port=0, t1=0.05, t2=0.4, t4=0.5)


def sdp(rtp_port: int, direction: str = "sendrecv", version: int = 1) -> bytes:
    """A plain audio SDP: PCMU, RTP/AVP, the given direction."""
    return (
        "v=0\r\n"
        f"o=wcsgw 1 {version} IN IP4 127.0.0.1\r\n"
        "s=-\r\n"
        "c=IN IP4 127.0.0.1\r\n"
        "t=0 0\r\n"
        f"m=audio {rtp_port} RTP/AVP 0\r\n"
        "a=rtpmap:0 PCMU/8000\r\n"
        "a=ptime:20\r\n"
        f"a={direction}\r\n"
    ).encode()


def direction_of(body: bytes | None) -> str:
    """The audio direction an SDP states (sendrecv when it states none, RFC 3264 §5.1)."""
    text = (body or b"").decode()
    for name in ("sendonly", "recvonly", "inactive", "sendrecv"):
        if f"a={name}" in text:
            return name
    return "sendrecv"


def is_final(event: object) -> bool:
    return isinstance(event, (Failed, Ended))


def next_event(log: EventLog, kinds: type | tuple[type, ...], timeout: float = 15.0) -> Any:
    """The first event of ``kinds`` logged from now on (events compare by value, so earlier
    equal ones must not count: identity decides)."""
    start = len(log.events)
    return log.wait_for(lambda e: isinstance(e, kinds)
                        and any(x is e for x in log.events[start:]), timeout)


class AutoAnswer:
    """A session listener that logs every event and, like a call layer, answers each
    re-INVITE offer at once with the RFC 3264 direction (a phone may re-INVITE at any time:
    baresip puts the call on hold before it follows a REFER)."""

    def __init__(self, gateway: SipService) -> None:
        self.gateway = gateway
        self.log = EventLog()
        self.session: Any = None
        self.answers: list[tuple[str, str]] = []

    def __call__(self, event: Any) -> None:
        if isinstance(event, ReinviteOffered) and self.session is not None:
            offered = direction_of(event.sdp)
            answer = ANSWER_DIRECTION[offered]
            self.answers.append((offered, answer))
            self.session.answer_reinvite(sdp(free_port("udp"), answer,
                                             version=len(self.answers) + 1), reactor.seconds())
            assert self.gateway.transport is not None
        self.log(event)


class Answerer:
    """A RequestHandler taking the phones' INVITEs to us as IncomingInvites, answered at once."""

    def __init__(self, gateway: SipService) -> None:
        self.gateway = gateway
        self.sessions: list[IncomingInvite] = []
        self.listener = AutoAnswer(gateway)
        self.events = self.listener.log

    def handle_request(self, request: Request, transaction: ServerTransaction | None,
                       source: Target, now: float) -> bool:
        if request.method != "INVITE" or request.to.tag or transaction is None:
            return False
        assert self.gateway.endpoint is not None
        session = IncomingInvite(self.gateway.endpoint, request, transaction,
                                 listener=self.listener)
        self.listener.session = session
        self.sessions.append(session)
        session.answer(sdp(free_port("udp")), now)
        return True


class InDialogWithPeersTests(unittest.TestCase):
    timeout = 60

    async def setup_peers(self, *users: str) -> tuple[Kamailio, dict[str, Baresip], SipService]:
        kam = Kamailio()
        self.addCleanup(kam.stop)  # cleanups run last-in first-out: Kamailio stops last
        await kam.start()
        gateway = SipService(FAST)
        gateway.startService()
        self.addCleanup(gateway.stopService)
        phones: dict[str, Baresip] = {}
        for user in users:
            phone = Baresip(user, f"pass{user}", registrar_port=kam.port)
            self.addCleanup(phone.stop)  # phones stop before the gateway and Kamailio
            await phone.start()
            phones[user] = phone
        for phone in phones.values():
            await phone.registered()
        return kam, phones, gateway

    async def call_phone(self, gateway: SipService, kam: Kamailio, phone: Baresip,
                         rtp_port: int | None = None) -> tuple[OutgoingInvite, EventLog, int]:
        """We (1001) call the phone through Kamailio; returns once both ends are up.  The
        session answers the phone's re-INVITEs (:class:`AutoAnswer`)."""
        account = SipAccount(login="1001", password="pass1001", domain="127.0.0.1",
                             port=kam.port, register=False)
        listener = AutoAnswer(gateway)
        events = listener.log
        rtp_port = rtp_port or free_port("udp")
        assert gateway.endpoint is not None
        mark = phone.mark()
        invite = OutgoingInvite(gateway.endpoint, account, f"sip:{phone.user}@127.0.0.1:{kam.port}",
                                sdp(rtp_port), listener=listener)
        listener.session = invite
        invite.start(reactor.seconds())
        answered = await events.wait_for(lambda e: isinstance(e, (Answered, Failed)))
        self.assertIsInstance(answered, Answered)
        await phone.wait_event("CALL_ESTABLISHED", since=mark)
        return invite, events, rtp_port

    async def phone_calls_us(self, gateway: SipService, phone: Baresip
                             ) -> tuple[IncomingInvite, AutoAnswer]:
        answerer = Answerer(gateway)
        assert gateway.endpoint is not None
        gateway.endpoint.handlers.append(answerer)
        mark = phone.mark()
        await phone.command("dial", f"sip:gw@127.0.0.1:{gateway.port}")
        await answerer.events.wait_for(lambda e: isinstance(e, (Confirmed, Failed)))
        [session] = answerer.sessions
        self.assertIsInstance(answerer.events.events[0], Confirmed)
        await phone.wait_event("CALL_ESTABLISHED", since=mark)
        return session, answerer.listener

    @inline
    async def test_we_hold_and_resume_the_phone(self) -> None:
        """Our re-INVITEs with a=sendonly, a=inactive, then a=sendrecv, through Kamailio: the
        phone takes each offer (CALL_REMOTE_SDP "offer"), answers recvonly / inactive /
        sendrecv, and its RTP to us stops while held and comes back on resume."""
        kam, phones, gateway = await self.setup_peers("1002")
        phone = phones["1002"]
        rtp = RtpCounter()
        port = reactor.listenUDP(0, rtp, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        invite, events, rtp_port = await self.call_phone(gateway, kam, phone,
                                                         rtp_port=port.getHost().port)
        await rtp.packets.wait_for(lambda p: True)  # the phone sends before we hold

        version = 1
        for offered, answered in (("sendonly", "recvonly"), ("sendrecv", "sendrecv"),
                                  ("inactive", "inactive"), ("sendrecv", "sendrecv")):
            version += 1
            mark = phone.mark()
            cseq_before = invite.dialog.local_cseq  # type: ignore[union-attr]
            result_d = next_event(events, (ReinviteAnswered, ReinviteFailed))
            invite.reinvite(sdp(rtp_port, offered, version=version), reactor.seconds())
            result = await result_d
            self.assertIsInstance(result, ReinviteAnswered)
            self.assertEqual(direction_of(result.sdp), answered, offered)
            self.assertEqual(invite.dialog.local_cseq, cseq_before + 1)  # type: ignore[union-attr]
            remote = await phone.wait_event("CALL_REMOTE_SDP", since=mark)
            self.assertEqual(remote["param"], "offer")
            if offered == "sendrecv":
                count = len(rtp.packets.events)
                await rtp.packets.wait_for(lambda p, n=count: len(rtp.packets.events) > n)
            else:
                # Held: allow what was in flight, then nothing arrives for a while.
                await deferred_sleep(0.2)
                count = len(rtp.packets.events)
                await deferred_sleep(0.4)
                self.assertEqual(len(rtp.packets.events), count, f"RTP while {offered}")
        # Each of our offers reached the phone (its SIP trace has every SDP version we sent).
        trace = phone.log_text()
        for sent in range(2, version + 1):
            self.assertIn(f"o=wcsgw 1 {sent} IN IP4", trace)
        self.assertEqual(invite.state.name, "CONFIRMED")
        invite.hangup(reactor.seconds())
        self.assertEqual(await events.wait_for(is_final), Ended("Normal call clearing", False))

    @inline
    async def test_phone_holds_and_resumes_us(self) -> None:
        """The phone (which called us) puts us on hold and resumes: each of its re-INVITEs is
        a ReinviteOffered on our IncomingInvite; we answer with the RFC 3264 direction and
        the ACK confirms it."""
        _kam, phones, gateway = await self.setup_peers("1002")
        phone = phones["1002"]
        session, answerer = await self.phone_calls_us(gateway, phone)
        events, answers = answerer.log, answerer.answers
        mark = phone.mark()
        confirmed = next_event(events, ReinviteConfirmed)
        await phone.command("hold")
        await confirmed
        self.assertEqual(len(answers), 1)
        self.assertIn(answers[0], [("sendonly", "recvonly"), ("inactive", "inactive")])
        await phone.wait_event("CALL_REMOTE_SDP", since=mark,
                               where=lambda e: e.get("param") == "answer")

        confirmed = next_event(events, ReinviteConfirmed)
        await phone.command("resume")
        await confirmed
        self.assertEqual(answers[1], ("sendrecv", "sendrecv"))
        self.assertEqual(session.state.name, "CONFIRMED")
        self.assertEqual([type(e) for e in events.events if isinstance(e, ReinviteOffered)],
                         [ReinviteOffered, ReinviteOffered])

        mark = phone.mark()
        await phone.command("hangup")
        self.assertEqual(await events.wait_for(is_final), Ended("Normal call clearing", True))
        await phone.wait_event("CALL_CLOSED", since=mark)

    @inline
    async def test_info_dtmf_to_the_phone(self) -> None:
        """INFO application/dtmf-relay digits to the phone: each is answered 200, and the
        phone reports each digit (CALL_DTMF_START with the digit)."""
        kam, phones, gateway = await self.setup_peers("1002")
        phone = phones["1002"]
        invite, events, _ = await self.call_phone(gateway, kam, phone)
        mark = phone.mark()
        for digit in "5#1":
            answer_d = next_event(events, InfoAnswered)
            invite.send_info(DTMF_RELAY, dtmf_relay_body(digit, 100), reactor.seconds())
            answer = await answer_d
            self.assertEqual(answer, InfoAnswered(200))
        starts = []
        for _ in "5#1":
            start = await phone.wait_event("CALL_DTMF_START", since=mark)
            starts.append(start["param"])
            mark = phone.events.index(start) + 1
        self.assertEqual(starts, ["5", "#", "1"])

    @inline
    async def test_blind_transfer_of_the_phone_to_another(self) -> None:
        """We REFER 1002 to 1003: 202, NOTIFYs (message/sipfrag) up to a final "SIP/2.0 200
        OK", and 1003 gets the call from 1002."""
        kam, phones, gateway = await self.setup_peers("1002", "1003")
        phone, target = phones["1002"], phones["1003"]
        invite, events, _ = await self.call_phone(gateway, kam, phone)
        target_mark = target.mark()
        invite.refer(f"sip:1003@127.0.0.1:{kam.port}", reactor.seconds())
        accepted = await events.wait_for(lambda e: isinstance(e, (ReferAccepted, ReferFailed)))
        self.assertEqual(accepted, ReferAccepted(202))
        final = await events.wait_for(lambda e: isinstance(e, ReferProgress) and e.final, timeout=20)
        self.assertEqual((final.sipfrag_status, final.reason), (200, "OK"))
        progress = [e for e in events.events if isinstance(e, ReferProgress)]
        self.assertEqual([e.final for e in progress], [False] * (len(progress) - 1) + [True])
        self.assertTrue(all(e.sipfrag_status < 200 for e in progress[:-1]), progress)
        established = await target.wait_event("CALL_ESTABLISHED", since=target_mark)
        self.assertIn("1002", established["peeruri"])
        transfer = await phone.wait_event("TRANSFER")
        self.assertEqual(transfer["param"], f"<sip:1003@127.0.0.1:{kam.port}>")
        # Transferred: our leg is done (the phone may hang up first).
        invite.hangup(reactor.seconds())
        ended = await events.wait_for(is_final)
        self.assertIsInstance(ended, Ended)

    @inline
    async def test_phone_transfers_us(self) -> None:
        """The phone (which called us) REFERs us to 1003: ReferReceived with the target and
        Referred-By; we accept (202 + NOTIFY 100 Trying) and report success (NOTIFY 200 OK,
        subscription terminated): the phone considers the call transferred and hangs up."""
        kam, phones, gateway = await self.setup_peers("1002")
        phone = phones["1002"]
        session, answerer = await self.phone_calls_us(gateway, phone)
        events = answerer.log
        mark = phone.mark()
        await phone.command("transfer", f"sip:1003@127.0.0.1:{kam.port}")
        received = await events.wait_for(lambda e: isinstance(e, ReferReceived))
        self.assertEqual(received.refer_to, f"sip:1003@127.0.0.1:{kam.port}")
        self.assertIsNone(received.replaces)
        # baresip 1.0 sends no Referred-By; should a later one, it names the phone.
        if received.referred_by is not None:
            self.assertIn("1002", received.referred_by)
        session.accept_refer(reactor.seconds())
        session.notify_refer(200, "OK", reactor.seconds())
        ended = await events.wait_for(is_final)
        self.assertEqual(ended, Ended("Normal call clearing", by_remote=True))
        closed = await phone.wait_event("CALL_CLOSED", since=mark)
        self.assertEqual(closed["param"], "Call transfered")  # (sic) the final sipfrag took
        trace = phone.log_text()  # what the phone received from us
        self.assertIn("SIP/2.0 202 Accepted", trace)
        self.assertIn("Subscription-State: active;expires=60", trace)
        self.assertIn("Subscription-State: terminated;reason=noresource", trace)
        self.assertIn("Content-Type: message/sipfrag;version=2.0", trace)


ANSWER_DIRECTION = {"sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive",
                    "sendrecv": "sendrecv"}


class RtpCounter(DatagramProtocol):
    """Notes the datagrams that arrive on our SDP's audio port."""

    def __init__(self) -> None:
        self.packets = EventLog()

    def datagramReceived(self, data: bytes, addr: tuple) -> None:  # Twisted's name
        self.packets(data)
