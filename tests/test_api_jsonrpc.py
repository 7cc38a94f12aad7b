"""JSON-RPC 2.0 framing (wcsgw.api.jsonrpc): every error code, bad frames, notifications.

The property the WebSocket relies on — parse_frame never raises, whatever the bytes — is
checked with Hypothesis over arbitrary text, bytes and JSON values.
"""

from __future__ import annotations

import json

from hypothesis import given, settings, strategies as st
from twisted.trial import unittest

from wcsgw.api import jsonrpc
from wcsgw.api.jsonrpc import BadFrame, Request, parse_frame


def _error_of(frame: str | bytes) -> dict:
    parsed = parse_frame(frame)
    assert isinstance(parsed, BadFrame), parsed
    reply = parsed.response()
    assert reply is not None
    message = json.loads(reply)
    assert message["jsonrpc"] == "2.0"
    assert "result" not in message
    return message


class ParseValidTests(unittest.TestCase):
    def test_request_with_params(self) -> None:
        parsed = parse_frame('{"jsonrpc":"2.0","id":7,"method":"call","params":{"callee":"echo"}}')
        self.assertEqual(parsed, Request("call", {"callee": "echo"}, 7, False))

    def test_params_absent_means_empty_object(self) -> None:
        parsed = parse_frame('{"jsonrpc":"2.0","id":"a","method":"disconnect"}')
        self.assertEqual(parsed, Request("disconnect", {}, "a", False))

    def test_bytes_frame_utf8(self) -> None:
        parsed = parse_frame('{"jsonrpc":"2.0","id":1,"method":"call","params":{"visibleName":"Jürgen"}}'.encode())
        assert isinstance(parsed, Request)
        self.assertEqual(parsed.params["visibleName"], "Jürgen")

    def test_null_id_is_a_request_not_a_notification(self) -> None:
        parsed = parse_frame('{"jsonrpc":"2.0","id":null,"method":"disconnect"}')
        assert isinstance(parsed, Request)
        self.assertFalse(parsed.notification)
        self.assertEqual(json.loads(parsed.result({})), {"jsonrpc": "2.0", "id": None, "result": {}})

    def test_float_id_is_echoed(self) -> None:
        parsed = parse_frame('{"jsonrpc":"2.0","id":1.5,"method":"x"}')
        assert isinstance(parsed, Request)
        self.assertEqual(json.loads(parsed.result(1))["id"], 1.5)

    def test_unknown_members_are_ignored(self) -> None:
        parsed = parse_frame('{"jsonrpc":"2.0","id":1,"method":"x","extra":true}')
        self.assertEqual(parsed, Request("x", {}, 1, False))

    def test_client_notification_is_dispatched_but_never_answered(self) -> None:
        parsed = parse_frame('{"jsonrpc":"2.0","method":"hangup","params":{"callId":"c"}}')
        assert isinstance(parsed, Request)
        self.assertTrue(parsed.notification)
        self.assertIsNone(parsed.result({}))
        self.assertIsNone(parsed.error(1003, "no such call"))


class ParseErrorTests(unittest.TestCase):
    """-32700: the frame is not JSON."""

    def assertParseError(self, frame: str | bytes) -> None:
        message = _error_of(frame)
        self.assertEqual(message["error"]["code"], jsonrpc.PARSE_ERROR)
        self.assertIsNone(message["id"])
        self.assertIn("Parse error", message["error"]["message"])

    def test_garbage(self) -> None:
        self.assertParseError("hello")

    def test_truncated(self) -> None:
        self.assertParseError('{"jsonrpc":"2.0","id":1,"method":"conn')

    def test_empty(self) -> None:
        self.assertParseError("")

    def test_invalid_utf8(self) -> None:
        self.assertParseError(b'{"jsonrpc":"2.0","id":1,"method":"\xff\xfe"}')

    def test_nan_is_not_json(self) -> None:
        self.assertParseError('{"jsonrpc":"2.0","id":NaN,"method":"x"}')
        self.assertParseError('{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":Infinity}}')

    def test_deep_nesting(self) -> None:
        self.assertParseError("[" * 100_000 + "]" * 100_000)

    def test_huge_integer(self) -> None:
        self.assertParseError('{"jsonrpc":"2.0","id":' + "9" * 10_000 + ',"method":"x"}')


