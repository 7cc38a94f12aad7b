"""The SIP trust boundary attacked through real sockets (issue 10, items 3, 4 and 9).

An "attacker" is a raw UDP socket on 127.0.0.2 — another address on loopback (the tests run
in a namespace where all of 127.0.0.0/8 is on lo), so the gateway sees a source that is
neither the phone, nor Kamailio, nor the account's registrar:

* **in-dialog requests from anywhere** — a BYE and a REFER carrying the live call's Call-ID
  and tags, sent by the attacker, must change nothing (no answer either: a 403 over UDP would
  be reflected to a forged source), while the phone's own BYE — through Kamailio, which
  Record-Routes, or straight from baresip without a proxy — still ends the call;
* **digest answered to anyone** — the account's proxy (a scripted one on 127.0.0.1) challenges
  the INVITE and hands the call to a callee on 127.0.0.2 without Record-Route; that callee
  then challenges our BYE with a 401 in the proxy's own realm: neither the ACK nor any BYE it
  gets may carry credentials;
* **unsolicited INVITEs** — a browser session registers at Kamailio (whose REGISTER challenge
  is answered); the attacker INVITEs the session's registered contact directly and gets 403,
  no call is made; a phone calling the same account through Kamailio still reaches it.

Every wait is for an event: to show that something did *not* happen, the attacker sends an
OPTIONS right after its attack and awaits the answer (same socket, loopback, one reactor: the
attack was handled before the OPTIONS).  Ports are picked at run time; every peer is stopped.
"""

from __future__ import annotations

import secrets
from typing import Any, Callable

from twisted.internet import reactor
from twisted.internet.protocol import DatagramProtocol
from twisted.trial import unittest

from tests.peers.baresip import Baresip
from tests.peers.kamailio import Kamailio
from tests.peers.ports import free_port
from tests.support import EventLog, inline
from tests.test_sip_reinvite_kamailio import FAST, Answerer, sdp
from wcsgw.calls.gateway import CallGateway
from wcsgw.calls.inbound import InboundRouter
from wcsgw.calls.policy import Policy
from wcsgw.sip.account import SipAccount
from wcsgw.sip.errors import SipParseError
from wcsgw.sip.invite import Answered, Ended, Failed, OutgoingInvite
from wcsgw.sip.message import Request, Response
from wcsgw.sip.parser import parse_message
from wcsgw.sip.responses import make_response
from wcsgw.sip.service import SipService
from wcsgw.sip.session import ReferReceived
from wcsgw.sip.uas import Confirmed

ATTACKER_HOST = "127.0.0.2"
PREMIUM = "sip:+19005550199@127.0.0.1"


def is_final(event: object) -> bool:
    return isinstance(event, (Failed, Ended))


class RawSip(DatagramProtocol):
    """A UDP socket speaking SIP by hand: every parsed message that arrives is logged with its
    source; ``reply`` (if set) may answer it.  Bound with :meth:`listen` on a free port."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.messages = EventLog()
        self.reply: Callable[[Request | Response, tuple[str, int]], None] | None = None
        self.port = 0

    def listen(self, test: unittest.TestCase) -> "RawSip":
        listening = reactor.listenUDP(0, self, interface=self.host)
        test.addCleanup(listening.stopListening)
        self.port = listening.getHost().port
        return self

    def datagramReceived(self, data: bytes, addr: tuple) -> None:  # noqa: N802 (Twisted API)
        try:
            msg = parse_message(data)
        except SipParseError:
            return
        self.messages(msg)
        if self.reply is not None:
            self.reply(msg, addr)

    def send(self, msg: Request | Response | str, to: tuple[str, int]) -> None:
        data = msg.encode() if isinstance(msg, str) else msg.to_bytes()
        self.transport.write(data, to)

    def request(self, method: str, uri: str, *, call_id: str, from_tag: str,
                to_tag: str | None, cseq: int, extra: str = "") -> tuple[str, str]:
        """A request as text (and its branch), sent from this socket's address."""
        branch = "z9hG4bK" + secrets.token_hex(8)
        to = f"<{uri}>" + (f";tag={to_tag}" if to_tag else "")
        text = (
            f"{method} {uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {self.host}:{self.port};branch={branch};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:mallory@{self.host}>;tag={from_tag}\r\n"
            f"To: {to}\r\n"
            f"Call-ID: {call_id}\r\n"
            f"CSeq: {cseq} {method}\r\n"
            f"Contact: <sip:mallory@{self.host}:{self.port}>\r\n"
            f"{extra}"
            "Content-Length: 0\r\n\r\n"
        )
        return text, branch

    def answer_to(self, branch: str, timeout: float = 10.0) -> Any:
        """The (first final) response to our request with ``branch``."""
        return self.messages.wait_for(
            lambda m: isinstance(m, Response) and m.status >= 200
            and m.top_via.branch == branch, timeout)

    async def barrier(self, gateway_port: int) -> None:
        """An out-of-dialog OPTIONS, answered: everything sent before it has been handled."""
        text, branch = self.request("OPTIONS", f"sip:gw@127.0.0.1:{gateway_port}",
                                    call_id=secrets.token_hex(8), from_tag="m1", to_tag=None,
                                    cseq=1)
        self.send(text, ("127.0.0.1", gateway_port))
        ok = await self.answer_to(branch)
        assert ok.status == 200, ok.status

    def responses_to(self, method: str) -> list[Response]:
        return [m for m in self.messages.events
                if isinstance(m, Response) and m.cseq[1] == method]


