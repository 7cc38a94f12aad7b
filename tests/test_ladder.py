"""The SIP ladder: the endpoint's capture hook, and wcsgw.calls.ladders (mapping, arrows, bounds).

The capture runs on a ``task.Clock`` transport with no sockets (tests.test_sip_transport_flush's
FakeReactor); the ladders are fed messages and stand-in calls directly.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests.test_sip_transport_flush import PEER, FakeReactor, incoming_options, options_request
from wcsgw.calls.accounts import AccountBook
from wcsgw.calls.errors import CallError, Codes
from wcsgw.calls.ladders import Ladders, install_ladders
from wcsgw.calls.registry import CallRegistry
from wcsgw.calls.resume import Relay
from wcsgw.calls.sessions import Session
from wcsgw.sip.account import SipAccount
from wcsgw.sip.capture import heading
from wcsgw.sip.endpoint import EndpointConfig, SipEndpoint
from wcsgw.sip.target import Target
from wcsgw.sip.transport import SipTransport

SIP = Target("UDP", "192.0.2.9", 5060)


def message(first: str, call_id: str, cseq: str, extra: str = "") -> bytes:
    return (f"{first}\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\nCall-ID: {call_id}\r\n"
            f"CSeq: {cseq}\r\n{extra}Content-Length: 0\r\n\r\n").encode()


INVITE = message("INVITE sip:1002@example.com SIP/2.0", "dlg-1", "1 INVITE")
CHALLENGED = message("INVITE sip:1002@example.com SIP/2.0", "dlg-1", "2 INVITE",
                     'Proxy-Authorization: Digest username="1001", realm="example.com", '
                     'nonce="NONCE1", uri="sip:1002@example.com", response="DIGESTRESPONSE"\r\n')
TRYING = message("SIP/2.0 100 Trying", "dlg-1", "1 INVITE")
RINGING = message("SIP/2.0 180 Ringing", "dlg-1", "2 INVITE")
OK = message("SIP/2.0 200 OK", "dlg-1", "2 INVITE")
BYE = message("BYE sip:1002@192.0.2.9 SIP/2.0", "dlg-1", "3 BYE")
BYE_OK = message("SIP/2.0 200 OK", "dlg-1", "3 BYE")


class Invite:
    def __init__(self, call_id: str) -> None:
        self.call_id = call_id


class FakeCall:
    """What the ladders read of a call: ids, its SIP session's Call-ID, its two callbacks."""

    def __init__(self, call_id: str = "c1", session_id: str | None = "s1", incoming: bool = False,
                 sip_id: str | None = None) -> None:
        self.call_id, self.session_id, self.incoming = call_id, session_id, incoming
        self.account = object()
        self.invite = Invite(sip_id) if sip_id else None
        self.statuses: list[dict[str, Any]] = []
        self.notified: list[tuple[str, dict[str, Any]]] = []
        self.on_status = self.statuses.append
        self.notify = lambda method, params: self.notified.append((method, params))


class CaptureHookTests(SynchronousTestCase):
    """Every message in and out reaches ``endpoint.capture`` with its peer and the time."""

    def setUp(self) -> None:
        self.reactor = FakeReactor()
        self.reactor.advance(1000.0)
        self.transport = SipTransport(self.reactor, "127.0.0.1", 0)  # type: ignore[arg-type]
        self.transport.bind()
        self.endpoint = SipEndpoint(EndpointConfig(port=5099))
        self.transport.attach(self.endpoint)
        self.seen: list[tuple[str, bytes, Target, float]] = []
        self.endpoint.capture = lambda *args: self.seen.append(args)

    def test_received_and_answered(self) -> None:
        data = incoming_options("z9hG4bKcap1")
        self.transport.received(data, PEER)
        self.assertEqual([(d, p, t) for d, _b, p, t in self.seen],
                         [("received", PEER, 1000.0), ("sent", PEER, 1000.0)])
        self.assertEqual(self.seen[0][1], data)
        self.assertEqual(heading(self.seen[1][1]).label, "200")
        self.assertEqual(self.reactor.written[0][0], self.seen[1][1])  # what went out

    def test_retransmissions_are_captured_as_sent(self) -> None:
        self.endpoint.send_request(options_request(), PEER, self.reactor.seconds(),
                                   lambda r, now: None)
        self.reactor.advance(0.5)  # Timer E
        self.assertEqual([(d, t) for d, _b, _p, t in self.seen],
                         [("sent", 1000.0), ("sent", 1000.5)])
        self.assertEqual(self.seen[0][1], self.seen[1][1])

    def test_keepalives_are_not_messages(self) -> None:
        self.transport.received(b"\r\n\r\n", PEER)
        self.assertEqual(self.seen, [])


class LadderTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.now = 5000.0
        self.attached = True
        self.ladders = Ladders(clock=lambda: self.now, attached=lambda sid: self.attached)

    def labels(self, call_id: str = "c1", session_id: str | None = "s1") -> list[str]:
        return [e["label"] for e in self.ladders.entries(session_id, call_id)]

    def test_outgoing_call_mapped_by_its_sessions_call_id(self) -> None:
        call = FakeCall()
        self.ladders.browser_request("s1", "call", {"callee": "1002", "sdp": "v=0 SECRET-SDP",
                                                    "sipHeaders": {"X-T": "tok"}})
        self.ladders.call_started(call)
        call.invite = Invite("dlg-1")  # its INVITE is made as it starts
        self.ladders.capture("sent", INVITE, SIP, 5000.1)
        self.ladders.capture("received", TRYING, SIP, 5000.2)
        self.ladders.capture("sent", CHALLENGED, SIP, 5000.3)
        self.ladders.capture("received", RINGING, SIP, 5000.4)
        self.ladders.capture("received", OK, SIP, 5000.5)
        self.ladders.capture("received", OK, SIP, 5001.0)  # sent again: no ACK came yet
        self.ladders.capture("sent", message("REGISTER sip:example.com SIP/2.0", "dlg-1",
                                             "4 REGISTER"), SIP, 5001.1)  # no call's
        self.ladders.capture("received", message("INVITE sip:x SIP/2.0", "other", "1 INVITE"),
                             SIP, 5001.2)  # another dialog
        entries = self.ladders.entries("s1", "c1")
        self.assertEqual([e["label"] for e in entries],
                         ["call", "INVITE", "100", "INVITE", "180", "200", "200"])
        self.assertEqual([(e["from"], e["to"]) for e in entries[:3]],
                         [("browser", "gateway"), ("gateway", "sip"), ("sip", "gateway")])
        self.assertEqual([e["retransmission"] for e in entries],
                         [False] * 6 + [True])
        self.assertEqual([e["seq"] for e in entries], list(range(7)))
        self.assertEqual(entries[1]["time"], 5000100)
        self.assertEqual(entries[4]["summary"], "SIP/2.0 180 Ringing")
        self.assertIn("Call-ID: dlg-1", entries[1]["message"])
        self.assertNotIn("DIGESTRESPONSE", entries[3]["message"])
        self.assertNotIn("NONCE1", entries[3]["message"])
        self.assertIn('username="1001"', entries[3]["message"])
        shown = json.loads(entries[0]["message"])
        self.assertEqual(shown, {"callee": "1002"})  # no SDP, no headers
        self.assertEqual(call.notified[0][1]["entry"]["label"], "call")  # live too

    def test_live_entries_go_to_the_session_only_while_attached(self) -> None:
        call = FakeCall(sip_id="dlg-1")
        self.ladders.call_started(call)
        self.ladders.capture("sent", INVITE, SIP, 5000.1)
        self.attached = False
        self.ladders.capture("received", TRYING, SIP, 5000.2)
        [(method, params)] = call.notified
        self.assertEqual(method, "sipLadder")
        self.assertEqual(params["callId"], "c1")
        self.assertEqual(params["entry"]["label"], "INVITE")
        self.assertEqual(self.labels(), ["INVITE", "100"])  # kept all the same

    def test_incoming_invite_waits_for_its_call(self) -> None:
        self.ladders.capture("received", INVITE, SIP, 5000.0)
        call = FakeCall(incoming=True, sip_id="dlg-1")
        self.ladders.browser_request("s1", "call", {"callee": "x"})  # not this call's
        self.ladders.call_started(call)
        call.notify("incomingCall", {"callId": "c1", "caller": "1001", "sdp": "v=0"})
        call.on_status({"callId": "c1", "status": "RING"})
        self.ladders.capture("sent", RINGING, SIP, 5000.1)
        self.ladders.browser_request("s1", "answer", {"callId": "c1", "sdp": "v=0"})
        self.ladders.browser_request("s2", "hangup", {"callId": "c1"})  # another session's
        self.assertEqual(self.labels(), ["INVITE", "incomingCall", "callStatus RING", "180",
                                         "answer"])
        entries = self.ladders.entries(None, "c1")
        self.assertEqual((entries[1]["from"], entries[1]["to"]), ("gateway", "browser"))
        self.assertEqual((entries[4]["from"], entries[4]["to"]), ("browser", "gateway"))
        # the call's own callbacks still ran; the arrows' live entries went beside them
        self.assertEqual(call.statuses, [{"callId": "c1", "status": "RING"}])
        self.assertEqual([m for m, _p in call.notified].count("incomingCall"), 1)
        self.assertEqual([m for m, _p in call.notified].count("sipLadder"), 5)

    def test_transfer_new_dialog_and_late_messages_after_the_end(self) -> None:
        call = FakeCall(sip_id="dlg-1")
        self.ladders.call_started(call)
        self.ladders.capture("sent", INVITE, SIP, 5000.0)
        # REFER followed: a new INVITE, a new Call-ID, the call's own once it is answered
        self.ladders.capture("sent", message("INVITE sip:1003@x SIP/2.0", "dlg-2", "1 INVITE"),
                             SIP, 5001.0)
        self.ladders.capture("received", message("SIP/2.0 200 OK", "dlg-2", "1 INVITE"),
                             SIP, 5001.1)
        self.assertEqual(self.labels(), ["INVITE"])  # not the call's yet: waiting
        call.invite = Invite("dlg-2")
        self.ladders.capture("sent", message("ACK sip:1003@x SIP/2.0", "dlg-2", "1 ACK"),
                             SIP, 5001.2)  # our request: found, what waited filed first
        self.ladders.capture("sent", BYE, SIP, 5002.0)  # the old dialog still maps
        self.ladders.call_ended(call)
        self.ladders.capture("received", BYE_OK, SIP, 5002.1)  # the BYE's answer, after
        self.assertEqual(self.labels(), ["INVITE", "INVITE", "200", "ACK", "BYE", "200"])
        self.assertEqual([e["time"] for e in self.ladders.entries("s1", "c1")][1:4],
                         [5001000, 5001100, 5001200])

    def test_strangers_messages_never_scan_the_calls(self) -> None:
        call = FakeCall(sip_id="dlg-1")
        self.ladders.call_started(call)
        looked: list[str] = []
        find = self.ladders._find
        self.ladders._find = lambda sip_id: looked.append(sip_id) or find(sip_id)  # type: ignore
        for n in range(200):  # a flood of INVITEs, and our answers to them
            self.ladders.capture("received", message("INVITE sip:x SIP/2.0", f"flood-{n}",
                                                     "1 INVITE"), SIP, 5000.0)
            self.ladders.capture("sent", message("SIP/2.0 403 Forbidden", f"flood-{n}",
                                                 "1 INVITE"), SIP, 5000.0)
        self.assertEqual(looked, [])
        self.assertLessEqual(len(self.ladders._pending), 64)
        self.assertEqual(self.labels(), [])

    def test_bounds_keep_head_and_latest(self) -> None:
        ladders = Ladders(per_call=10, head=6)
        ladders.call_started(FakeCall(sip_id="dlg-1"))
        for n in range(25):
            ladders.capture("sent", message("INFO sip:x SIP/2.0", "dlg-1", f"{n} INFO"),
                            SIP, 5000.0 + n)
        seqs = [e["seq"] for e in ladders.entries("s1", "c1")]
        self.assertEqual(seqs, [0, 1, 2, 3, 4, 5, 21, 22, 23, 24])

    def test_text_budget(self) -> None:
        ladders = Ladders()
        ladders.call_started(FakeCall(sip_id="dlg-1"))
        big = message("MESSAGE sip:x SIP/2.0", "dlg-1", "1 INFO", "X-Pad: " + "p" * 7000 + "\r\n")
        for _ in range(30):
            ladders.capture("sent", big, SIP, 5000.0)
        entries = ladders.entries("s1", "c1")
        self.assertEqual(len(entries), 30)
        total = sum(len(e["message"]) for e in entries)
        self.assertLessEqual(total, 128 * 1024)
        self.assertIn("not kept", entries[-1]["message"])

    def test_ended_ladders_kept_then_forgotten(self) -> None:
        ladders = Ladders(keep_ended=2)
        calls = [FakeCall(call_id=f"c{n}", sip_id=f"dlg-{n}") for n in range(3)]
        for call in calls:
            ladders.call_started(call)
            ladders.capture("sent", message("INVITE sip:x SIP/2.0", call.invite.call_id,
                                            "1 INVITE"), SIP, 5000.0)
            ladders.call_ended(call)
        self.assertEqual(len(ladders.entries("s1", "c2")), 1)
        self.assertEqual(len(ladders.entries(None, "c1")), 1)
        with self.assertRaises(CallError) as caught:
            ladders.entries("s1", "c0")
        self.assertEqual((caught.exception.code, caught.exception.field),
                         (Codes.UNKNOWN_CALL, "callId"))
        # its dialog is forgotten too: a late message of it files nowhere
        ladders.capture("received", message("SIP/2.0 200 OK", "dlg-0", "2 BYE"), SIP, 5003.0)
        self.assertEqual(ladders._by_sip.get("dlg-0"), None)

    def test_call_requests_that_started_no_call_are_forgotten(self) -> None:
        for n in range(300):  # refused calls: nothing ever takes their arrow
            self.ladders.browser_request(f"s{n}", "call", {"callee": "x"})
        self.assertEqual(len(self.ladders._asked), 300)  # all recent: kept
        self.now += 31.0
        self.ladders.browser_request("late", "call", {"callee": "x"})
        self.assertEqual(list(self.ladders._asked), ["late"])
        call = FakeCall(session_id="s1", sip_id="dlg-1")
        self.ladders.call_started(call)
        self.assertEqual(self.labels(), [])  # s1's old request is not this call's

    def test_a_call_without_a_browser_has_no_browser_arrows(self) -> None:
        call = FakeCall(session_id=None, sip_id="dlg-1")
        self.ladders.call_started(call)
        call.on_status({"callId": "c1", "status": "ESTABLISHED"})
        self.ladders.capture("sent", INVITE, SIP, 5000.0)
        self.assertEqual(self.labels(session_id=None), ["INVITE"])
        self.assertEqual(call.statuses, [{"callId": "c1", "status": "ESTABLISHED"}])
        self.assertEqual(call.notified, [])  # nobody to send live entries to

    def test_scoped_to_the_session(self) -> None:
        self.ladders.call_started(FakeCall(sip_id="dlg-1"))
        with self.assertRaises(CallError):
            self.ladders.entries("s2", "c1")
        self.assertEqual(self.ladders.entries(None, "c1"), [])

    def test_server_held_account_hides_the_username(self) -> None:
        ladders = Ladders(held=lambda call: True)
        ladders.call_started(FakeCall(sip_id="dlg-1"))
        ladders.capture("sent", CHALLENGED, SIP, 5000.0)
        [entry] = ladders.entries("s1", "c1")
        self.assertNotIn("1001", entry["message"])
        self.assertNotIn("DIGESTRESPONSE", entry["message"])

    def test_garbage_never_raises(self) -> None:
        self.ladders.call_started(FakeCall(sip_id="dlg-1"))
        for data in (b"", b"\xff\xfe\x00", b"SIP/2.0 abc\r\n", b"INVITE\r\nCall-ID: dlg-1\r\n",
                     b"Call-ID:\r\n\r\n"):
            self.ladders.capture("received", data, SIP, 5000.0)
        self.assertEqual(self.labels(), ["INVITE"])
        self.ladders.browser_request("s1", "hangup", ["not", "an", "object"])


