"""The REST API over real HTTP against a fake call layer: every route, the field checks (400
naming the field), statuses from the call layer (404/409/403/501/500), bearer tokens, body
limits, content types, playFile containment and record."""

from __future__ import annotations

import json
import os
from io import BytesIO
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from twisted.internet import defer, reactor
from twisted.trial import unittest
from twisted.web.client import Agent, FileBodyProducer, HTTPConnectionPool, readBody
from twisted.web.http_headers import Headers
from twisted.web.resource import Resource
from twisted.web.server import Site

from tests.support import inline
from tests.test_media_wavfile import tone, write_wav
from wcsgw.api import rest, restrules
from wcsgw.api.rest import build_rest_resource
from wcsgw.calls.accounts import AccountBook
from wcsgw.calls.errors import CallError, Codes
from wcsgw.sip.account import SipAccount

CALL_METHODS = ("startup", "terminate", "find", "find_all", "send_dtmf", "hold", "unhold",
                "transfer")


def call_object(call_id: str, **fields: Any) -> dict[str, Any]:
    """A call object as the lead's Call.describe() gives it."""
    call = {
        "callId": call_id, "sessionId": None, "status": "ESTABLISHED", "sipStatus": 200,
        "info": "", "incoming": False, "caller": "sip:1001@pbx.example.com", "callee": "1002",
        "visibleName": None, "hasAudio": True, "hasVideo": False, "holdForTransfer": False,
        "startTime": 1_700_000_000_000, "answerTime": 1_700_000_001_000,
        "media": {"webrtcCodec": None, "sipCodec": "PCMU/8000", "mode": None},
    }
    call.update(fields)
    return call


class FakeCallGateway:
    """The CallGateway surface REST uses (issue 4 spec, "Call layer"), recording each call.

    ``fail[method] = exception`` makes that method raise; ``later`` makes every method answer
    through a Deferred fired on the next reactor turn (the call layer may be asynchronous).
    Known calls are ``calls``; an unknown callId raises UNKNOWN_CALL like the real gateway.
    """

    def __init__(self) -> None:
        self.calls: dict[str, dict[str, Any]] = {}
        self.sessions: set[str] = {"s1"}
        self.log: list[tuple[str, Any]] = []
        self.fail: dict[str, Exception] = {}
        self.later = False
        self._next = 0
        #: no server-held accounts: a body naming one is refused (400, field account)
        self.accounts = AccountBook()
        self.drain = FakeDrain(self)

    def _answer(self, method: str, value: Any) -> Any:
        error = self.fail.get(method)
        if error is not None:
            if self.later:
                d: defer.Deferred = defer.Deferred()
                reactor.callLater(0, d.errback, error)
                return d
            raise error
        if self.later:
            d = defer.Deferred()
            reactor.callLater(0, d.callback, value)
            return d
        return value

    def _known(self, call_id: str) -> None:
        if call_id not in self.calls:
            raise CallError(Codes.UNKNOWN_CALL, f"no call {call_id}", "callId")

    def startup(self, **kwargs: Any) -> Any:
        self.log.append(("startup", kwargs))
        call_id = kwargs["call_id"]
        if call_id is not None and call_id in self.calls:
            raise CallError(Codes.DUPLICATE_CALL, f"callId {call_id} is already in use", "callId")
        if kwargs["session_id"] is not None and kwargs["session_id"] not in self.sessions:
            raise CallError(Codes.NOT_CONNECTED, "unknown session")
        if call_id is None:
            self._next += 1
            call_id = f"gw-{self._next}"
        self.calls[call_id] = call_object(call_id, callee=kwargs["callee"],
                                          sessionId=kwargs["session_id"])
        return self._answer("startup", call_id)

    def terminate(self, call_id: str) -> Any:
        self.log.append(("terminate", call_id))
        self._known(call_id)
        return self._answer("terminate", None)

    def find(self, filters: dict[str, Any]) -> Any:
        self.log.append(("find", filters))
        found = [c for c in self.calls.values()
                 if all(str(c.get(k)) == str(v) for k, v in filters.items())]
        return self._answer("find", found)

    def find_all(self) -> Any:
        self.log.append(("find_all", None))
        return self._answer("find_all", list(self.calls.values()))

    def send_dtmf(self, session_id: str | None, call_id: str, digits: str, type: str) -> Any:
        self.log.append(("send_dtmf", (session_id, call_id, digits, type)))
        self._known(call_id)
        return self._answer("send_dtmf", None)

    def hold(self, session_id: str | None, call_id: str) -> Any:
        self.log.append(("hold", (session_id, call_id)))
        self._known(call_id)
        return self._answer("hold", None)

    def unhold(self, session_id: str | None, call_id: str) -> Any:
        self.log.append(("unhold", (session_id, call_id)))
        self._known(call_id)
        return self._answer("unhold", None)

    def transfer(self, session_id: str | None, call_id: str, target: str) -> Any:
        self.log.append(("transfer", (session_id, call_id, target)))
        self._known(call_id)
        return self._answer("transfer", None)



