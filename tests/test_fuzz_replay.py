"""Every input the fuzzer ever found a bug with, replayed through the target it broke, and
every seed the fuzzer starts from (so this test is never empty).

``make fuzz`` (bench/fuzz/run.py) keeps each input that crashed, hung or broke a contract in
tests/data/fuzz/<target>/ once the bug is fixed; this suite makes sure it stays fixed.  The
targets (bench/fuzz/targets.py) are the very functions the fuzzer runs, and each asserts the
contract itself: SIP — a message is answered (400 when it can be addressed) or dropped and
counted, never an exception out, and what the endpoint sends parses; JSON-RPC — every request
gets a JSON-RPC response and none is -32603 (an exception inside the gateway); REST — never a
500, and a field's 400 names it; SDP, STUN, RTP — a refusal of the documented kind, nothing
else.  The inputs are files, so a failure names the file to feed the target by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

from twisted.trial import unittest

from bench.fuzz.seeds import seeds
from bench.fuzz.targets import TARGETS, World
from wcsgw.api import jsonrpc
from wcsgw.api.methods import SessionMethods
from wcsgw.sip.endpoint import EndpointConfig, SipEndpoint
from wcsgw.sip.target import Target

KEPT = Path(__file__).parent / "data" / "fuzz"


def kept(target: str) -> list[Path]:
    folder = KEPT / target
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix != ".md")


class ReplayTests(unittest.TestCase):
    def replay(self, target: str) -> int:
        """Run the seeds and the kept inputs of ``target``; how many ran."""
        run = TARGETS[target].run
        inputs = [(f"seed {n}", data) for n, data in enumerate(seeds(target))]
        inputs += [(str(path.relative_to(KEPT.parent.parent)), path.read_bytes())
                   for path in kept(target)]
        for name, data in inputs:
            try:
                run(data)
            except Exception as exc:  # noqa: BLE001 - every failure named by its input
                self.fail(f"{target}: {name}: {type(exc).__name__}: {exc}")
        return len(inputs)

    def test_sip(self) -> None:
        self.assertGreater(self.replay("sip"), 49)  # the 49 RFC 4475 messages at least

    def test_sdp(self) -> None:
        self.assertGreater(self.replay("sdp"), 3)

    def test_jsonrpc(self) -> None:
        self.assertGreater(self.replay("jsonrpc"), 3)

    def test_rest(self) -> None:
        self.assertGreater(self.replay("rest"), 3)

    def test_stun(self) -> None:
        self.assertGreater(self.replay("stun"), 1)

    def test_rtp(self) -> None:
        self.assertGreater(self.replay("rtp"), 3)

    def test_every_kept_input_has_a_target(self) -> None:
        """A folder under tests/data/fuzz names a target; nothing kept is replayed by none."""
        for folder in KEPT.iterdir():
            if folder.is_dir():
                self.assertIn(folder.name, TARGETS, folder)


class ContractTests(unittest.TestCase):
    """The targets' checks can fail: each contract, broken on purpose, is caught."""

    def test_a_malformed_request_is_answered_400_or_dropped(self) -> None:
        endpoint = SipEndpoint(EndpointConfig(host="127.0.0.1", port=5060, user_agent="t"))
        peer = Target("UDP", "192.0.2.7", 5070)
        insuf = (KEPT.parent / "rfc4475" / "insuf.dat").read_bytes()
        endpoint.receive_bytes(insuf, peer, 0.0)
        [(data, _)] = endpoint.take_outgoing()
        self.assertTrue(data.startswith(b"SIP/2.0 400 "))
        endpoint.receive_bytes(b"\x00\xff garbage", peer, 0.0)
        self.assertEqual(endpoint.take_outgoing(), [])
        self.assertEqual((endpoint.stats.malformed, endpoint.stats.dropped), (2, 1))

    def test_the_jsonrpc_target_fails_on_an_internal_error(self) -> None:
        """A method that raises inside the gateway is answered -32603; the target calls that
        a broken contract."""
        original = SessionMethods._hold

        def broken(self: SessionMethods, params: dict) -> dict:
            raise RuntimeError("a bug")

        self.patch(SessionMethods, "_hold", broken)
        frame = b'{"jsonrpc":"2.0","id":1,"method":"hold","params":{"callId":"c1"}}'
        with self.assertRaises(AssertionError):
            TARGETS["jsonrpc"].run(frame)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)  # and it was logged
        self.patch(SessionMethods, "_hold", original)
        TARGETS["jsonrpc"].run(frame)  # a JSON-RPC error naming callId: the contract kept

    def test_bad_params_get_a_jsonrpc_error_naming_the_field(self) -> None:
        world = World(connected=False)
        methods = SessionMethods(world.gateway, "s1")
        request = jsonrpc.parse_frame(
            '{"jsonrpc":"2.0","id":7,"method":"connect","params":{"sipPort":"x"}}')
        assert isinstance(request, jsonrpc.Request)
        reply = json.loads(methods.handle(request) or "null")
        self.assertEqual((reply["id"], reply["error"]["code"], reply["error"]["data"]["field"]),
                         (7, jsonrpc.INVALID_PARAMS, "sipPort"))
        world.end()

    def test_the_rest_target_fails_on_a_500(self) -> None:
        from wcsgw.api.restcalls import RestApi

        def broken(self: RestApi, body: dict) -> dict:
            raise RuntimeError("a bug")

        TARGETS["rest"].run(b"call/find_all\n{}")
        self.patch(RestApi, "find_all", broken)
        with self.assertRaises(AssertionError):
            TARGETS["rest"].run(b"call/find_all\n{}")
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_a_rest_field_error_names_the_field(self) -> None:
        from bench.fuzz import targets

        TARGETS["rest"].run(b'call/startup\n{"callee": "echo", "sipPort": "x"}')

        request = _rest(targets, b'call/startup\n{"callee": "echo", "sipPort": "x"}')
        self.assertEqual(request.responseCode, 400)
        reply = json.loads(b"".join(request.written))
        self.assertEqual(reply["field"], "sipPort")
        self.assertIn("sipPort", reply["error"])


def _rest(targets, data: bytes):  # type: ignore[no-untyped-def]
    """One request through the REST target's resource; the DummyRequest, answered."""
    from io import BytesIO

    from twisted.web.test.requesthelper import DummyRequest

    world = targets.World()
    resource = targets._rest_resource()
    resource.api = targets.RestApi(world.gateway)
    head, _, body = data.partition(b"\n")
    request = DummyRequest(head.split(b"/"))
    request.method = b"POST"
    request.requestHeaders.setRawHeaders(b"content-type", [b"application/json"])
    request.content = BytesIO(body)
    out = resource.render(request)
    if isinstance(out, bytes):
        request.write(out)
    world.end()
    return request
