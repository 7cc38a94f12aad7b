"""The gateway's SIP side against SIPp scenarios (tests/data/sipp/) playing a carrier's
equipment: reliable provisional responses (RFC 3262) and session timers with UPDATE
(RFC 4028, RFC 3311).  The gateway is a real SipService in this process (UDP on a free
port) whose endpoint has the policy the ``[sip]`` keys give; SIPp's exit status says whether
every step of its scenario happened, our session's events say what the call layer saw."""

from __future__ import annotations

from typing import Callable

from twisted.internet import reactor, task
from twisted.trial import unittest

from tests.peers.ports import free_port
from tests.peers.process import POLL
from tests.peers.sipp import Sipp
from tests.support import EventLog, inline
from tests.test_sip_invite_kamailio import FAST, offer
from wcsgw.sip.account import SipAccount
from wcsgw.sip.invite import Answered, Ended, Failed, OutgoingInvite, Provisional
from wcsgw.sip.message import Request
from wcsgw.sip.service import SipService
from wcsgw.sip.session import REASON_NORMAL
from wcsgw.sip.target import Target
from wcsgw.sip.transaction import ServerTransaction
from wcsgw.sip.uas import IncomingInvite
from wcsgw.sip.usage.policy import policy_of, set_session_policy


def is_final(event: object) -> bool:
    return isinstance(event, (Failed, Ended))


class SippUasTests(unittest.TestCase):
    """We call SIPp."""

    timeout = 60

    async def call(self, scenario: str, *, prack: str = "supported",
                   session_expires: int = 0) -> tuple[Sipp, OutgoingInvite, EventLog]:
        sipp = Sipp(scenario)
        self.addCleanup(sipp.stop)
        sipp.start()
        gateway = SipService(FAST)
        gateway.startService()
        self.addCleanup(gateway.stopService)
        assert gateway.endpoint is not None
        set_session_policy(gateway.endpoint, policy_of(session_expires, 90, prack))
        account = SipAccount(login="1001", password="pass1001", domain="127.0.0.1",
                             port=sipp.port, transport="udp", register=False)
        events = EventLog()
        invite = OutgoingInvite(gateway.endpoint, account, f"sip:sipp@127.0.0.1:{sipp.port}",
                                offer(free_port("udp")), listener=events)
        invite.start(reactor.seconds())
        return sipp, invite, events

    @inline
    async def test_reliable_183_with_sdp_is_pracked_then_answered(self) -> None:
        sipp, invite, events = await self.call("uas_reliable_183.xml")
        early = await events.wait_for(lambda e: isinstance(e, (Provisional, Failed)))
        self.assertIsInstance(early, Provisional, sipp.logs_now())
        assert isinstance(early, Provisional)
        self.assertEqual(early.status, 183)
        self.assertIn(b"m=audio ", early.sdp or b"")
        answered = await events.wait_for(lambda e: isinstance(e, (Answered, Failed)))
        self.assertIsInstance(answered, Answered)
        invite.hangup(reactor.seconds())
        self.assertEqual(await events.wait_for(is_final), Ended(REASON_NORMAL, by_remote=False))
        status = await sipp.finished()
        self.assertEqual(status, 0, sipp.logs)
        # one Provisional only: SIPp's 183 retransmissions (if any) were not passed up
        self.assertEqual(sum(isinstance(e, Provisional) for e in events.events), 1)

    @inline
    async def test_timer_required_by_the_uas_refreshed_with_update(self) -> None:
        sipp, invite, events = await self.call("uas_timer_update.xml", prack="off",
                                               session_expires=1800)
        answered = await events.wait_for(lambda e: isinstance(e, (Answered, Failed)))
        self.assertIsInstance(answered, Answered, sipp.logs_now())
        timer = invite.usages.session_timer
        assert timer is not None
        self.assertEqual((timer.agreement.interval, timer.agreement.we_refresh), (90, False))
        try:
            final = await events.wait_for(is_final)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{sipp.logs_now()}") from None
        self.assertEqual(final, Ended(REASON_NORMAL, by_remote=True))
        status = await sipp.finished()
        self.assertEqual(status, 0, sipp.logs)
        assert invite.invite is not None
        self.assertEqual(invite.invite.headers.get("Session-Expires"), "1800")


class SippUacTests(unittest.TestCase):
    """SIPp calls us: an IncomingInvite that rings with early media, as the test lines do."""

    timeout = 60

    @inline
    async def test_caller_supporting_100rel_gets_a_reliable_183_and_pracks_it(self) -> None:
        gateway = SipService(FAST)
        gateway.startService()
        self.addCleanup(gateway.stopService)
        endpoint = gateway.endpoint
        assert endpoint is not None
        set_session_policy(endpoint, policy_of(0, 90, "supported"))
        events = EventLog()
        sessions: list[IncomingInvite] = []

        class Taker:
            def handle_request(self, request: Request, transaction: ServerTransaction | None,
                               source: Target, now: float) -> bool:
                if request.method != "INVITE" or request.to.tag or transaction is None:
                    return False
                session = IncomingInvite(endpoint, request, transaction, listener=events)
                sessions.append(session)
                session.ring(now, sdp=offer(free_port("udp")))
                return True

        endpoint.handlers.append(Taker())
        sipp = Sipp("uac_100rel.xml", remote=f"127.0.0.1:{gateway.port}")
        self.addCleanup(sipp.stop)
        sipp.start()
        # the PRACK came (SIPp checked our 183's Require and RSeq): now the answer
        await until(lambda: bool(sessions) and sessions[0].usages.reliable is not None
                    and sessions[0].usages.reliable.current is not None
                    and sessions[0].usages.reliable.current.acknowledged, sipp)
        sessions[0].answer(offer(free_port("udp")), reactor.seconds())
        try:
            final = await events.wait_for(is_final)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{sipp.logs_now()}") from None
        self.assertEqual(final, Ended(REASON_NORMAL, by_remote=True))
        self.assertEqual(await sipp.finished(), 0, sipp.logs)


async def until(condition: Callable[[], bool], sipp: Sipp, timeout: float = 15.0) -> None:
    """Wait (without blocking the reactor) until ``condition`` holds, or fail with SIPp's
    logs: a state of the session that no event announces."""
    deadline = reactor.seconds() + timeout
    while not condition():
        if reactor.seconds() > deadline:
            raise AssertionError(f"condition not met within {timeout}s\n{sipp.logs_now()}")
        await task.deferLater(reactor, POLL, lambda: None)
