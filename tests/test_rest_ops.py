"""The REST operations (wcsgw.api.restops) over real HTTP against small stand-ins for the
gateway's ``cdr``, ``recordings`` and ``ladders`` (the interfaces the preamble of issue 16
fixes): every route's good answer, each field refused with 400 naming it, 401 without the
token, 503 while a feature is off, the CSV download, and recording downloads that never leave
the recordings folder whatever name the client sends."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any

from twisted.internet import defer

from tests.support import inline
from tests.test_api_rest import RestTestCase, request
from wcsgw.calls.cdr import iso_time
from wcsgw.calls.errors import CallError, Codes
from wcsgw.calls.sessions import Session
from wcsgw.sip.account import SipAccount

RECORDING = "20261207T171500Z-5f0c2a9e41b7d3c8.wav"  # the OpenAPI document's example
WAV_BYTES = b"RIFF" + b"\x00" * 4 + b"WAVEfmt " + bytes(range(256)) * 64


def record(call_id: str, start: float) -> dict[str, Any]:
    """A record in docs/contract.md's shape (times ISO 8601 UTC)."""
    return {"callId": call_id, "sessionId": None, "direction": "outgoing",
            "caller": "sip:1001@pbx.example.com", "callee": "1002",
            "startTime": iso_time(start), "endTime": iso_time(start + 5),
            "duration": 5.0, "endReason": "Normal call clearing", "endedBy": "browser",
            "sipStatus": 200, "stats": {"sip": {"mos": 4.3}}}


class FakeCdr:
    """``gateway.cdr``: find/export_csv over a list, answering through Deferreds."""

    def __init__(self) -> None:
        self.starts = {"c-old": 1_700_000_000.0, "c-new": 1_700_000_100.0}
        self.records = [record(call_id, start) for call_id, start in self.starts.items()]
        self.asked: list[dict[str, Any]] = []

    def _match(self, call_id: str | None, since: float | None, until: float | None,
               limit: int) -> list[dict[str, Any]]:
        self.asked.append({"call_id": call_id, "since": since, "until": until, "limit": limit})
        out = [r for r in reversed(self.records)
               if (call_id is None or r["callId"] == call_id)
               and (since is None or self.starts[r["callId"]] >= since)
               and (until is None or self.starts[r["callId"]] <= until)]
        return out[:limit]

    def find(self, *, call_id: str | None = None, since: float | None = None,
             until: float | None = None, limit: int = 100) -> defer.Deferred:
        return defer.succeed(self._match(call_id, since, until, limit))

    def export_csv(self, *, call_id: str | None = None, since: float | None = None,
                   until: float | None = None, limit: int = 100) -> defer.Deferred:
        rows = self._match(call_id, since, until, limit)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["callId", "startTime", "stats.sip.mos"])
        for r in rows:
            writer.writerow([r["callId"], r["startTime"], r["stats"]["sip"]["mos"]])
        return defer.succeed(out.getvalue())