def credentials_in(msg: Request) -> list[str]:
    return [v for name in ("Authorization", "Proxy-Authorization")
            for v in msg.headers.get_all(name)]


# --------------------------------------------------------------------- 3. in-dialog requests


class InDialogFromAnywhereTests(unittest.TestCase):
    """A BYE or REFER with the right Call-ID and tags from anyone but the dialog's peer or
    the account's proxy is dropped; the phone's own BYE still ends the call."""

    timeout = 60

    async def gateway_and_phone(self, kamailio: bool) -> tuple[SipService, Baresip, Any]:
        kam = None
        if kamailio:
            kam = Kamailio()
            self.addCleanup(kam.stop)
            await kam.start()
        gateway = SipService(FAST)
        gateway.startService()
        self.addCleanup(gateway.stopService)
        # Without Kamailio the phone registers nowhere: it only calls the gateway directly.
        phone = Baresip("1002", "pass1002", registrar_port=kam.port if kam else None)
        self.addCleanup(phone.stop)
        await phone.start()
        if kam is not None:
            await phone.registered()
        return gateway, phone, kam

    def attack(self, attacker: RawSip, gateway: SipService, method: str, dialog: Any,
               extra: str = "") -> str:
        """``method`` on the live ``dialog`` (the phone's tag as From, ours as To, a CSeq
        above the phone's), from the attacker; returns its branch."""
        self.cseq = max(getattr(self, "cseq", 0), dialog.remote_cseq or 0) + 1
        text, branch = attacker.request(
            method, f"sip:1001@127.0.0.1:{gateway.port}", call_id=dialog.call_id,
            from_tag=dialog.remote_tag, to_tag=dialog.local_tag, cseq=self.cseq, extra=extra)
        attacker.send(text, ("127.0.0.1", gateway.port))
        return branch

    @inline
    async def test_bye_and_refer_from_a_stranger_do_nothing_through_kamailio(self) -> None:
        """We call the phone through Kamailio (Record-Route): the attacker's BYE and REFER
        are dropped, unanswered; then the phone hangs up and its BYE, relayed by Kamailio,
        ends the call."""
        gateway, phone, kam = await self.gateway_and_phone(kamailio=True)
        attacker = RawSip(ATTACKER_HOST).listen(self)
        account = SipAccount(login="1001", password="pass1001", domain="127.0.0.1",
                             port=kam.port, register=False)
        events = EventLog()
        assert gateway.endpoint is not None and gateway.transport is not None
        mark = phone.mark()
        invite = OutgoingInvite(gateway.endpoint, account, f"sip:1002@127.0.0.1:{kam.port}",
                                sdp(free_port("udp")), listener=events)
        invite.start(reactor.seconds())
        self.assertIsInstance(await events.wait_for(lambda e: isinstance(e, (Answered, Failed))),
                              Answered)
        await phone.wait_event("CALL_ESTABLISHED", since=mark)
        dialog = invite.dialog
        assert dialog is not None
        self.assertEqual(len(dialog.route_set), 1)  # Kamailio stays in the path
        self.attack(attacker, gateway, "BYE", dialog)
        self.attack(attacker, gateway, "REFER", dialog, extra=f"Refer-To: <{PREMIUM}>\r\n")
        await attacker.barrier(gateway.port)
        self.assertEqual([e for e in events.events if is_final(e) or
                          isinstance(e, ReferReceived)], [])
        self.assertEqual(attacker.responses_to("BYE") + attacker.responses_to("REFER"), [])
        self.assertEqual(gateway.endpoint.stats.untrusted, 2)

        await phone.command("hangup")
        ended = await events.wait_for(is_final)
        self.assertEqual(ended, Ended("Normal call clearing", by_remote=True))

    @inline
    async def test_bye_from_a_stranger_does_nothing_on_a_direct_call(self) -> None:
        """baresip calls the gateway directly (no proxy, no route set): only its address —
        where the INVITE came from, its Contact — may end the call."""
        gateway, phone, _ = await self.gateway_and_phone(kamailio=False)
        attacker = RawSip(ATTACKER_HOST).listen(self)
        answerer = Answerer(gateway)
        assert gateway.endpoint is not None
        gateway.endpoint.handlers.append(answerer)
        mark = phone.mark()
        await phone.command("dial", f"sip:gw@127.0.0.1:{gateway.port}")
        self.assertIsInstance(
            await answerer.events.wait_for(lambda e: isinstance(e, (Confirmed, Failed))),
            Confirmed)
        await phone.wait_event("CALL_ESTABLISHED", since=mark)
        [session] = answerer.sessions
        dialog = session.dialog
        assert dialog is not None
        self.assertEqual(dialog.route_set, [])

        self.attack(attacker, gateway, "BYE", dialog)
        await attacker.barrier(gateway.port)
        self.assertFalse(session.terminated)
        self.assertEqual(attacker.responses_to("BYE"), [])

        await phone.command("hangup")
        ended = await answerer.events.wait_for(is_final)
        self.assertEqual(ended, Ended("Normal call clearing", by_remote=True))