class InstallTests(SynchronousTestCase):
    """What the service wires: the registry's watcher, the SIP service's capture, a
    server-held account's username hidden, live entries only to an attached session."""

    def setUp(self) -> None:
        self.trunk = SipAccount(login="trunk-login", domain="example.com", password="x")
        self.socket = SimpleNamespace(notify=lambda method, params: None)
        self.relay = Relay(self.socket, session_id="s1")
        self.gateway = SimpleNamespace(
            sessions={"s1": Session("s1", self.relay, relay=self.relay)},
            accounts=AccountBook([("trunk", self.trunk)]), registry=CallRegistry(),
            ladders=None)
        self.sip = SimpleNamespace(capture=None)
        self.ladders = install_ladders(self.gateway, self.sip)

    def test_wired(self) -> None:
        self.assertIs(self.gateway.ladders, self.ladders)
        self.assertEqual(self.sip.capture, self.ladders.capture)
        self.assertIn(self.ladders, self.gateway.registry.watchers)

    def test_server_held_account_and_attachment(self) -> None:
        held, own = FakeCall(call_id="held", sip_id="dlg-1"), FakeCall(call_id="own", sip_id="dlg-2")
        held.account, own.account = self.trunk, SipAccount(login="1001", domain="example.com")
        self.gateway.registry.add(held)
        self.gateway.registry.add(own)
        for sip_id in ("dlg-1", "dlg-2"):
            self.ladders.capture("sent", CHALLENGED.replace(b"dlg-1", sip_id.encode()), SIP,
                                 5000.0)
        [hidden] = self.ladders.entries("s1", "held")
        [shown] = self.ladders.entries("s1", "own")
        self.assertNotIn('username="1001"', hidden["message"])
        self.assertIn('username="1001"', shown["message"])
        self.assertEqual(len(held.notified), 1)  # the session's socket is there
        self.relay.socket = None  # detached: kept, not sent (nor queued for the resume)
        self.ladders.capture("received", TRYING, SIP, 5000.1)
        self.assertEqual(len(held.notified), 1)
        self.assertEqual(len(self.ladders.entries("s1", "held")), 2)