class FakeRecordings:
    """``gateway.recordings`` over a real folder: only names it made (``made``) exist."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.made = {RECORDING}
        (folder / RECORDING).write_bytes(WAV_BYTES)
        self.asked: list[tuple[Any, ...]] = []

    def record(self, session_id: str | None, call_id: str, enable: bool) -> str | None:
        self.asked.append((session_id, call_id, enable))
        if call_id == "nope":
            raise CallError(Codes.UNKNOWN_CALL, "no such call", "callId")
        if call_id == "file-call":
            raise CallError(Codes.INVALID, "this call cannot be recorded", "enable")
        return "20261207T171600Z-00112233aabbccdd.wav" if enable else None

    def list(self) -> list[dict[str, Any]]:
        return [{"name": n, "size": (self.folder / n).stat().st_size,
                 "modified": (self.folder / n).stat().st_mtime} for n in sorted(self.made)]

    def path(self, name: str) -> Path:
        if name not in self.made or not (self.folder / name).is_file():
            raise CallError(Codes.INVALID, f"no recording {name}", "name")
        return self.folder / name


class FakeLadders:
    def __init__(self) -> None:
        self.asked: list[tuple[Any, ...]] = []

    def entries(self, session_id: str | None, call_id: str) -> list[dict[str, Any]]:
        self.asked.append((session_id, call_id))
        if call_id == "nope":
            raise CallError(Codes.UNKNOWN_CALL, "no such call", "callId")
        return [{"time": 1.0, "from": "gateway", "to": "sip", "label": "INVITE",
                 "text": "INVITE sip:1002@pbx.example.com SIP/2.0\r\n..."}]


class _Listener:
    def session_status(self, status: str, sip_status: int | None, info: str) -> None:
        pass

    def call_status(self, call: dict[str, Any]) -> None:
        pass


def equip(gateway: Any, recordings: Path) -> None:
    """Give a tests.test_api_rest.FakeCallGateway the operations' parts and one real
    session (on an account with a password that must never be shown)."""
    gateway.cdr = FakeCdr()
    gateway.recordings = FakeRecordings(recordings)
    gateway.ladders = FakeLadders()
    account = SipAccount(login="1001", password="s3cret-pass", domain="pbx.example.com")
    session = Session("s1", _Listener(), account=account, connected=True, peer="192.0.2.7")
    session.calls["c1"] = object()
    gateway.sessions = {"s1": session}


class OpsTestCase(RestTestCase):
    def setUp(self) -> None:
        super().setUp()
        equip(self.gateway, self.recordings)

    async def get(self, name: str, method: bytes = b"GET", **kwargs: Any) -> Any:
        return await request(self, f"{self.base}/recording/{name}", method=method,
                             content_type=None, **kwargs)


class CdrTests(OpsTestCase):
    @inline
    async def test_find_newest_first_with_filters_in_seconds(self) -> None:
        body = self.assert_json(await self.post("/cdr/find", {}), 200)
        self.assertEqual([r["callId"] for r in body], ["c-new", "c-old"])
        body = self.assert_json(await self.post("/cdr/find", {
            "callId": "c-old", "since": 1_600_000_000_000, "until": 1_800_000_000_000,
            "limit": 5}), 200)
        self.assertEqual([r["callId"] for r in body], ["c-old"])
        self.assertEqual(self.gateway.cdr.asked[-1], {"call_id": "c-old", "since": 1.6e9,
                                                      "until": 1.8e9, "limit": 5})
        self.assertEqual(self.gateway.cdr.asked[0]["limit"], 100)

    @inline
    async def test_bad_fields_are_named(self) -> None:
        for body, field in (({"since": "yesterday"}, "since"), ({"until": -1}, "until"),
                            ({"since": 1.5}, "since"), ({"limit": 0}, "limit"),
                            ({"limit": 1001}, "limit"), ({"limit": True}, "limit"),
                            ({"callId": "../x"}, "callId"), ({"callid": "c1"}, "callid")):
            for path in ("/cdr/find", "/cdr/export"):
                self.assert_field_error(await self.post(path, body), field)
        self.assertEqual(self.gateway.cdr.asked, [])

    @inline
    async def test_export_is_a_csv_attachment(self) -> None:
        reply = await self.post("/cdr/export", {"limit": 10})
        self.assertEqual(reply.status, 200, reply.raw)
        self.assertEqual(reply.header("content-type"), "text/csv; charset=utf-8")
        self.assertEqual(reply.header("content-disposition"), 'attachment; filename="cdr.csv"')
        rows = list(csv.reader(io.StringIO(reply.raw.decode())))
        self.assertEqual(rows[0], ["callId", "startTime", "stats.sip.mos"])
        self.assertEqual([r[0] for r in rows[1:]], ["c-new", "c-old"])

    @inline
    async def test_off(self) -> None:
        self.gateway.cdr = None
        for path in ("/cdr/find", "/cdr/export"):
            body = self.assert_json(await self.post(path, {}), 503)
            self.assertIn("call records are off", body["error"])


class RecordTests(OpsTestCase):
    @inline
    async def test_start_and_stop(self) -> None:
        body = self.assert_json(await self.post("/call/record", {"callId": "c1",
                                                                 "enable": True}), 200)
        self.assertEqual(body, {"recording": "20261207T171600Z-00112233aabbccdd.wav"})
        body = self.assert_json(await self.post("/call/record", {"callId": "c1",
                                                                 "enable": "false"}), 200)
        self.assertEqual(body, {"recording": None})
        self.assertEqual(self.gateway.recordings.asked, [(None, "c1", True), (None, "c1", False)])

    @inline
    async def test_refusals(self) -> None:
        self.assert_field_error(await self.post("/call/record", {"callId": "c1"}), "enable")
        self.assert_field_error(await self.post("/call/record", {"enable": True}), "callId")
        self.assert_field_error(await self.post("/call/record", {"callId": "c1",
                                                                 "enable": 1}), "enable")
        self.assert_field_error(await self.post("/call/record", {"callId": "nope",
                                                                 "enable": True}), "callId", 404)
        self.assert_field_error(await self.post("/call/record", {"callId": "file-call",
                                                                 "enable": True}), "enable")
        self.gateway.recordings = None
        self.assert_json(await self.post("/call/record", {"callId": "c1", "enable": True}), 503)


class RecordingFileTests(OpsTestCase):
    @inline
    async def test_list_and_download(self) -> None:
        body = self.assert_json(await self.post("/recording/find_all", {}), 200)
        self.assertEqual([(r["name"], r["size"]) for r in body], [(RECORDING, len(WAV_BYTES))])
        self.assertLess(abs(body[0]["modified"] - time.time()), 600)
        self.assert_field_error(await self.post("/recording/find_all", {"x": 1}), "x")
        reply = await self.get(RECORDING)
        self.assertEqual(reply.status, 200)
        self.assertEqual(reply.raw, WAV_BYTES)
        self.assertEqual(reply.header("content-type"), "audio/wav")
        self.assertEqual(reply.header("content-disposition"),
                         f'attachment; filename="{RECORDING}"')
        self.assertEqual(reply.header("cache-control"), "no-store")
        head = await self.get(RECORDING, method=b"HEAD")
        self.assertEqual((head.status, head.raw), (200, b""))
        self.assertEqual(head.header("content-length"), str(len(WAV_BYTES)))

    @inline
    async def test_names_never_leave_the_folder(self) -> None:
        secret = self.recordings.parent / "secret.wav"
        secret.write_bytes(b"SECRET" * 10)
        (self.recordings / "stray.wav").write_bytes(b"STRAY")  # there, but not the gateway's
        for name in ("..", "%2E%2E", "..%2Fsecret.wav", "%2Fetc%2Fpasswd", "a%2Fb.wav",
                     "%2E%2E%2Fsecret.wav", ".hidden.wav", "x%00.wav", "x.txt",
                     str(secret).replace("/", "%2F")):
            reply = await self.get(name)
            self.assertEqual(reply.status, 400, name)
            self.assertEqual(reply.json["field"], "name", name)
            self.assertNotIn(b"SECRET", reply.raw)
        for name in ("stray.wav", "20991231T000000Z-0000000000000000.wav"):
            reply = await self.get(name)
            self.assertEqual(reply.status, 404, name)
            self.assertEqual(reply.json["field"], "name")
        # "../x" written in the URL is resolved by the client; the server sees its own path
        reply = await request(self, f"{self.base}/recording/a/b.wav", method=b"GET",
                              content_type=None)
        self.assertEqual(reply.status, 404)

    @inline
    async def test_method_and_off(self) -> None:
        reply = await self.post(f"/recording/{RECORDING}", {})
        self.assertEqual(reply.status, 405)
        self.assertEqual(reply.header("allow"), "GET, HEAD")
        self.gateway.recordings = None
        self.assertEqual((await self.get(RECORDING)).status, 503)
        self.assertEqual((await self.post("/recording/find_all", {})).status, 503)


class LadderAndSessionTests(OpsTestCase):
    @inline
    async def test_ladder(self) -> None:
        body = self.assert_json(await self.post("/call/ladder", {"callId": "c1"}), 200)
        self.assertEqual(body[0]["label"], "INVITE")
        self.assertEqual(self.gateway.ladders.asked, [(None, "c1")])
        self.assert_field_error(await self.post("/call/ladder", {"callId": "nope"}), "callId",
                                404)
        self.assert_field_error(await self.post("/call/ladder", {}), "callId")
        self.gateway.ladders = None
        self.assert_json(await self.post("/call/ladder", {"callId": "c1"}), 503)

    @inline
    async def test_sessions_show_no_password(self) -> None:
        reply = await self.post("/session/find_all", {})
        body = self.assert_json(reply, 200)
        self.assertEqual(body, [{
            "sessionId": "s1", "state": "connected", "peer": "192.0.2.7",
            "account": "sip:1001@pbx.example.com", "accountName": None, "appKey": None,
            "registration": None, "calls": ["c1"]}])
        self.assertNotIn(b"s3cret", reply.raw)
        self.assert_field_error(await self.post("/session/find_all", {"all": True}), "all")


class TokenTests(OpsTestCase):
    tokens = ("ops-token",)

    @inline
    async def test_every_route_wants_the_token(self) -> None:
        for path in ("/cdr/find", "/cdr/export", "/call/record", "/call/ladder",
                     "/recording/find_all", "/session/find_all"):
            reply = await self.post(path, {"callId": "c1", "enable": True})
            self.assertEqual(reply.status, 401, path)
        for headers in (None, {"authorization": "Bearer wrong"}):
            reply = await self.get(RECORDING, headers=headers)
            self.assertEqual(reply.status, 401)
            self.assertNotIn(b"RIFF", reply.raw)
        reply = await self.get(RECORDING, headers={"authorization": "Bearer ops-token"})
        self.assertEqual((reply.status, reply.raw), (200, WAV_BYTES))
        self.assertEqual(self.gateway.cdr.asked, [])

