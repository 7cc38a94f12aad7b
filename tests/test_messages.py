"""SIP MESSAGE (docs/contract.md sendMessage / message) without sockets: the sans-IO client
(wcsgw.sip.messaging) on a real endpoint driven by explicit instants, the front door, the
session routing and limits (wcsgw.calls.messages) and the JSON-RPC method
(wcsgw.api.messagemethods)."""

from __future__ import annotations

import json
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from wcsgw.api.jsonrpc import INVALID_PARAMS, Request as RpcRequest
from wcsgw.api.methods import SessionMethods
from wcsgw.calls.errors import CallError, Codes
from wcsgw.calls.messages import (
    MESSAGE_FAILED,
    RECEIVE_PER_MINUTE,
    SEND_PER_MINUTE,
    TOO_MANY_MESSAGES,
    Messages,
)
from wcsgw.calls.policy import Policy
from wcsgw.calls.resume import Relay
from wcsgw.calls.sessions import Session
from wcsgw.sip.account import SipAccount
from wcsgw.sip.digest import parse_authorization
from wcsgw.sip.endpoint import EndpointConfig, SipEndpoint
from wcsgw.sip.message import Request, Response
from wcsgw.sip.messaging import MAX_BODY, MessageResult, OutgoingMessage, incoming_refusal
from wcsgw.sip.parser import parse_message
from wcsgw.sip.target import Target

PROXY = Target("UDP", "192.0.2.7", 5060)
STRANGER = Target("UDP", "198.51.100.9", 5060)
CHALLENGE = 'Digest realm="example.com", nonce="{nonce}", qop="auth", algorithm=MD5'


def account() -> SipAccount:
    return SipAccount(login="1001", password="pass1001", domain="192.0.2.7")


def reply(request: Request, status: int, reason: str = "Reason", *extra: tuple[str, str]
          ) -> Response:
    headers = [(n, v) for n, v in request.headers if n in ("Via", "From", "Call-ID", "CSeq")]
    headers.append(("To", (request.headers.get("To") or "") + ";tag=far"))
    headers.extend(extra)
    return Response(status, reason, headers)


def challenge(request: Request, nonce: str, status: int = 407) -> Response:
    name = "Proxy-Authenticate" if status == 407 else "WWW-Authenticate"
    return reply(request, status, "Auth", (name, CHALLENGE.format(nonce=nonce)))


