"""Issue 10, item 1: recording names are the gateway's, never the caller's.

The probe from the issue goes through real HTTP to a whole gateway (REST on its own socket),
which calls its own test line ``echo`` over real SIP/RTP, so a call that is let through
really answers and really writes its recording.  What is checked:

* ``callId: "../outside/victim"`` (and an absolute path, and other shapes the one id check
  refuses) gets 400 naming ``callId``, and nothing is written outside the recordings folder;
* the same check guards ``sessionId`` in REST and ``callId`` in JSON-RPC ``call``;
* a symlink planted at the name the gateway picks is not followed (O_EXCL|O_NOFOLLOW): the
  call fails, the symlink's target is untouched;
* a legitimate ``record: true`` still produces a WAV, named in the call object's
  ``recording`` (a file name inside the folder, server-chosen).

Plus fast unit tests of the id check and of the exclusive file creation.
"""

from __future__ import annotations

import errno
import json
import os
import wave
from io import BytesIO
from pathlib import Path
from typing import Any

import attrs
from twisted.internet import defer, reactor
from twisted.trial import unittest
from twisted.web.client import Agent, FileBodyProducer, HTTPConnectionPool, readBody
from twisted.web.http_headers import Headers

from tests.e2e import Gateway, dominant_hz, gateway_config
from tests.peers.chromium import write_tone_wav
from tests.support import assert_near, deferred_sleep, inline
from wcsgw.config import RecordingSettings, RestSettings

TOKEN = "recording-test-token"


def _bodies(testlines_port: int, **extra: Any) -> dict[str, Any]:
    """A call/startup body: an account at the gateway's own test lines, calling ``echo``."""
    return {"callee": "echo", "sipLogin": "rest", "sipDomain": "127.0.0.1",
            "sipOutboundProxy": "127.0.0.1", "sipPort": testlines_port, **extra}


class RecordingGatewayCase(unittest.TestCase):
    """A whole gateway with REST (token, media and recordings folders) in a scratch tree:
    ``root/recordings`` is the recordings folder, ``root/outside`` is where an escape would
    land, ``root/media/tone440.wav`` the file played."""

    timeout = 60

    def setUp(self) -> None:
        self.root = Path(os.path.abspath(self.mktemp()))
        self.recordings = self.root / "recordings"
        self.outside = self.root / "outside"
        self.media = self.root / "media"
        for folder in (self.recordings, self.outside, self.media):
            folder.mkdir(parents=True)
        write_tone_wav(self.media / "tone440.wav", 440.0, seconds=3.0, rate=8000)
        config = attrs.evolve(
            gateway_config(allowed_domains=("127.0.0.1",), t1=0.1, t2=0.8),
            rest=RestSettings(tokens=(TOKEN,), media_folder=str(self.media)),
            recording=RecordingSettings(folder=str(self.recordings)))
        self.gateway = Gateway(config)
        self.gateway.start()
        self.addCleanup(self.gateway.stop)
        self.pool = HTTPConnectionPool(reactor, persistent=False)
        self.addCleanup(self.pool.closeCachedConnections)

    async def rest(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        headers = Headers({b"content-type": [b"application/json"],
                           b"authorization": [f"Bearer {TOKEN}".encode()]})
        response = await Agent(reactor, pool=self.pool).request(
            b"POST", (self.gateway.url + "rest-api/" + path).encode(), headers,
            FileBodyProducer(BytesIO(json.dumps(body).encode())))
        return response.code, json.loads(await readBody(response))

    def body(self, **extra: Any) -> dict[str, Any]:
        return _bodies(self.gateway.testlines.port, **extra)

    def everything_under(self, folder: Path) -> list[str]:
        return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))

    async def settle(self) -> None:
        """Every call the gateway still has is over (its BYE answered)."""
        await self.gateway.when_idle()