# ------------------------------------------------------------------ 4. digest answered to anyone


class ScriptedProxy:
    """The account's "proxy" on 127.0.0.1: challenges the INVITE (407, realm ``wcsgw-test``),
    then answers the authorised one 200 with the callee's Contact on 127.0.0.2 and no
    Record-Route, so the dialog's requests go to the callee directly."""

    REALM = "wcsgw-test"

    def __init__(self, sock: RawSip, callee: RawSip) -> None:
        self.sock = sock
        self.callee = callee
        sock.reply = self.reply

    def reply(self, msg: Request | Response, addr: tuple[str, int]) -> None:
        if not isinstance(msg, Request) or msg.method != "INVITE":
            return
        if not msg.headers.get("Proxy-Authorization"):
            response = make_response(msg, 407, to_tag="proxy-tag")
            response.headers.add("Proxy-Authenticate",
                                 f'Digest realm="{self.REALM}", nonce="proxy-nonce", qop="auth"')
        else:
            response = make_response(msg, 200, to_tag="callee-tag")
            response.headers.add("Contact", f"<sip:1002@{self.callee.host}:{self.callee.port}>")
            response.headers.add("Content-Type", "application/sdp")
            response.body = sdp(free_port("udp"))
        self.sock.send(response, addr)


def challenging_callee(sock: RawSip) -> None:
    """The callee answers a BYE without credentials 401 in the proxy's realm; one with
    credentials 200 (the leak the test looks for)."""

    def reply(msg: Request | Response, addr: tuple[str, int]) -> None:
        if not isinstance(msg, Request) or msg.method != "BYE":
            return
        if credentials_in(msg):
            sock.send(make_response(msg, 200), addr)
            return
        response = make_response(msg, 401)
        response.headers.add("WWW-Authenticate",
                             f'Digest realm="{ScriptedProxy.REALM}", nonce="peer-nonce", '
                             'qop="auth"')
        sock.send(response, addr)

    sock.reply = reply