def incoming(body: bytes = b"hello", content_type: str = "text/plain",
             user: str = "1001-tok", extra: str = "") -> bytes:
    return (
        f"MESSAGE sip:{user}@127.0.0.1:5060 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bKmsg1;rport\r\n"
        "Max-Forwards: 69\r\n"
        "From: <sip:1002@192.0.2.7>;tag=f1\r\n"
        "To: <sip:1001@192.0.2.7>\r\n"
        "Call-ID: m1@192.0.2.7\r\n"
        "CSeq: 1 MESSAGE\r\n"
        f"Content-Type: {content_type}\r\n{extra}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


class OutgoingMessageTests(SynchronousTestCase):
    def test_request_is_from_the_aor_to_the_uri(self) -> None:
        message = OutgoingMessage(account(), "sip:1002@192.0.2.7", "héllo".encode(), "text/plain")
        request = message.request()
        self.assertEqual(request.method, "MESSAGE")
        self.assertEqual(request.uri, "sip:1002@192.0.2.7")
        self.assertEqual(str(request.from_.uri), "sip:1001@192.0.2.7")
        self.assertTrue(request.from_.tag)
        self.assertEqual(str(request.to.uri), "sip:1002@192.0.2.7")
        self.assertIsNone(request.to.tag)
        self.assertEqual(request.cseq, (1, "MESSAGE"))
        self.assertEqual(request.headers.get("Content-Type"), "text/plain;charset=UTF-8")
        self.assertEqual(request.body, "héllo".encode())
        self.assertEqual(message.target(), Target("UDP", "192.0.2.7", 5060))

    def test_refuses_a_type_or_size_it_would_not_deliver(self) -> None:
        with self.assertRaises(ValueError):
            OutgoingMessage(account(), "sip:1002@192.0.2.7", b"<b>x</b>", "text/html")
        with self.assertRaises(ValueError):
            OutgoingMessage(account(), "sip:1002@192.0.2.7", b"x" * (MAX_BODY + 1), "text/plain")

    def test_challenge_answered_with_the_accounts_credentials(self) -> None:
        message = OutgoingMessage(account(), "sip:1002@192.0.2.7", b"hi", "text/plain")
        first = message.request()
        second = message.response(challenge(first, "n1"))
        assert isinstance(second, Request)
        self.assertEqual(second.cseq, (2, "MESSAGE"))
        self.assertEqual(second.call_id, first.call_id)
        auth = parse_authorization(second.headers.get("Proxy-Authorization") or "")
        self.assertEqual(auth["username"], "1001")
        self.assertEqual(auth["realm"], "example.com")
        self.assertNotIn("pass1001", second.to_bytes().decode())
        self.assertIsNone(message.response(reply(second, 100, "Trying")))
        self.assertEqual(message.response(reply(second, 202, "Accepted")),
                         MessageResult(202, "Accepted"))

    def test_no_answer_is_408_and_a_transport_error_503_with_its_words(self) -> None:
        self.assertEqual(OutgoingMessage.failure("timeout"), MessageResult(408, "Request Timeout"))
        self.assertEqual(OutgoingMessage.failure("transport"),
                         MessageResult(503, "Service Unavailable (transport error)"))
        self.assertEqual(OutgoingMessage.failure("127.0.0.1:5999 unreachable").reason,
                         "Service Unavailable (127.0.0.1:5999 unreachable)")

    def test_a_refused_password_is_the_result_not_a_loop(self) -> None:
        message = OutgoingMessage(account(), "sip:1002@192.0.2.7", b"hi", "text/plain")
        first = message.request()
        second = message.response(challenge(first, "n1", 401))
        assert isinstance(second, Request)
        result = message.response(challenge(second, "n2", 401))
        self.assertEqual(result, MessageResult(401, "Auth"))
        self.assertFalse(MessageResult(401, "Auth").ok)


class IncomingRefusalTests(SynchronousTestCase):
    def parse(self, data: bytes) -> Request:
        request = parse_message(data)
        assert isinstance(request, Request)
        return request

    def test_text_and_json_pass(self) -> None:
        self.assertIsNone(incoming_refusal(self.parse(incoming())))
        self.assertIsNone(incoming_refusal(self.parse(
            incoming(b'{"a": 1}', "application/json"))))

    def test_refusals(self) -> None:
        self.assertEqual(incoming_refusal(self.parse(incoming(b"x" * (MAX_BODY + 1))))[0], 413)
        self.assertEqual(incoming_refusal(self.parse(incoming(b"<b>x</b>", "text/html")))[0], 415)
        self.assertEqual(incoming_refusal(self.parse(incoming(b"\xff\xfe")))[0], 400)
        self.assertEqual(incoming_refusal(self.parse(incoming(b"{", "application/json")))[0], 400)


class FakeSip:
    def __init__(self, endpoint: SipEndpoint) -> None:
        self.endpoint = endpoint


class Listener:
    def __init__(self) -> None:
        self.heard: list[tuple[str, Any]] = []
        self.replies: list[dict[str, Any]] = []

    def session_status(self, status: str, sip_status: int | None, info: str) -> None:
        self.heard.append(("sessionStatus", status))

    def call_status(self, call: Any) -> None:
        self.heard.append(("callStatus", call))

    def notify(self, method: str, params: Any) -> None:
        self.heard.append((method, params))

    def reply(self, frame: str) -> None:
        self.replies.append(json.loads(frame))


class FakeGateway:
    """What Messages and SessionMethods use of the CallGateway, around a real endpoint."""

    def __init__(self) -> None:
        self.now = 100.0
        self.endpoint = SipEndpoint(EndpointConfig(host="127.0.0.1", port=5060,
                                                   user_agent="wcsgw-test"))
        self.sip = FakeSip(self.endpoint)
        self.policy = Policy(["192.0.2.7"], None)
        self.listener = Listener()
        self.session = Session("s1", self.listener, account=account(), connected=True,
                               contact_user="1001-tok")
        self.sessions = {"s1": self.session}
        self.messages = Messages(self, lambda: self.now)
        self.endpoint.handlers.append(self.messages)

    def session_for_contact(self, user: str) -> Session | None:
        return self.session if user == self.session.contact_user else None

    def sent(self) -> list[Any]:
        return [parse_message(data) for data, _target in self.endpoint.take_outgoing()]


class SendTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.gw = FakeGateway()
        self.results: list[MessageResult] = []

    def send(self, to: str = "1002", body: str = "hi") -> None:
        self.gw.messages.send("s1", to, body).addCallback(self.results.append)

    def answer(self, request: Any, response: Response) -> None:
        self.gw.endpoint.receive_bytes(response.to_bytes(), PROXY, self.gw.now)

    def test_digest_then_200(self) -> None:
        self.send()
        [first] = self.gw.sent()
        self.assertEqual(first.uri, "sip:1002@192.0.2.7")
        self.answer(first, challenge(first, "n1"))
        [second] = self.gw.sent()
        self.assertIn("Proxy-Authorization", second.headers)
        self.assertEqual(self.results, [])
        self.answer(second, reply(second, 200, "OK"))
        self.assertEqual(self.results, [MessageResult(200, "OK")])

    def test_retransmitted_then_408(self) -> None:
        """Timer E retransmits over UDP, Timer F (64*T1) ends it as 408."""
        self.send()
        [first] = self.gw.sent()
        self.gw.endpoint.handle_timer(self.gw.now + 0.5)
        again = self.gw.sent()
        self.assertEqual([m.headers.get("Via") for m in again], [first.headers.get("Via")])
        self.assertEqual(self.results, [])
        self.gw.endpoint.handle_timer(self.gw.now + 32.5)
        self.assertEqual(self.results, [MessageResult(408, "Request Timeout")])

    def test_404_is_the_result(self) -> None:
        self.send()
        [first] = self.gw.sent()
        self.answer(first, reply(first, 404, "Not Found"))
        self.assertEqual(self.results, [MessageResult(404, "Not Found")])

    def test_disallowed_domain_refused_naming_to(self) -> None:
        with self.assertRaises(CallError) as caught:
            self.send("sip:1002@evil.example")
        self.assertEqual((caught.exception.code, caught.exception.field), (Codes.FORBIDDEN, "to"))
        self.assertEqual(self.gw.sent(), [])

    def test_no_account_no_messages(self) -> None:
        self.gw.session.account = None
        with self.assertRaises(CallError) as caught:
            self.send()
        self.assertEqual(caught.exception.code, Codes.FORBIDDEN)

    def test_rate_limited_per_session(self) -> None:
        for _ in range(SEND_PER_MINUTE):
            self.send()
        with self.assertRaises(CallError) as caught:
            self.send()
        self.assertEqual(caught.exception.code, TOO_MANY_MESSAGES)
        self.gw.now += 61
        self.send()


class ReceiveTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.gw = FakeGateway()

    def deliver(self, data: bytes, source: Target = PROXY) -> int:
        self.gw.endpoint.receive_bytes(data, source, self.gw.now)
        [response] = self.gw.sent()
        assert isinstance(response, Response)
        return response.status

    def messages(self) -> list[Any]:
        return [params for method, params in self.gw.listener.heard if method == "message"]

    def test_delivered_as_a_notification(self) -> None:
        self.assertEqual(self.deliver(incoming("<b>hi</b> ☺".encode())), 200)
        self.assertEqual(self.messages(), [{"from": "sip:1002@192.0.2.7",
                                            "to": "sip:1001@192.0.2.7",
                                            "body": "<b>hi</b> ☺", "contentType": "text/plain"}])

    def test_unknown_contact_404(self) -> None:
        self.assertEqual(self.deliver(incoming(user="nobody")), 404)
        self.assertEqual(self.messages(), [])

    def test_not_from_the_accounts_server_403(self) -> None:
        self.assertEqual(self.deliver(incoming(), STRANGER), 403)
        self.assertEqual(self.messages(), [])

    def test_session_not_connected_480(self) -> None:
        self.gw.session.connected = False
        self.assertEqual(self.deliver(incoming()), 480)

    def test_html_refused_at_the_front_door(self) -> None:
        self.assertEqual(self.deliver(incoming(b"<b>x</b>", "text/html")), 415)
        self.assertEqual(self.messages(), [])

    def test_too_big_413(self) -> None:
        self.assertEqual(self.deliver(incoming(b"x" * (MAX_BODY + 1))), 413)

    def test_flood_486(self) -> None:
        for n in range(RECEIVE_PER_MINUTE):
            branch = f"b{n}".encode()
            data = incoming().replace(b"z9hG4bKmsg1", b"z9hG4bKmsg" + branch)
            self.assertEqual(self.deliver(data), 200)
        self.assertEqual(self.deliver(incoming().replace(b"z9hG4bKmsg1", b"z9hG4bKlast")), 486)
        self.assertEqual(len(self.messages()), RECEIVE_PER_MINUTE)

    def test_queued_for_a_session_whose_socket_dropped(self) -> None:
        """A detached session (its WebSocket gone, resumable) gets it on resume: its relay
        queues the notification with its others."""
        relay = Relay(self.gw.listener, session_id="s1")
        self.gw.session.listener = relay
        relay.detach()
        self.assertEqual(self.deliver(incoming(b"while away")), 200)
        self.assertEqual(self.messages(), [])
        relay.attach(self.gw.listener)
        relay.flush()
        self.assertEqual([m["body"] for m in self.messages()], ["while away"])

    def test_without_a_handler_404(self) -> None:
        self.gw.endpoint.handlers.clear()
        self.assertEqual(self.deliver(incoming()), 404)


class SendMessageMethodTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.gw = FakeGateway()
        self.methods = SessionMethods(self.gw, "s1")  # type: ignore[arg-type]

    def rpc(self, params: dict[str, Any]) -> dict[str, Any] | None:
        frame = self.methods.handle(RpcRequest("sendMessage", params, 7))
        return None if frame is None else json.loads(frame)

    def test_reply_waits_for_the_sip_answer(self) -> None:
        self.assertIsNone(self.rpc({"to": "1002", "body": "hi"}))
        [first] = self.gw.sent()
        self.gw.endpoint.receive_bytes(reply(first, 200, "OK").to_bytes(), PROXY, self.gw.now)
        self.assertEqual(self.gw.listener.replies, [{"jsonrpc": "2.0", "id": 7, "result": {}}])

    def test_failure_names_the_sip_status(self) -> None:
        self.rpc({"to": "1002", "body": "hi"})
        [first] = self.gw.sent()
        self.gw.endpoint.receive_bytes(reply(first, 404, "Not Found").to_bytes(), PROXY,
                                       self.gw.now)
        [answer] = self.gw.listener.replies
        self.assertEqual(answer["error"]["code"], MESSAGE_FAILED)
        self.assertIn("404 Not Found", answer["error"]["message"])

    def test_bad_params_name_the_field(self) -> None:
        for params, field in (({"body": "x"}, "to"), ({"to": "1002"}, "body"),
                              ({"to": "1002", "body": "x", "contentType": "text/html"},
                               "contentType"),
                              ({"to": "1002", "body": "é" * (MAX_BODY // 2 + 1)}, "body"),
                              ({"to": "10\r\n02", "body": "x"}, "to")):
            with self.subTest(field=field):
                answer = self.rpc(params)
                assert answer is not None
                self.assertEqual(answer["error"]["code"], INVALID_PARAMS)
                self.assertEqual(answer["error"]["data"], {"field": field})
        self.assertEqual(self.gw.sent(), [])

    def test_policy_refusal(self) -> None:
        answer = self.rpc({"to": "sip:1002@evil.example", "body": "x"})
        assert answer is not None
        self.assertEqual(answer["error"]["code"], Codes.FORBIDDEN)
        self.assertEqual(answer["error"]["data"], {"field": "to"})