class FakeDrain:
    """REST ``gateway/drain`` on the fake gateway: logged and answered like the real one."""

    def __init__(self, gateway: FakeCallGateway) -> None:
        self.gateway = gateway

    def begin(self, why: str) -> Any:
        self.gateway.log.append(("drain", why))
        return self.gateway._answer("drain", {"status": "draining",
                                              "calls": len(self.gateway.calls)})

class _TrackingSite(Site):
    """A Site that can close the connections clients left open (keep-alive) at cleanup."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.open: dict[Any, defer.Deferred] = {}  # transport -> fires when it is closed

    def buildProtocol(self, addr: Any) -> Any:
        protocol = super().buildProtocol(addr)
        gone: defer.Deferred = defer.Deferred()
        made, lost = protocol.makeConnection, protocol.connectionLost

        def make_connection(transport: Any) -> None:
            self.open[transport] = gone
            made(transport)

        def connection_lost(reason: Any) -> None:
            for transport, waiting in list(self.open.items()):
                if waiting is gone:
                    del self.open[transport]
            lost(reason)
            gone.callback(None)

        protocol.makeConnection = make_connection
        protocol.connectionLost = connection_lost
        return protocol

    def close_all(self) -> defer.Deferred:
        waits = list(self.open.values())
        for transport in list(self.open):
            transport.abortConnection()
        return defer.gatherResults(waits)


def serve_rest(testcase: unittest.TestCase, gateway: Any, tokens: tuple[str, ...] = (),
               **folders: Any) -> str:
    """Serve /rest-api on a free loopback port for one test; returns the base URL.  At
    cleanup the port stops listening and connections still open are closed."""
    root = Resource()
    root.putChild(b"rest-api", build_rest_resource(gateway, tokens, **folders))
    site = _TrackingSite(root)
    site.displayTracebacks = False
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    testcase.addCleanup(site.close_all)
    testcase.addCleanup(port.stopListening)
    return f"http://127.0.0.1:{port.getHost().port}/rest-api"


class Reply:
    def __init__(self, status: int, headers: Headers, raw: bytes) -> None:
        self.status = status
        self.headers = headers
        self.raw = raw

    def header(self, name: str) -> str | None:
        values = self.headers.getRawHeaders(name)
        return values[0] if values else None

    @property
    def json(self) -> Any:
        return json.loads(self.raw)


async def request(testcase: unittest.TestCase, url: str, body: Any = None, *,
                  method: bytes = b"POST", raw: bytes | None = None,
                  content_type: str | None = "application/json",
                  headers: dict[str, str] | None = None) -> Reply:
    pool = HTTPConnectionPool(reactor, persistent=False)
    testcase.addCleanup(pool.closeCachedConnections)
    h = Headers()
    if content_type is not None:
        h.addRawHeader("content-type", content_type)
    for name, value in (headers or {}).items():
        h.addRawHeader(name, value)
    producer = None
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    if data is not None:
        producer = FileBodyProducer(BytesIO(data))
    response = await Agent(reactor, pool=pool).request(method, url.encode(), h, producer)
    return Reply(response.code, response.headers, await readBody(response))


class RestTestCase(unittest.TestCase):
    tokens: tuple[str, ...] = ()

    def setUp(self) -> None:
        self.gateway = FakeCallGateway()
        self.gateway.calls["c1"] = call_object("c1")
        self.media = Path(self.mktemp()).resolve()
        self.media.mkdir()
        self.recordings = Path(self.mktemp()).resolve()
        self.recordings.mkdir()
        write_wav(self.media / "hello.wav", 8000, [tone(8000, 440, 0.2)])
        self.gateway.recordings = SimpleNamespace(folder=self.recordings)  # [recording] folder
        self.base = serve_rest(self, self.gateway, self.tokens, media_folder=self.media)

    async def post(self, path: str, body: Any = None, **kwargs: Any) -> Reply:
        return await request(self, self.base + path, body, **kwargs)

    def assert_json(self, reply: Reply, status: int) -> Any:
        self.assertEqual(reply.status, status, reply.raw)
        self.assertEqual(reply.header("content-type"), "application/json")
        self.assertEqual(reply.header("x-content-type-options"), "nosniff")
        return reply.json

    def assert_field_error(self, reply: Reply, field: str, status: int = 400) -> str:
        body = self.assert_json(reply, status)
        self.assertEqual(body.get("field"), field, body)
        self.assertIn(field, body["error"])
        return body["error"]


class RoutesTests(RestTestCase):
    @inline
    async def test_every_method_reaches_the_gateway(self) -> None:
        replies = {
            "/call/terminate": ({"callId": "c1"}, {}, ("terminate", "c1")),
            "/call/hold": ({"callId": "c1"}, {}, ("hold", (None, "c1"))),
            "/call/unhold": ({"callId": "c1"}, {}, ("unhold", (None, "c1"))),
            "/call/send_dtmf": ({"callId": "c1", "dtmf": "12#a"}, {},
                                ("send_dtmf", (None, "c1", "12#A", "RFC2833"))),
            "/call/transfer": ({"callId": "c1", "target": "sip:1003@pbx.example.com"}, {},
                               ("transfer", (None, "c1", "sip:1003@pbx.example.com"))),
            "/call/find": ({"callId": "c1"}, [call_object("c1")], ("find", {"callId": "c1"})),
            "/call/find_all": ({}, [call_object("c1")], ("find_all", None)),
        }
        for path, (body, expected, logged) in replies.items():
            reply = await self.post(path, body)
            self.assertEqual(self.assert_json(reply, 200), expected, path)
            self.assertEqual(self.gateway.log[-1], logged, path)

    @inline
    async def test_dtmf_info(self) -> None:
        reply = await self.post("/call/send_dtmf", {"callId": "c1", "dtmf": "5", "type": "INFO"})
        self.assert_json(reply, 200)
        self.assertEqual(self.gateway.log[-1], ("send_dtmf", (None, "c1", "5", "INFO")))

    @inline
    async def test_asynchronous_gateway(self) -> None:
        """The call layer may answer through Deferreds: replies and errors still arrive."""
        self.gateway.later = True
        reply = await self.post("/call/startup", {"callee": "echo", "callId": "a1"})
        self.assertEqual(self.assert_json(reply, 200), {"callId": "a1"})
        self.gateway.fail["hold"] = CallError(Codes.BAD_STATE, "not established", "callId")
        reply = await self.post("/call/hold", {"callId": "a1"})
        self.assert_field_error(reply, "callId", 409)

    @inline
    async def test_find_filters_and_none_found(self) -> None:
        self.gateway.calls["c2"] = call_object("c2", status="HOLD")
        reply = await self.post("/call/find", {"status": "HOLD"})
        self.assertEqual([c["callId"] for c in self.assert_json(reply, 200)], ["c2"])
        reply = await self.post("/call/find", {"status": "RING"})
        self.assertEqual(self.assert_json(reply, 404), {"error": "no call matches the filters"})
        reply = await self.post("/call/find", {"state": "HOLD"})
        self.assert_field_error(reply, "state")
        reply = await self.post("/call/find", {"status": "hold"})
        self.assert_field_error(reply, "status")
        reply = await self.post("/call/find", {})
        self.assertEqual(len(self.assert_json(reply, 200)), 2)

    @inline
    async def test_find_all_empty_is_200(self) -> None:
        self.gateway.calls.clear()
        self.assertEqual(self.assert_json(await self.post("/call/find_all", {}), 200), [])

    @inline
    async def test_unknown_paths_are_json_404(self) -> None:
        for path in ("", "/", "/call", "/call/", "/call/startup/", "/call/startup/x",
                     "/call/hangup", "/openapi.json/x", "/../call/startup"):
            reply = await self.post(path, {})
            body = self.assert_json(reply, 404)
            self.assertIn("no such endpoint", body["error"], path)

    @inline
    async def test_wrong_method_is_405_with_allow(self) -> None:
        for method in (b"GET", b"PUT", b"DELETE", b"PATCH", b"HEAD"):
            reply = await self.post("/call/find_all", None, method=method)
            self.assertEqual(reply.status, 405, method)
            self.assertEqual(reply.header("allow"), "POST")
        reply = await self.post("/openapi.json", {})
        self.assertEqual(reply.status, 405)
        self.assertEqual(reply.header("allow"), "GET, HEAD")
        reply = await self.post("/openapi.json", None, method=b"GET")
        doc = self.assert_json(reply, 200)
        self.assertEqual(doc["openapi"], "3.1.0")

    @inline
    async def test_unknown_call_is_404(self) -> None:
        for path, body in (("/call/terminate", {"callId": "nope"}),
                           ("/call/hold", {"callId": "nope"}),
                           ("/call/unhold", {"callId": "nope"}),
                           ("/call/send_dtmf", {"callId": "nope", "dtmf": "1"}),
                           ("/call/transfer", {"callId": "nope", "target": "1003"})):
            self.assert_field_error(await self.post(path, body), "callId", 404)

    @inline
    async def test_call_layer_errors_map_to_statuses(self) -> None:
        cases = [
            (CallError(Codes.FORBIDDEN, "Forbidden destination: evil.example", "target"), 403,
             "target"),
            (CallError(Codes.INVALID, "target must be a number", "target"), 400, "target"),
            (CallError(Codes.BAD_STATE, "a transfer is already running", "callId"), 409,
             "callId"),
            (CallError(Codes.NOT_SUPPORTED, "transfer is not supported yet"), 501, None),
        ]
        for error, status, field in cases:
            self.gateway.fail["transfer"] = error
            reply = await self.post("/call/transfer", {"callId": "c1", "target": "1003"})
            body = self.assert_json(reply, status)
            self.assertEqual(body.get("field"), field)
            self.assertIn(error.message, body["error"])

    @inline
    async def test_internal_error_is_500_without_details(self) -> None:
        self.gateway.fail["hold"] = RuntimeError("secret internals at 0xdeadbeef")
        reply = await self.post("/call/hold", {"callId": "c1"})
        self.assertEqual(self.assert_json(reply, 500), {"error": "internal error"})
        self.assertNotIn(b"deadbeef", reply.raw)
        self.assertNotIn(b"Traceback", reply.raw)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


class StartupTests(RestTestCase):
    @inline
    async def test_wcs_body_with_strings_maps_to_an_account(self) -> None:
        """The WCS documentation's example body: booleans and the port as strings, WCS fields
        this gateway does not use (toStream, appKey) ignored."""
        body = {
            "callId": "abc-1", "callee": "1002", "toStream": "call_stream1",
            "appKey": "defaultApp", "hasAudio": "true", "hasVideo": "false",
            "sipLogin": "1001", "sipAuthenticationName": "acme-1001", "sipPassword": "s3cret",
            "sipDomain": "pbx.example.com", "sipOutboundProxy": "proxy.example.com",
            "sipPort": "5070", "sipTransport": "TCP", "sipRegisterRequired": "true",
            "visibleName": "Front desk",
        }
        reply = await self.post("/call/startup", body)
        self.assertEqual(self.assert_json(reply, 200), {"callId": "abc-1"})
        method, kwargs = self.gateway.log[-1]
        self.assertEqual(method, "startup")
        self.assertEqual(kwargs["account"], SipAccount(
            login="1001", auth_name="acme-1001", password="s3cret", domain="pbx.example.com",
            outbound_proxy="proxy.example.com", port=5070, transport="tcp", register=True,
            display_name="Front desk"))
        self.assertEqual({k: v for k, v in kwargs.items() if k != "account"}, {
            "call_id": "abc-1", "callee": "1002", "register": True,
            "visible_name": "Front desk", "has_audio": True, "has_video": False,
            "session_id": None, "play_file": None, "record": False, "peer": "127.0.0.1"})
        self.assertNotIn(b"s3cret", reply.raw)

    @inline
    async def test_defaults_and_gateway_chosen_id(self) -> None:
        reply = await self.post("/call/startup", {"callee": "echo"})
        self.assertEqual(self.assert_json(reply, 200), {"callId": "gw-1"})
        kwargs = self.gateway.log[-1][1]
        self.assertEqual(kwargs, {
            "call_id": None, "callee": "echo", "account": None, "register": False,
            "visible_name": None, "has_audio": True, "has_video": False, "session_id": None,
            "play_file": None, "record": False, "peer": "127.0.0.1"})

    @inline
    async def test_json_types_and_ipv6(self) -> None:
        body = {"callee": "sip:1002@[2001:db8::1]", "sipLogin": "1001", "sipDomain": "[2001:db8::1]",
                "sipPort": 5080, "sipRegisterRequired": False, "sipOutboundProxy": "",
                "sipTransport": ""}
        self.assert_json(await self.post("/call/startup", body), 200)
        account = self.gateway.log[-1][1]["account"]
        self.assertEqual((account.domain, account.port, account.outbound_proxy, account.transport),
                         ("2001:db8::1", 5080, None, "udp"))
        self.assertEqual(account.aor(), "sip:1001@[2001:db8::1]")

    @inline
    async def test_session_hand_over(self) -> None:
        reply = await self.post("/call/startup", {"callee": "1002", "sessionId": "s1",
                                                  "hasVideo": True})
        self.assert_json(reply, 200)
        self.assertEqual(self.gateway.log[-1][1]["session_id"], "s1")
        reply = await self.post("/call/startup", {"callee": "1002", "sessionId": "gone"})
        self.assert_field_error(reply, "sessionId", 404)

    @inline
    async def test_duplicate_call_id_is_409(self) -> None:
        reply = await self.post("/call/startup", {"callee": "1002", "callId": "c1"})
        self.assert_field_error(reply, "callId", 409)

    @inline
    async def test_bad_fields_are_named(self) -> None:
        ok = {"callee": "1002"}
        cases: list[tuple[dict[str, Any], str]] = [
            ({}, "callee"),
            ({"callee": ""}, "callee"),
            ({"callee": "10 02"}, "callee"),
            ({"callee": 1002}, "callee"),
            ({**ok, "callId": ""}, "callId"),
            ({**ok, "callId": "   "}, "callId"),
            ({**ok, "callId": "x" * 129}, "callId"),
            ({**ok, "callId": 7}, "callId"),
            ({**ok, "hasAudio": "yes"}, "hasAudio"),
            ({**ok, "hasAudio": 1}, "hasAudio"),
            ({**ok, "hasAudio": None}, "hasAudio"),
            ({**ok, "hasAudio": False}, "hasAudio"),
            ({**ok, "hasAudio": "false", "hasVideo": "false"}, "hasAudio"),
            ({**ok, "hasVideo": "True"}, "hasVideo"),
            ({**ok, "record": "1"}, "record"),
            ({**ok, "sipRegisterRequired": []}, "sipRegisterRequired"),
            ({**ok, "sipDomain": "pbx.example.com"}, "sipLogin"),
            ({**ok, "sipDomain": "pbx.example.com", "sipLogin": " "}, "sipLogin"),
            ({**ok, "sipDomain": "pbx.example.com:5060", "sipLogin": "1"}, "sipDomain"),
            ({**ok, "sipDomain": "", "sipLogin": "1"}, "sipDomain"),
            ({**ok, "sipDomain": "bad host", "sipLogin": "1"}, "sipDomain"),
            ({**ok, "sipOutboundProxy": "-x-"}, "sipOutboundProxy"),
            ({**ok, "sipPort": "0"}, "sipPort"),
            ({**ok, "sipPort": "65536"}, "sipPort"),
            ({**ok, "sipPort": "05060"}, "sipPort"),
            ({**ok, "sipPort": 70000}, "sipPort"),
            ({**ok, "sipPort": 5060.5}, "sipPort"),
            ({**ok, "sipPort": True}, "sipPort"),
            ({**ok, "sipTransport": "sctp"}, "sipTransport"),
            ({**ok, "sipLogin": "a\r\nVia: x"}, "sipLogin"),
            ({**ok, "sipPassword": "p\nq"}, "sipPassword"),
            ({**ok, "visibleName": "x" * 257}, "visibleName"),
            ({**ok, "sessionId": ""}, "sessionId"),
            ({**ok, "sessionId": "s1", "playFile": "hello.wav"}, "playFile"),
            ({**ok, "sessionId": "s1", "record": True}, "record"),
            ({**ok, "playFile": 3}, "playFile"),
        ]
        for body, field in cases:
            reply = await self.post("/call/startup", body)
            message = self.assert_field_error(reply, field)
            self.assertNotIn("Traceback", message)
        self.assertEqual([m for m, _ in self.gateway.log], [])
        # record false is fine with a session
        self.assert_json(await self.post("/call/startup", {**ok, "sessionId": "s1",
                                                           "record": "false"}), 200)


class PlayFileTests(RestTestCase):
    @inline
    async def test_file_in_folder_and_subfolder(self) -> None:
        (self.media / "prompts").mkdir()
        write_wav(self.media / "prompts" / "menu.wav", 44100, [tone(44100, 300, 0.1)])
        for name, expected in (("hello.wav", self.media / "hello.wav"),
                               ("prompts/menu.wav", self.media / "prompts" / "menu.wav"),
                               ("./prompts//menu.wav", self.media / "prompts" / "menu.wav")):
            reply = await self.post("/call/startup", {"callee": "1002", "playFile": name,
                                                      "record": True})
            self.assert_json(reply, 200)
            kwargs = self.gateway.log[-1][1]
            self.assertEqual(kwargs["play_file"], str(expected))
            self.assertTrue(os.path.isabs(kwargs["play_file"]))
            self.assertIs(kwargs["record"], True)

    @inline
    async def test_escapes_and_bad_files_refused(self) -> None:
        outside = Path(self.mktemp()).resolve()
        outside.mkdir()
        write_wav(outside / "secret.wav", 8000, [tone(8000, 440, 0.1)])
        (self.media / "link.wav").symlink_to(outside / "secret.wav")
        (self.media / "linkdir").symlink_to(outside)
        (self.media / "loop").symlink_to(self.media / "loop")
        (self.media / "notes.txt").write_text("not audio")
        (self.media / "dir.wav").mkdir()
        for name in (str(outside / "secret.wav"), "/etc/passwd", "../x.wav",
                     "prompts/../../x.wav", "..", "link.wav", "linkdir/secret.wav",
                     "missing.wav", "notes.txt", "dir.wav", "loop", "a\x00b", ""):
            reply = await self.post("/call/startup", {"callee": "1002", "playFile": name})
            self.assert_field_error(reply, "playFile")
        self.assertEqual(self.gateway.log, [])

    @inline
    async def test_symlink_inside_the_folder_is_fine(self) -> None:
        (self.media / "alias.wav").symlink_to(self.media / "hello.wav")
        reply = await self.post("/call/startup", {"callee": "1002", "playFile": "alias.wav"})
        self.assert_json(reply, 200)
        self.assertEqual(self.gateway.log[-1][1]["play_file"], str(self.media / "hello.wav"))


class NoFoldersTests(unittest.TestCase):
    @inline
    async def test_play_and_record_need_their_folders(self) -> None:
        gateway = FakeCallGateway()
        base = serve_rest(self, gateway)
        for body, field in (({"callee": "1", "playFile": "hello.wav"}, "playFile"),
                            ({"callee": "1", "record": True}, "record")):
            reply = await request(self, base + "/call/startup", body)
            self.assertEqual(reply.status, 400)
            self.assertEqual(reply.json["field"], field)
            self.assertIn("configured", reply.json["error"])


class BodyTests(RestTestCase):
    @inline
    async def test_content_type_must_be_json(self) -> None:
        for content_type in (None, "text/plain", "application/x-www-form-urlencoded",
                             "application/jsonx"):
            reply = await self.post("/call/find_all", {}, content_type=content_type)
            self.assertEqual(self.assert_json(reply, 415)["error"],
                             "Content-Type must be application/json")
        reply = await self.post("/call/find_all", {},
                                content_type="Application/JSON; charset=utf-8")
        self.assert_json(reply, 200)

    @inline
    async def test_not_json_or_not_an_object(self) -> None:
        for raw in (b"", b"{", b"[]", b"null", b"\"x\"", b"{\"callId\": NaN}",
                    b"{\"callId\": \"a\", \"callId\": \"b\"}", b"\xff\xfe{}", b"[" * 100000):
            reply = await self.post("/call/hold", raw=raw)
            body = self.assert_json(reply, 400 if len(raw) <= restrules.MAX_BODY else 413)
            self.assertNotIn("field", body)

    @inline
    async def test_size_limit(self) -> None:
        limit = restrules.MAX_BODY
        body = json.dumps({"callId": "c1"}).encode()
        at_limit = body[:-1] + b" " * (limit - len(body)) + b"}"
        self.assertEqual(len(at_limit), limit)
        self.assert_json(await self.post("/call/hold", raw=at_limit), 200)
        over = body[:-1] + b" " * (limit - len(body) + 1) + b"}"
        reply = await self.post("/call/hold", raw=over)
        self.assertIn("larger than 65536", self.assert_json(reply, 413)["error"])

    @inline
    async def test_field_errors_of_the_call_methods(self) -> None:
        cases = [
            ("/call/terminate", {}, "callId"),
            ("/call/hold", {"callId": None}, "callId"),
            ("/call/unhold", {"callId": ["c1"]}, "callId"),
            ("/call/send_dtmf", {"callId": "c1"}, "dtmf"),
            ("/call/send_dtmf", {"callId": "c1", "dtmf": "12x"}, "dtmf"),
            ("/call/send_dtmf", {"callId": "c1", "dtmf": "1" * 65}, "dtmf"),
            ("/call/send_dtmf", {"callId": "c1", "dtmf": "1", "type": "INFO_RELAY"}, "type"),
            ("/call/send_dtmf", {"callId": "c1", "dtmf": "1", "type": "rfc2833"}, "type"),
            ("/call/transfer", {"callId": "c1"}, "target"),
            ("/call/transfer", {"callId": "c1", "target": "a b"}, "target"),
            ("/call/find", {"callId": ""}, "callId"),
            ("/call/find", {"caller": "a\nb"}, "caller"),
        ]
        for path, body, field in cases:
            self.assert_field_error(await self.post(path, body), field)
        self.assertEqual(self.gateway.log, [])


class AuthTests(RestTestCase):
    tokens = ("first-token", "second-token")

    @inline
    async def test_tokens(self) -> None:
        reply = await self.post("/call/find_all", {})
        self.assert_json(reply, 401)
        self.assertEqual(reply.header("www-authenticate"), 'Bearer realm="wcsgw"')
        for header in ("Bearer wrong", "Bearer first-token2", "Basic Zmlyc3QtdG9rZW4=",
                       "first-token", "Bearer "):
            reply = await self.post("/call/find_all", {}, headers={"authorization": header})
            self.assert_json(reply, 401)
            self.assertTrue(reply.header("www-authenticate").startswith("Bearer"))
        for header in ("Bearer first-token", "bearer second-token", "BEARER  second-token "):
            reply = await self.post("/call/find_all", {}, headers={"authorization": header})
            self.assert_json(reply, 200)
        self.assertEqual([m for m, _ in self.gateway.log], ["find_all"] * 3)

    @inline
    async def test_auth_comes_before_everything_but_the_route(self) -> None:
        """Without a token nothing about the request is judged (no 405/415/400 hints)."""
        for kwargs in ({"method": b"GET"}, {"content_type": "text/plain"}, {"raw": b"{"}):
            reply = await self.post("/call/find_all", {}, **kwargs)
            self.assertEqual(reply.status, 401, kwargs)
        self.assertEqual((await self.post("/nope", {})).status, 404)

    @inline
    async def test_document_is_public_and_says_bearer(self) -> None:
        reply = await self.post("/openapi.json", None, method=b"GET")
        doc = self.assert_json(reply, 200)
        self.assertEqual(doc["security"], [{"bearer": []}])
        self.assertEqual(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer")

    @inline
    async def test_every_token_is_compared(self) -> None:
        """No early exit: a right first token costs as many comparisons as a wrong one."""
        calls: list[tuple[bytes, bytes]] = []
        real = rest.hmac.compare_digest

        def counting(a: bytes, b: bytes) -> bool:
            calls.append((a, b))
            return real(a, b)

        self.patch(rest.hmac, "compare_digest", counting)
        await self.post("/call/find_all", {}, headers={"authorization": "Bearer first-token"})
        await self.post("/call/find_all", {}, headers={"authorization": "Bearer nope"})
        self.assertEqual(len(calls), 4)
        self.assertTrue(all(len(a) == len(b) == 32 for a, b in calls))  # digests, not tokens