class TraversalProbeTests(RecordingGatewayCase):
    @inline
    async def test_probe_from_the_issue_is_refused_and_writes_nothing(self) -> None:
        probes = ["../outside/victim", str(self.outside / "victim"), "..", "a/b", "a\\..\\b",
                  "x\x00y", "line\nbreak", ".hidden", "x" * 200]
        for call_id in probes:
            code, reply = await self.rest("call/startup", self.body(
                callId=call_id, record=True, playFile="tone440.wav"))
            self.assertEqual(code, 400, (call_id, reply))
            self.assertEqual(reply.get("field"), "callId", (call_id, reply))
            self.assertIn("callId", reply["error"])
        self.assertEqual(self.gateway.calls, {})
        await self.settle()
        self.assertEqual(self.everything_under(self.outside), [])
        self.assertEqual(self.everything_under(self.recordings), [])
        self.assertEqual(sorted(p.name for p in self.root.iterdir()),
                         ["media", "outside", "recordings"])

    @inline
    async def test_play_file_symlink_escape_is_refused(self) -> None:
        """playFile keeps its inside-the-folder check on the *resolved* path: a symlink in
        the media folder pointing out of it (to a file or a folder) is refused."""
        write_tone_wav(self.outside / "secret.wav", 440.0, seconds=0.2, rate=8000)
        (self.media / "link.wav").symlink_to(self.outside / "secret.wav")
        (self.media / "linkdir").symlink_to(self.outside)
        for name in ("link.wav", "linkdir/secret.wav", "../outside/secret.wav",
                     str(self.outside / "secret.wav")):
            code, reply = await self.rest("call/startup", self.body(playFile=name))
            self.assertEqual((code, reply.get("field")), (400, "playFile"), (name, reply))
        self.assertEqual(self.gateway.calls, {})

    @inline
    async def test_rest_session_id_goes_through_the_same_check(self) -> None:
        code, reply = await self.rest("call/startup", self.body(sessionId="../../etc/passwd"))
        self.assertEqual((code, reply.get("field")), (400, "sessionId"), reply)
        code, reply = await self.rest("call/startup", self.body(sessionId="no-such-session"))
        self.assertEqual((code, reply.get("field")), (404, "sessionId"), reply)


class RecordingNameTests(RecordingGatewayCase):
    @inline
    async def test_legit_record_writes_a_wav_named_in_recording(self) -> None:
        code, reply = await self.rest("call/startup", self.body(
            callId="rec-1", record=True, playFile="tone440.wav"))
        self.assertEqual((code, reply), (200, {"callId": "rec-1"}))
        call = self.gateway.calls["rec-1"]
        established: defer.Deferred = defer.Deferred()
        if call.status.value == "ESTABLISHED":
            established.callback(None)
        else:
            previous = call.on_status

            def on_status(described: Any) -> None:
                previous(described)
                if call.status.value == "ESTABLISHED" and not established.called:
                    established.callback(None)

            call.on_status = on_status
        await established
        code, found = await self.rest("call/find", {"callId": "rec-1"})
        self.assertEqual(code, 200)
        name = found[0]["recording"]
        self.assertRegex(name, r"^\d{8}T\d{6}Z-[0-9a-f]{16}\.wav$")
        self.assertNotIn("rec-1", name)
        self.assertNotIn(str(self.recordings), json.dumps(found))  # no server path leaks
        await deferred_sleep(1.0)  # the echo line sends the played tone back: it is recorded
        self.assertEqual(await self.rest("call/terminate", {"callId": "rec-1"}), (200, {}))
        await self.settle()
        self.assertEqual(self.everything_under(self.recordings), [name])
        self.assertEqual(self.everything_under(self.outside), [])
        path = self.recordings / name
        self.assertFalse(path.is_symlink())
        with wave.open(str(path), "rb") as w:
            self.assertGreater(w.getnframes(), 4000)
        frequency, level = dominant_hz(path)
        assert_near(self, frequency, 440, 10)
        self.assertGreater(level, 300)

    @inline
    async def test_symlink_at_the_chosen_name_is_not_followed(self) -> None:
        from wcsgw.calls import ids

        target = self.outside / "precious.wav"
        target.write_bytes(b"operator data")
        planted = "20260101T000000Z-0123456789abcdef.wav"
        os.symlink(target, self.recordings / planted)
        self.patch(ids, "recording_name", lambda now=None: planted)
        code, reply = await self.rest("call/startup", self.body(
            callId="rec-2", record=True, playFile="tone440.wav"))
        self.assertEqual(code, 200, reply)
        call = self.gateway.calls["rec-2"]
        await self.settle()
        # The call was answered and failed when its recording could not be created.
        self.assertEqual(call.status.value, "FAILED")
        self.assertIn("server-side media failed", call.info)
        self.assertEqual(target.read_bytes(), b"operator data")
        self.assertTrue((self.recordings / planted).is_symlink())
        self.assertEqual(self.everything_under(self.recordings), [planted])


class _Listener:
    """A session listener that ignores what it hears."""

    def session_status(self, *args: Any) -> None:
        pass

    def call_status(self, call: Any) -> None:
        pass

    def notify(self, method: str, params: Any) -> None:
        pass