class DigestToPeerTests(unittest.TestCase):
    timeout = 30

    @inline
    async def test_a_callee_challenging_our_bye_gets_no_credentials(self) -> None:
        gateway = SipService(FAST)
        gateway.startService()
        self.addCleanup(gateway.stopService)
        callee = RawSip(ATTACKER_HOST).listen(self)
        challenging_callee(callee)
        proxy_sock = RawSip("127.0.0.1").listen(self)
        ScriptedProxy(proxy_sock, callee)
        account = SipAccount(login="1001", password="pass1001", domain="127.0.0.1",
                             port=proxy_sock.port, register=False)
        events = EventLog()
        assert gateway.endpoint is not None and gateway.transport is not None
        invite = OutgoingInvite(gateway.endpoint, account,
                                f"sip:1002@127.0.0.1:{proxy_sock.port}",
                                sdp(free_port("udp")), listener=events)
        invite.start(reactor.seconds())
        self.assertIsInstance(await events.wait_for(lambda e: isinstance(e, (Answered, Failed))),
                              Answered)
        # The proxy's challenge was answered: the INVITE it let through carried credentials.
        assert invite.invite is not None
        self.assertIn('realm="wcsgw-test"', invite.invite.headers.get("Proxy-Authorization"))
        ack = await callee.messages.wait_for(lambda m: isinstance(m, Request)
                                             and m.method == "ACK")
        self.assertEqual(credentials_in(ack), [])  # the ACK goes to the callee: no hash

        invite.hangup(reactor.seconds())
        ended = await events.wait_for(is_final)
        self.assertEqual(ended, Ended("Normal call clearing", by_remote=False))
        byes = [m for m in callee.messages.events if isinstance(m, Request) and m.method == "BYE"]
        self.assertGreaterEqual(len(byes), 1)
        self.assertEqual([credentials_in(m) for m in callee.messages.events
                          if isinstance(m, Request)], [[]] * (len(byes) + 1))
        self.assertEqual(len({m.cseq[0] for m in byes}), 1)  # never re-sent with credentials


# ------------------------------------------------------------------ 9. unsolicited INVITEs


class Listener:
    def __init__(self) -> None:
        self.statuses = EventLog()

    def session_status(self, status: str, sip_status: int | None, info: str) -> None:
        self.statuses(status)

    def call_status(self, call: dict[str, Any]) -> None:
        pass


class RecordedCall:
    """What the gateway's inbound factory builds here: the call is noted and refused 486, so
    the test needs no media — what counts is whether an INVITE became a call at all."""

    def __init__(self, *, invite: Any, call_id: str, **kwargs: Any) -> None:
        self.invite = invite
        self.call_id = call_id
        self.kwargs = kwargs

    def start(self) -> None:
        self.invite.reject(486, None, reactor.seconds())

    def hangup(self) -> None:
        pass

    def _on_sip_event(self, event: Any) -> None:
        pass


class UnsolicitedInviteTests(unittest.TestCase):
    timeout = 60

    @inline
    async def test_only_the_registrar_may_invite_a_sessions_contact(self) -> None:
        kam = Kamailio()
        self.addCleanup(kam.stop)
        await kam.start()
        sip = SipService(FAST)
        sip.startService()
        self.addCleanup(sip.stopService)
        gateway = CallGateway(sip, Policy(["127.0.0.1"]), lambda **kw: None)
        made = EventLog()

        def inbound(**kwargs: Any) -> RecordedCall:
            call = RecordedCall(**kwargs)
            made(call)
            return call

        gateway.inbound_factory = inbound
        assert sip.endpoint is not None
        sip.endpoint.handlers.append(InboundRouter(gateway, gateway.take_incoming))
        listener = Listener()
        gateway.open_session("s1", listener)
        self.addCleanup(gateway.close_session, "s1")
        account = SipAccount(login="1001", password="pass1001", domain="127.0.0.1",
                             port=kam.port)
        gateway.connect("s1", account, True)
        # Kamailio challenges the REGISTER (401): answered, the session is registered.
        await listener.statuses.wait_for(lambda s: s in ("REGISTERED", "FAILED",
                                                         "AUTHENTICATION_FAIL"))
        self.assertEqual(listener.statuses.events[-1], "REGISTERED")
        contact = gateway.sessions["s1"].contact_user
        assert contact is not None

        attacker = RawSip(ATTACKER_HOST).listen(self)
        text, branch = attacker.request("INVITE", f"sip:{contact}@127.0.0.1:{sip.port}",
                                        call_id=secrets.token_hex(8), from_tag="m1",
                                        to_tag=None, cseq=1)
        attacker.send(text, ("127.0.0.1", sip.port))
        refusal = await attacker.answer_to(branch)
        self.assertEqual(refusal.status, 403)
        self.assertEqual(made.events, [])

        # A phone calling the account through Kamailio reaches the session.
        phone = Baresip("1002", "pass1002", registrar_port=kam.port, answermode="manual")
        self.addCleanup(phone.stop)
        await phone.start()
        await phone.registered()
        mark = phone.mark()
        await phone.command("dial", f"sip:1001@127.0.0.1:{kam.port}")
        call = await made.wait_for(lambda c: True)
        self.assertEqual(call.kwargs["session_id"], "s1")
        closed = await phone.wait_event("CALL_CLOSED", since=mark)  # our 486
        self.assertIn("486", str(closed))
