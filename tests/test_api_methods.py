"""The session's JSON-RPC methods (wcsgw.api.methods) against a fake gateway: param validation
naming the field, mapping to CallGateway, CallError -> JSON-RPC error, and no password in logs."""

from __future__ import annotations

import json
from typing import Any

from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial import unittest

from tests.test_api_fakes import FakeGateway, RecordingListener
from wcsgw.api import jsonrpc
from wcsgw.api.jsonrpc import Request
from wcsgw.api.methods import METHODS, SessionMethods
from wcsgw.calls.gateway import CallError, Codes

SESSION = "s-1"
OFFER = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
SECRET = "s3cr3t-Pa55"


class MethodsTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self.gateway = FakeGateway()
        self.listener = RecordingListener()
        self.gateway.open_session(SESSION, self.listener)
        self.methods = SessionMethods(self.gateway, SESSION)
        self._next_id = 0

    def rpc(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self._next_id += 1
        reply = self.methods.handle(Request(method, params or {}, self._next_id))
        assert reply is not None
        message = json.loads(reply)
        self.assertEqual(message["id"], self._next_id)
        return message

    def assertResult(self, message: dict[str, Any]) -> Any:
        self.assertNotIn("error", message, message)
        return message["result"]

    def assertError(self, message: dict[str, Any], code: int, field: str | None = None) -> dict:
        self.assertIn("error", message, message)
        error = message["error"]
        self.assertEqual(error["code"], code, error)
        if field is not None:
            self.assertEqual(error.get("data", {}).get("field"), field, error)
        self.assertTrue(error["message"])
        return error

    def gateway_calls(self, name: str) -> list[tuple]:
        return [e for e in self.gateway.events.events if e[0] == name]


class ConnectTests(MethodsTestCase):
    def test_test_lines_connect_passes_no_account(self) -> None:
        result = self.assertResult(self.rpc("connect", {"sipDomain": "", "sipLogin": ""}))
        self.assertEqual(result, {"sessionId": SESSION, "authToken": "token-of-s-1",
                                  "resumeSeconds": 0})
        self.assertEqual(self.gateway_calls("connect"), [("connect", SESSION, None, False)])
        self.assertEqual(self.listener.heard, [("sessionStatus", ("ESTABLISHED", None, ""))])

    def test_no_params_at_all_is_the_test_lines(self) -> None:
        self.assertResult(self.rpc("connect"))
        self.assertIsNone(self.gateway_calls("connect")[0][2])

    def test_account_fields_map_to_sip_account(self) -> None:
        self.assertResult(self.rpc("connect", {
            "sipLogin": "1001", "sipAuthenticationName": "acme-1001", "sipPassword": SECRET,
            "sipDomain": "pbx.example.com", "sipOutboundProxy": "10.0.0.5", "sipPort": 5070,
            "sipTransport": "TCP", "sipRegisterRequired": True, "appKey": "defaultApp",
            "custom": {"a": 1}, "mediaProviders": ["WebRTC"],  # extra WCS field: ignored
        }))
        (_, session, account, register), = self.gateway_calls("connect")
        self.assertEqual(session, SESSION)
        self.assertTrue(register)
        self.assertEqual(
            (account.login, account.auth_name, account.password, account.domain,
             account.outbound_proxy, account.port, account.transport, account.register),
            ("1001", "acme-1001", SECRET, "pbx.example.com", "10.0.0.5", 5070, "tcp", True),
        )
        self.assertEqual([h[1][0] for h in self.listener.heard], ["ESTABLISHED", "REGISTERED"])

    def test_defaults(self) -> None:
        self.assertResult(self.rpc("connect", {"sipLogin": "1001", "sipDomain": "pbx.example.com"}))
        account = self.gateway_calls("connect")[0][2]
        self.assertEqual((account.auth_name, account.password, account.outbound_proxy, account.port,
                          account.transport), ("1001", "", None, 5060, "udp"))
        self.assertTrue(self.gateway_calls("connect")[0][3])  # register by default

    def test_port_as_form_text(self) -> None:
        self.assertResult(self.rpc("connect", {"sipLogin": "a", "sipDomain": "d.example", "sipPort": "5080"}))
        self.assertEqual(self.gateway_calls("connect")[0][2].port, 5080)

    def test_empty_port_text_is_the_default(self) -> None:
        self.assertResult(self.rpc("connect", {"sipLogin": "a", "sipDomain": "d.example", "sipPort": ""}))
        self.assertEqual(self.gateway_calls("connect")[0][2].port, 5060)

    def test_register_false(self) -> None:
        self.assertResult(self.rpc("connect", {"sipLogin": "a", "sipDomain": "d.example",
                                               "sipRegisterRequired": False}))
        self.assertFalse(self.gateway_calls("connect")[0][3])
        self.assertEqual([h[1][0] for h in self.listener.heard], ["ESTABLISHED"])

    def test_bad_params_name_the_field(self) -> None:
        cases = [
            ({"sipDomain": "pbx.example.com"}, "sipLogin"),  # login required with a domain
            ({"sipDomain": "pbx.example.com", "sipLogin": "  "}, "sipLogin"),
            ({"sipDomain": 5}, "sipDomain"),
            ({"sipDomain": "bad domain!"}, "sipDomain"),
            ({"sipDomain": "pbx.example.com:5070", "sipLogin": "a"}, "sipDomain"),
            ({"sipDomain": "10.0.0.1:5070", "sipLogin": "a"}, "sipDomain"),
            ({"sipDomain": "[pbx.example.com]", "sipLogin": "a"}, "sipDomain"),
            ({"sipDomain": "d.example", "sipLogin": "a\r\nVia: x"}, "sipLogin"),
            ({"sipDomain": "d.example", "sipLogin": "a", "sipPassword": 1234}, "sipPassword"),
            ({"sipDomain": "d.example", "sipLogin": "a", "sipAuthenticationName": ["x"]}, "sipAuthenticationName"),
            ({"sipDomain": "d.example", "sipLogin": "a", "sipOutboundProxy": "a b"}, "sipOutboundProxy"),
            ({"sipDomain": "d.example", "sipLogin": "a", "sipPort": 0}, "sipPort"),
            ({"sipDomain": "d.example", "sipLogin": "a", "sipPort": 70000}, "sipPort"),
            ({"sipDomain": "d.example", "sipLogin": "a", "sipPort": "50x"}, "sipPort"),
            ({"sipDomain": "d.example", "sipLogin": "a", "sipPort": True}, "sipPort"),
            ({"sipDomain": "d.example", "sipLogin": "a", "sipPort": 5060.5}, "sipPort"),
            ({"sipDomain": "d.example", "sipLogin": "a", "sipTransport": "sctp"}, "sipTransport"),
            ({"sipDomain": "d.example", "sipLogin": "a", "sipRegisterRequired": "true"}, "sipRegisterRequired"),
            ({"appKey": 1}, "appKey"),
            ({"custom": "x"}, "custom"),
            ({"sipDomain": "d.example", "sipLogin": "x" * 300}, "sipLogin"),
        ]
        for params, field in cases:
            with self.subTest(params=params):
                error = self.assertError(self.rpc("connect", params), jsonrpc.INVALID_PARAMS, field)
                self.assertTrue(error["message"].startswith("Invalid params: " + field), error)
        self.assertEqual(self.gateway_calls("connect"), [])  # none reached the gateway

    def test_port_in_domain_says_where_the_port_goes(self) -> None:
        error = self.assertError(self.rpc("connect", {"sipLogin": "a", "sipDomain": "pbx.example.com:5070"}),
                                 jsonrpc.INVALID_PARAMS, "sipDomain")
        self.assertIn("sipPort", error["message"])

    def test_ipv6_domain(self) -> None:
        self.assertResult(self.rpc("connect", {"sipLogin": "a", "sipDomain": "[2001:db8::1]"}))
        self.assertEqual(self.gateway_calls("connect")[0][2].domain, "2001:db8::1")

    def test_call_error_maps_to_its_code_message_and_field(self) -> None:
        self.gateway.fail["connect"] = CallError(Codes.FORBIDDEN, "pbx.evil.example is not an allowed domain", "sipDomain")
        error = self.assertError(
            self.rpc("connect", {"sipLogin": "a", "sipDomain": "pbx.evil.example"}), Codes.FORBIDDEN, "sipDomain")
        self.assertEqual(error["message"], "pbx.evil.example is not an allowed domain")

    def test_call_error_without_field_has_no_data(self) -> None:
        self.gateway.fail["connect"] = CallError(Codes.BAD_STATE, "already connected; disconnect first")
        error = self.assertError(self.rpc("connect"), Codes.BAD_STATE)
        self.assertNotIn("data", error)


class NoPasswordInLogsTests(MethodsTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.log_events: list[dict] = []
        globalLogPublisher.addObserver(self.log_events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.log_events.append)

    def assertNoSecret(self) -> None:
        self.assertTrue(self.log_events, "the test should have produced log events")
        for event in self.log_events:
            text = (formatEvent(event) or "") + repr(event)
            failure = event.get("log_failure")
            if failure is not None:
                text += failure.getTraceback()
            self.assertNotIn(SECRET, text)

    def test_connect_logs_without_password(self) -> None:
        self.assertResult(self.rpc("connect", {"sipLogin": "1001", "sipPassword": SECRET,
                                               "sipDomain": "pbx.example.com"}))
        self.assertTrue(any("sip:1001@pbx.example.com" in formatEvent(e) for e in self.log_events))
        self.assertNoSecret()

    def test_refused_connect_logs_without_password(self) -> None:
        self.gateway.fail["connect"] = CallError(Codes.FORBIDDEN, "not allowed", "sipDomain")
        self.assertError(self.rpc("connect", {"sipLogin": "1001", "sipPassword": SECRET,
                                              "sipDomain": "pbx.example.com"}), Codes.FORBIDDEN)
        self.assertNoSecret()

    def test_gateway_crash_logs_without_password(self) -> None:
        self.gateway.fail["connect"] = RuntimeError("boom")
        error = self.assertError(self.rpc("connect", {"sipLogin": "1001", "sipPassword": SECRET,
                                                      "sipDomain": "pbx.example.com"}),
                                 jsonrpc.INTERNAL_ERROR)
        self.assertEqual(error["message"], "Internal error")
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertNoSecret()

    def test_invalid_params_reply_does_not_echo_password(self) -> None:
        reply = self.methods.handle(Request("connect", {"sipLogin": "1001", "sipPassword": SECRET,
                                                        "sipDomain": "bad domain"}, 1))
        self.assertNotIn(SECRET, reply)


class CallTests(MethodsTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.assertResult(self.rpc("connect"))
        self.listener.heard.clear()

    def call_params(self, **overrides: Any) -> dict[str, Any]:
        params = {"callee": "echo", "sdp": OFFER, "hasAudio": True, "hasVideo": False}
        params.update(overrides)
        return params

    def test_call_maps_every_param(self) -> None:
        result = self.assertResult(self.rpc("call", self.call_params(
            callId="c-1", visibleName="Alice", sipHeaders={"X-Tenant": "acme"})))
        self.assertEqual(result, {"callId": "c-1"})
        (_, session, kwargs), = self.gateway_calls("call")
        self.assertEqual(session, SESSION)
        self.assertEqual(kwargs, {"call_id": "c-1", "callee": "echo", "visible_name": "Alice",
                                  "has_audio": True, "has_video": False, "sdp": OFFER,
                                  "sip_headers": {"X-Tenant": "acme"}})
        self.assertEqual(self.listener.heard[0][1]["status"], "NEW")

    def test_gateway_chooses_the_call_id_when_absent(self) -> None:
        result = self.assertResult(self.rpc("call", {"callee": "echo", "sdp": OFFER}))
        self.assertEqual(result, {"callId": "gw-1"})
        kwargs = self.gateway_calls("call")[0][2]
        self.assertEqual((kwargs["call_id"], kwargs["visible_name"], kwargs["has_audio"],
                          kwargs["has_video"], kwargs["sip_headers"]), (None, None, True, False, {}))

    def test_bad_call_params_name_the_field(self) -> None:
        cases = [
            ({"callee": None}, "callee"),
            ({"callee": ""}, "callee"),
            ({"callee": 1002}, "callee"),
            ({"callee": "1002\r\nX: y"}, "callee"),
            ({"sdp": None}, "sdp"),
            ({"sdp": {"type": "offer"}}, "sdp"),
            ({"sdp": "v" * (200 * 1024)}, "sdp"),
            ({"hasAudio": "true"}, "hasAudio"),
            ({"hasVideo": 1}, "hasVideo"),
            ({"hasAudio": False, "hasVideo": False}, "hasAudio"),
            ({"callId": 7}, "callId"),
            ({"callId": "   "}, "callId"),
            ({"callId": "x" * 200}, "callId"),
            ({"visibleName": ["A"]}, "visibleName"),
            ({"sipHeaders": ["X-A b"]}, "sipHeaders[0]"),  # the array form: "Name: value"
            ({"sipHeaders": {"X-A": 1}}, "sipHeaders.X-A"),
            ({"sipHeaders": {"X-A": "b\r\nVia: evil"}}, "sipHeaders.X-A"),
            ({"sipHeaders": {"Bad Name": "b"}}, "sipHeaders.Bad Name"),
            ({"sipHeaders": {"Call-ID": "forged"}}, "sipHeaders.Call-ID"),
            ({"sipHeaders": {"from": "forged"}}, "sipHeaders.from"),
            ({"sipHeaders": {"P-Asserted-Identity": "<sip:boss@pbx.example>"}},
             "sipHeaders.P-Asserted-Identity"),  # caller-ID spoofing (policy.allowed_headers)
            ({"sipHeaders": {"Remote-Party-ID": "<sip:boss@pbx.example>"}}, "sipHeaders.Remote-Party-ID"),
            ({"sipHeaders": {"Subject": "hi"}}, "sipHeaders.Subject"),  # not X-: not allowed by default
            ({"sipHeaders": {f"X-{i}": "v" for i in range(40)}}, "sipHeaders"),
        ]
        for overrides, field in cases:
            with self.subTest(overrides=overrides):
                self.assertError(self.rpc("call", self.call_params(**overrides)), jsonrpc.INVALID_PARAMS, field)
        self.assertEqual(self.gateway_calls("call"), [])

    def test_duplicate_call_id_is_the_gateways_error(self) -> None:
        self.assertResult(self.rpc("call", self.call_params(callId="dup")))
        self.assertError(self.rpc("call", self.call_params(callId="dup")), Codes.DUPLICATE_CALL, "callId")

    def test_hangup(self) -> None:
        self.assertResult(self.rpc("call", self.call_params(callId="c-9")))
        self.assertEqual(self.assertResult(self.rpc("hangup", {"callId": "c-9"})), {})
        self.assertEqual(self.gateway_calls("hangup"), [("hangup", SESSION, "c-9")])
        self.assertEqual(self.listener.heard[-1][1]["status"], "FINISH")

    def test_hangup_unknown_call(self) -> None:
        self.assertError(self.rpc("hangup", {"callId": "nope"}), Codes.UNKNOWN_CALL, "callId")

    def test_hangup_needs_call_id(self) -> None:
        self.assertError(self.rpc("hangup", {}), jsonrpc.INVALID_PARAMS, "callId")
        self.assertError(self.rpc("hangup", {"callId": 3}), jsonrpc.INVALID_PARAMS, "callId")

    def test_disconnect(self) -> None:
        self.assertEqual(self.assertResult(self.rpc("disconnect")), {})
        self.assertEqual(self.gateway_calls("disconnect"), [("disconnect", SESSION)])
        self.assertEqual(self.listener.heard[-1], ("sessionStatus", ("DISCONNECTED", None, "")))

    def test_call_before_connect_is_the_gateways_error(self) -> None:
        self.gateway.fail["call"] = CallError(Codes.NOT_CONNECTED, "connect before calling")
        self.assertError(self.rpc("call", self.call_params()), Codes.NOT_CONNECTED)


class OtherMethodsTests(MethodsTestCase):
    def test_unknown_method(self) -> None:
        error = self.assertError(self.rpc("publishStream", {}), jsonrpc.METHOD_NOT_FOUND)
        self.assertEqual(error["data"], {"method": "publishStream"})

    def test_every_contract_method_is_known(self) -> None:
        for method in METHODS:
            with self.subTest(method=method):
                error = self.rpc(method, {}).get("error")
                self.assertNotEqual(error and error["code"], jsonrpc.METHOD_NOT_FOUND)

    def test_client_notification_runs_without_a_reply(self) -> None:
        reply = self.methods.handle(Request("connect", {}, None, notification=True))
        self.assertIsNone(reply)
        self.assertEqual(len(self.gateway_calls("connect")), 1)


class InCallTests(MethodsTestCase):
    """hold, unhold, transfer and sendDtmf: params checked, then the gateway's methods."""

    def setUp(self) -> None:
        super().setUp()
        self.assertResult(self.rpc("connect"))
        self.assertResult(self.rpc("call", {"callId": "c-1", "callee": "1002", "sdp": OFFER}))
        self.listener.heard.clear()

    def test_hold_and_unhold(self) -> None:
        self.assertEqual(self.assertResult(self.rpc("hold", {"callId": "c-1"})), {})
        self.assertEqual(self.gateway_calls("hold"), [("hold", SESSION, "c-1")])
        self.assertEqual(self.assertResult(self.rpc("unhold", {"callId": "c-1"})), {})
        self.assertEqual(self.gateway_calls("unhold"), [("unhold", SESSION, "c-1")])
        self.assertEqual([h[1]["status"] for h in self.listener.heard], ["HOLD", "ESTABLISHED"])

    def test_transfer_blind_and_attended_targets_pass_through(self) -> None:
        for target in ("1003", "sip:1003@pbx.example.com", "tel:+4930123456", "c-2"):
            with self.subTest(target=target):
                self.assertEqual(self.assertResult(self.rpc("transfer", {"callId": "c-1", "target": target})), {})
        self.assertEqual([e[3] for e in self.gateway_calls("transfer")],
                         ["1003", "sip:1003@pbx.example.com", "tel:+4930123456", "c-2"])
        self.assertEqual(self.gateway_calls("transfer")[0][:3], ("transfer", SESSION, "c-1"))

    def test_transfer_target_is_trimmed(self) -> None:
        self.assertResult(self.rpc("transfer", {"callId": "c-1", "target": "  1003 "}))
        self.assertEqual(self.gateway_calls("transfer")[0][3], "1003")

    def test_send_dtmf_defaults_to_rfc2833(self) -> None:
        self.assertEqual(self.assertResult(self.rpc("sendDtmf", {"callId": "c-1", "dtmf": "123#"})), {})
        self.assertEqual(self.gateway_calls("send_dtmf"), [("send_dtmf", SESSION, "c-1", "123#", "RFC2833")])

    def test_send_dtmf_types_and_letters(self) -> None:
        self.assertResult(self.rpc("sendDtmf", {"callId": "c-1", "dtmf": "*9", "type": "INFO"}))
        self.assertResult(self.rpc("sendDtmf", {"callId": "c-1", "dtmf": "abcd", "type": "info"}))
        self.assertResult(self.rpc("sendDtmf", {"callId": "c-1", "dtmf": "0", "type": "rfc2833"}))
        self.assertResult(self.rpc("sendDtmf", {"callId": "c-1", "dtmf": "5" * 32, "type": None}))
        self.assertEqual([e[3:] for e in self.gateway_calls("send_dtmf")],
                         [("*9", "INFO"), ("ABCD", "INFO"), ("0", "RFC2833"), ("5" * 32, "RFC2833")])

    def test_bad_params_name_the_field(self) -> None:
        cases = [
            ("hold", {}, "callId"),
            ("hold", {"callId": ""}, "callId"),
            ("hold", {"callId": 1}, "callId"),
            ("unhold", {"callId": None}, "callId"),
            ("unhold", {"callId": "x" * 200}, "callId"),
            ("transfer", {"callId": "c-1"}, "target"),
            ("transfer", {"callId": "c-1", "target": "   "}, "target"),
            ("transfer", {"callId": "c-1", "target": 1003}, "target"),
            ("transfer", {"callId": "c-1", "target": "1003\r\nVia: evil"}, "target"),
            ("transfer", {"callId": "c-1", "target": "1" * 300}, "target"),
            ("transfer", {"target": "1003"}, "callId"),
            ("sendDtmf", {"dtmf": "1"}, "callId"),
            ("sendDtmf", {"callId": "c-1"}, "dtmf"),
            ("sendDtmf", {"callId": "c-1", "dtmf": ""}, "dtmf"),
            ("sendDtmf", {"callId": "c-1", "dtmf": 5}, "dtmf"),
            ("sendDtmf", {"callId": "c-1", "dtmf": "12x"}, "dtmf"),
            ("sendDtmf", {"callId": "c-1", "dtmf": "1 2"}, "dtmf"),
            ("sendDtmf", {"callId": "c-1", "dtmf": "E"}, "dtmf"),
            ("sendDtmf", {"callId": "c-1", "dtmf": "1" * 33}, "dtmf"),
            ("sendDtmf", {"callId": "c-1", "dtmf": "1\n"}, "dtmf"),
            ("sendDtmf", {"callId": "c-1", "dtmf": "1", "type": "SIP"}, "type"),
            ("sendDtmf", {"callId": "c-1", "dtmf": "1", "type": "INFO_RELAY"}, "type"),
            ("sendDtmf", {"callId": "c-1", "dtmf": "1", "type": 2833}, "type"),
        ]
        for method, params, field in cases:
            with self.subTest(method=method, params=params):
                error = self.assertError(self.rpc(method, params), jsonrpc.INVALID_PARAMS, field)
                self.assertTrue(error["message"].startswith(f"Invalid params: {field} "), error)
        for name in ("hold", "unhold", "transfer", "send_dtmf"):
            self.assertEqual(self.gateway_calls(name), [], name)

    def test_dtmf_error_says_what_is_allowed(self) -> None:
        error = self.assertError(self.rpc("sendDtmf", {"callId": "c-1", "dtmf": "12x"}), jsonrpc.INVALID_PARAMS)
        self.assertEqual(error["message"], "Invalid params: dtmf must be 1 to 32 of the digits 0-9 * # A-D")

    def test_unknown_or_foreign_call_is_the_gateways_error(self) -> None:
        other = RecordingListener()
        self.gateway.open_session("s-2", other)
        SessionMethods(self.gateway, "s-2").handle(
            Request("call", {"callId": "theirs", "callee": "1002", "sdp": OFFER}, 1))
        for method, params in (("hold", {}), ("unhold", {}), ("transfer", {"target": "1003"}),
                               ("sendDtmf", {"dtmf": "1"})):
            for call_id in ("nope", "theirs"):
                with self.subTest(method=method, call_id=call_id):
                    self.assertError(self.rpc(method, {"callId": call_id, **params}), Codes.UNKNOWN_CALL, "callId")

    def test_call_errors_map_as_for_other_methods(self) -> None:
        cases = [
            ("hold", {}, "hold", CallError(Codes.BAD_STATE, "the call is not established")),
            ("unhold", {}, "unhold", CallError(Codes.BAD_STATE, "the call is not on hold")),
            ("transfer", {"target": "sip:x@evil.example"}, "transfer",
             CallError(Codes.FORBIDDEN, "Forbidden destination", "target")),
            ("sendDtmf", {"dtmf": "1"}, "send_dtmf",
             CallError(Codes.INVALID, "the SIP side negotiated no telephone-event; use INFO", "type")),
        ]
        for method, params, gateway_method, failure in cases:
            with self.subTest(method=method):
                self.gateway.fail[gateway_method] = failure
                error = self.assertError(self.rpc(method, {"callId": "c-1", **params}), failure.code)
                self.assertEqual(error["message"], failure.message)
                self.assertEqual(error.get("data"), {"field": failure.field} if failure.field else None)

    def test_gateway_crash_is_an_internal_error(self) -> None:
        self.gateway.fail["send_dtmf"] = RuntimeError("boom")
        self.assertError(self.rpc("sendDtmf", {"callId": "c-1", "dtmf": "1"}), jsonrpc.INTERNAL_ERROR)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


class AnswerTests(MethodsTestCase):
    """answer: an incoming call the gateway announced with incomingCall."""

    def setUp(self) -> None:
        super().setUp()
        self.assertResult(self.rpc("connect"))
        self.gateway.offer_call(SESSION, "in-1", "1002", OFFER)
        self.listener.heard.clear()

    def test_answer_maps_to_the_gateway(self) -> None:
        self.assertEqual(self.assertResult(self.rpc("answer", {
            "callId": "in-1", "sdp": OFFER, "sipHeaders": {"X-Agent": "7"}})), {})
        self.assertEqual(self.gateway_calls("answer"), [("answer", SESSION, "in-1", OFFER)])
        self.assertEqual(self.listener.heard[-1][1]["status"], "ESTABLISHED")

    def test_bad_params_name_the_field(self) -> None:
        cases = [
            ({"sdp": OFFER}, "callId"),
            ({"callId": "in-1"}, "sdp"),
            ({"callId": "in-1", "sdp": {"type": "answer"}}, "sdp"),
            ({"callId": "in-1", "sdp": "v" * (200 * 1024)}, "sdp"),
            ({"callId": "in-1", "sdp": OFFER, "sipHeaders": {"Via": "x"}}, "sipHeaders.Via"),
        ]
        for params, field in cases:
            with self.subTest(params=params):
                self.assertError(self.rpc("answer", params), jsonrpc.INVALID_PARAMS, field)
        self.assertEqual(self.gateway_calls("answer"), [])

    def test_gateway_errors(self) -> None:
        self.assertError(self.rpc("answer", {"callId": "nope", "sdp": OFFER}), Codes.UNKNOWN_CALL, "callId")
        self.assertResult(self.rpc("call", {"callId": "out-1", "callee": "1002", "sdp": OFFER}))
        self.assertError(self.rpc("answer", {"callId": "out-1", "sdp": OFFER}), Codes.BAD_STATE, "callId")