class InvalidRequestTests(unittest.TestCase):
    """-32600: JSON, but not a request."""

    def assertInvalid(self, frame: str, request_id: object = None) -> dict:
        message = _error_of(frame)
        self.assertEqual(message["error"]["code"], jsonrpc.INVALID_REQUEST)
        self.assertEqual(message["id"], request_id)
        return message

    def test_scalar_and_string(self) -> None:
        self.assertInvalid("42")
        self.assertInvalid('"connect"')
        self.assertInvalid("null")

    def test_empty_batch(self) -> None:
        self.assertIn("empty batch", self.assertInvalid("[]")["error"]["message"])

    def test_batches_are_refused_with_one_error(self) -> None:
        message = self.assertInvalid('[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","id":2,"method":"b"}]')
        self.assertIn("batch requests are not supported", message["error"]["message"])

    def test_missing_or_wrong_jsonrpc_version(self) -> None:
        self.assertInvalid('{"id":1,"method":"connect"}', 1)
        self.assertInvalid('{"jsonrpc":"1.0","id":1,"method":"connect"}', 1)
        self.assertInvalid('{"jsonrpc":2.0,"id":1,"method":"connect"}', 1)

    def test_method_missing_empty_or_not_a_string(self) -> None:
        self.assertInvalid('{"jsonrpc":"2.0","id":3}', 3)
        self.assertInvalid('{"jsonrpc":"2.0","id":3,"method":""}', 3)
        self.assertInvalid('{"jsonrpc":"2.0","id":3,"method":1,"params":"bar"}', 3)

    def test_bad_id_types_answer_with_null_id(self) -> None:
        for bad in ("true", "{}", "[1]"):
            with self.subTest(id=bad):
                self.assertInvalid('{"jsonrpc":"2.0","id":%s,"method":"x"}' % bad)

    def test_response_objects_from_the_client(self) -> None:
        message = self.assertInvalid('{"jsonrpc":"2.0","id":5,"result":{}}', 5)
        self.assertIn("takes no responses", message["error"]["message"])

    def test_an_invalid_notification_is_still_answered(self) -> None:
        # The spec's own example: {"jsonrpc": "2.0", "method": 1, "params": "bar"} -> -32600, id null.
        self.assertInvalid('{"jsonrpc":"2.0","method":1,"params":"bar"}')


class InvalidParamsTests(unittest.TestCase):
    """-32602 at this layer: params that are not an object."""

    def test_positional_params(self) -> None:
        message = _error_of('{"jsonrpc":"2.0","id":9,"method":"call","params":["echo"]}')
        self.assertEqual(message["error"]["code"], jsonrpc.INVALID_PARAMS)
        self.assertEqual(message["id"], 9)

    def test_scalar_and_null_params(self) -> None:
        for params in ('"x"', "1", "null", "true"):
            with self.subTest(params=params):
                message = _error_of('{"jsonrpc":"2.0","id":9,"method":"call","params":%s}' % params)
                self.assertEqual(message["error"]["code"], jsonrpc.INVALID_PARAMS)

    def test_notification_with_bad_params_gets_no_reply(self) -> None:
        parsed = parse_frame('{"jsonrpc":"2.0","method":"call","params":[1]}')
        assert isinstance(parsed, BadFrame)
        self.assertEqual(parsed.code, jsonrpc.INVALID_PARAMS)
        self.assertIsNone(parsed.response())


class BuildTests(unittest.TestCase):
    def test_result(self) -> None:
        self.assertEqual(json.loads(jsonrpc.result(3, {"callId": "c1"})),
                         {"jsonrpc": "2.0", "id": 3, "result": {"callId": "c1"}})

    def test_error_with_and_without_data(self) -> None:
        self.assertEqual(
            json.loads(jsonrpc.error("x", -32602, "Invalid params", {"field": "callee"})),
            {"jsonrpc": "2.0", "id": "x", "error": {"code": -32602, "message": "Invalid params",
                                                  "data": {"field": "callee"}}},
        )
        self.assertNotIn("data", json.loads(jsonrpc.error(1, 1003, "no such call"))["error"])

    def test_notification_has_no_id(self) -> None:
        message = json.loads(jsonrpc.notification("sessionStatus", {"status": "ESTABLISHED"}))
        self.assertEqual(message, {"jsonrpc": "2.0", "method": "sessionStatus",
                                   "params": {"status": "ESTABLISHED"}})
        self.assertNotIn("id", message)

    def test_non_ascii_is_sent_as_utf8_text(self) -> None:
        self.assertIn("Jürgen", jsonrpc.notification("callStatus", {"caller": "Jürgen"}))

    def test_nan_is_refused_at_build_time(self) -> None:
        self.assertRaises(ValueError, jsonrpc.result, 1, float("nan"))

    def test_codes(self) -> None:
        self.assertEqual(
            (jsonrpc.PARSE_ERROR, jsonrpc.INVALID_REQUEST, jsonrpc.METHOD_NOT_FOUND,
             jsonrpc.INVALID_PARAMS, jsonrpc.INTERNAL_ERROR),
            (-32700, -32600, -32601, -32602, -32603),
        )


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


class NeverRaisesTests(unittest.TestCase):
    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=200))
    def test_any_bytes(self, frame: bytes) -> None:
        self._check(parse_frame(frame))

    @settings(max_examples=300, deadline=None)
    @given(st.text(max_size=200))
    def test_any_text(self, frame: str) -> None:
        self._check(parse_frame(frame))

    @settings(max_examples=300, deadline=None)
    @given(st.dictionaries(st.sampled_from(["jsonrpc", "id", "method", "params", "result"]), _json))
    def test_any_object(self, message: dict) -> None:
        self._check(parse_frame(json.dumps(message)))

    def _check(self, parsed: object) -> None:
        if isinstance(parsed, BadFrame):
            reply = parsed.response()
            if reply is not None:
                self.assertIn(json.loads(reply)["error"]["code"], (-32700, -32600, -32602))
        else:
            assert isinstance(parsed, Request)
            self.assertIsInstance(parsed.params, dict)
            self.assertTrue(parsed.method)