class IdCheckTests(unittest.TestCase):
    """The one id check (wcsgw.calls.ids.check_id), sans-IO."""

    def test_accepted(self) -> None:
        from wcsgw.calls.ids import check_id

        for value in ("c1", "rest-1", "a7f3c0de-1b2c-4d5e-8f90-0123456789ab", "x_y.z", "A:b@c",
                      "a.b", "1", "x" * 128, "gw-1+2=3~4"):
            self.assertEqual(check_id(value, "callId"), value)

    def test_refused_naming_the_field(self) -> None:
        from wcsgw.calls.errors import CallError, Codes
        from wcsgw.calls.ids import check_id, id_problem

        for value in ("", " ", "../x", "..", "a..b", "/abs", "a/b", "a\\b", "x\x00", "tab\t",
                      "é", "x" * 129, ".dot", "-dash", "a b", "%2e%2e"):
            self.assertIsNotNone(id_problem(value), repr(value))
            with self.assertRaises(CallError) as caught:
                check_id(value, "sessionId")
            self.assertEqual((caught.exception.code, caught.exception.field),
                             (Codes.INVALID, "sessionId"))
            self.assertIn("sessionId", caught.exception.message)
        for value in (None, 5, ["a"]):
            self.assertIsNotNone(id_problem(value))

    def test_recording_names_are_fresh_and_safe(self) -> None:
        from wcsgw.calls.ids import check_id, recording_name

        names = {recording_name(1_700_000_000.0) for _ in range(100)}
        self.assertEqual(len(names), 100)
        for name in names:
            self.assertTrue(name.startswith("20231114T221320Z-"), name)
            self.assertEqual(check_id(name, "recording"), name)

    def test_json_rpc_call_uses_the_check(self) -> None:
        from tests.test_api_fakes import FakeGateway
        from wcsgw.api import jsonrpc
        from wcsgw.api.methods import SessionMethods

        gateway = FakeGateway()
        gateway.open_session("s1", _Listener())
        methods = SessionMethods(gateway, "s1")
        frame = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "call", "params": {
            "callId": "../outside/victim", "callee": "echo", "sdp": "v=0"}})
        reply = json.loads(methods.handle(jsonrpc.parse_frame(frame)))
        self.assertEqual(reply["error"]["code"], jsonrpc.INVALID_PARAMS, reply)
        self.assertEqual(reply["error"]["data"], {"field": "callId"})


class ExclusiveCreateTests(unittest.TestCase):
    """wcsgw.media.wavrecord.create_new: O_CREAT|O_EXCL|O_NOFOLLOW inside the folder."""

    def setUp(self) -> None:
        self.folder = Path(os.path.abspath(self.mktemp()))
        self.folder.mkdir()

    def test_creates_a_new_file_inside(self) -> None:
        from wcsgw.media.wavrecord import create_new

        with create_new(self.folder, "a.wav") as f:
            f.write(b"x")
        self.assertEqual((self.folder / "a.wav").read_bytes(), b"x")
        with self.assertRaises(FileExistsError):
            create_new(self.folder, "a.wav")

    def test_refuses_symlinks_and_names_that_leave_the_folder(self) -> None:
        from wcsgw.media.wavrecord import create_new

        outside = Path(os.path.abspath(self.mktemp()))
        outside.mkdir()
        os.symlink(outside / "new.wav", self.folder / "dangling.wav")
        os.symlink(outside / "new.wav", self.folder / "dangling")
        for name in ("dangling.wav", "dangling"):
            with self.assertRaises(OSError) as caught:
                create_new(self.folder, name)
            self.assertIn(caught.exception.errno, (errno.EEXIST, errno.ELOOP))
        for name in ("../x.wav", "sub/x.wav", "/tmp/x.wav", "..", ".", ""):
            with self.assertRaises(ValueError):
                create_new(self.folder, name)
        self.assertEqual(list(outside.iterdir()), [])

    def test_a_folder_that_is_a_symlink_is_fine(self) -> None:
        from wcsgw.media.wavrecord import create_new

        alias = Path(os.path.abspath(self.mktemp()))
        os.symlink(self.folder, alias)
        with create_new(alias, "b.wav") as f:
            f.write(b"y")
        self.assertEqual((self.folder / "b.wav").read_bytes(), b"y")

    def test_recorder_writes_to_the_file_it_is_given(self) -> None:
        from wcsgw.media.wavrecord import WavRecorder, create_new

        recorder = WavRecorder(create_new(self.folder, "c.wav"), "PCMU")
        recorder.write(b"\xff" * 160, 0, seq=1)
        recorder.close()
        with wave.open(str(self.folder / "c.wav"), "rb") as w:
            self.assertEqual((w.getframerate(), w.getnframes()), (8000, 160))
