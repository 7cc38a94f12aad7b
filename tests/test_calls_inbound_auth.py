"""An incoming call's in-dialog requests carry the called session's credentials.

The gateway's :class:`~wcsgw.calls.inbound.InboundRouter` builds the
:class:`~wcsgw.sip.uas.IncomingInvite` of a call to a browser session; a proxy that challenges
what we send in that dialog (hold re-INVITE, REFER, INFO, BYE) must be answered with the
session's account, as on the calls the session places.  Sans-IO: the real router and SIP
endpoint, the peer played by the re-INVITE tests' harness.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from twisted.trial import unittest

from tests.test_sip_reinvite import HELD, HOLD, Side, challenge, uas
from tests.test_sip_uas import UasHarness
from wcsgw.calls.inbound import InboundRouter
from wcsgw.sip.account import SipAccount
from wcsgw.sip.invite import Ended
from wcsgw.sip.session import ReinviteAnswered, ReinviteFailed

ACCOUNT = SipAccount(login="1001", auth_name="acme-1001", password="secret", domain="127.0.0.1")


def routed_call(account: SipAccount | None) -> Side:
    """alice's call to a connected session with ``account``, taken by the gateway's router
    (the call object is a stub that records the session's events); up and ACKed."""

    def taker(h: UasHarness) -> InboundRouter:
        session = SimpleNamespace(connected=True, account=account)
        gateway = SimpleNamespace(sip=SimpleNamespace(endpoint=h.ep),
                                  session_for_contact=lambda user: session)

        def make_call(session: Any, invite: Any, request: Any) -> Any:
            h.sessions.append(invite)
            return SimpleNamespace(_on_sip_event=h.events.append)

        return InboundRouter(gateway, make_call)

    return uas(taker=taker)


class InboundCredentialsTests(unittest.TestCase):
    def test_challenged_hold_is_answered_with_the_sessions_account(self) -> None:
        s = routed_call(ACCOUNT)
        s.session.reinvite(HOLD, 2.0)
        [invite] = s.requests("INVITE")
        s.reply(invite, 407, extra=challenge(), at=2.1)
        [again] = s.requests("INVITE")
        credentials = again.headers.get("Proxy-Authorization") or ""
        self.assertIn('username="acme-1001"', credentials)  # the auth name, not the login
        s.reply(again, 200, body=HELD, at=2.2)
        self.assertEqual(s.events, [ReinviteAnswered(HELD)])

    def test_challenged_bye_is_answered_with_the_sessions_account(self) -> None:
        s = routed_call(ACCOUNT)
        s.session.hangup(2.0)
        [bye] = s.requests("BYE")
        s.reply(bye, 401, extra=challenge("WWW-Authenticate"), at=2.1)
        [again] = s.requests("BYE")
        self.assertIn('username="acme-1001"', again.headers.get("Authorization") or "")
        s.reply(again, 200, at=2.2)
        self.assertEqual(s.events, [Ended("Normal call clearing", by_remote=False)])

    def test_a_session_without_account_has_no_credentials(self) -> None:
        s = routed_call(None)
        s.session.reinvite(HOLD, 2.0)
        [invite] = s.requests("INVITE")
        s.reply(invite, 407, extra=challenge(), at=2.1)
        self.assertEqual(s.requests("INVITE"), [])
        self.assertEqual(s.events, [ReinviteFailed(407, "407 Proxy Authentication Required")])
