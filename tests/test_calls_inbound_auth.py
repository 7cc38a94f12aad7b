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
from tests.test_sip_trust import stub_gateway
from tests.test_sip_uas import UasHarness
from wcsgw.calls.inbound import InboundRouter
from wcsgw.sip.account import SipAccount
from wcsgw.sip.invite import Ended
from wcsgw.sip.session import ReinviteAnswered

ACCOUNT = SipAccount(login="1001", auth_name="acme-1001", password="secret", domain="127.0.0.1")


def router_for(h: UasHarness, account: SipAccount | None) -> InboundRouter:
    """The gateway's router with one connected session of ``account`` behind every contact
    (the call object is a stub that records the session's events)."""
    gateway = stub_gateway(h, account)

    def make_call(session: Any, invite: Any, request: Any) -> Any:
        h.sessions.append(invite)
        invite.listener = h.events.append  # as a call's SIP leg takes the INVITE's events
        return SimpleNamespace()

    return InboundRouter(gateway, make_call)


def routed_call(account: SipAccount | None) -> Side:
    """alice's call (from 127.0.0.1, the account's domain: its registrar) to a connected
    session with ``account``, taken by the gateway's router; up and ACKed."""
    return uas(taker=lambda h: router_for(h, account))


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

    def test_a_challenge_from_a_peer_that_is_not_the_accounts_proxy_is_refused(self) -> None:
        """The session's account is at another server (pbx.example.com, never resolved to
        127.0.0.1): the call is refused 403 before any dialog exists (the registrar is the
        only one who may route calls to the contact), so no credentials can go anywhere."""
        account = SipAccount(login="1001", password="secret", domain="pbx.example.com")
        h = UasHarness()
        h.ep.handlers = [router_for(h, account)]
        h.receive_invite()
        [refusal] = h.sent_responses()
        self.assertEqual(refusal.status, 403)
        self.assertEqual(h.sessions, [])
        self.assertEqual(h.events, [])
