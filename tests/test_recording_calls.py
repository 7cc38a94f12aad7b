"""Recording browser-to-phone calls, the call layer's half (wcsgw.calls.recording): when a
recording starts and stops, what the call object shows, which names path() serves, and the
config that moved (rest.recordings_folder -> recording.folder)."""

from __future__ import annotations

import os
import shutil
import tempfile
import wave
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import attrs
import numpy as np
from twisted.internet.task import Clock
from twisted.trial import unittest

from tests.quality import dominant
from tests.support import assert_near
from tests.test_api_methods import SESSION, MethodsTestCase
from tests.test_recording_writer import START, packets
from wcsgw.api import asking, jsonrpc
from wcsgw.calls import recording as recording_module
from wcsgw.calls.errors import CallError, Codes
from wcsgw.calls.hooks.replies import Decision
from wcsgw.calls.registry import CallRegistry
from wcsgw.calls.status import CallStatus
from wcsgw.config import ConfigError, load_config
from wcsgw.media.bridge import LegMedia, MediaBridge
from wcsgw.media.clock import ReactorClock


class FakeCall:
    """What Recordings reads of a call: ids, status, its bridge, its clock, on_status."""

    def __init__(self, call_id: str, session_id: str | None, clock: Clock) -> None:
        self.call_id = call_id
        self.session_id = session_id
        self.status = CallStatus.TRYING
        self.finished = False
        self.recording: str | None = None
        self.env = SimpleNamespace(clock=ReactorClock(clock))
        self.statuses: list[dict[str, Any]] = []
        self.on_status = self.statuses.append
        self.bridge = MediaBridge(LegMedia("opus", 111, 48000, ssrc=1),
                                  LegMedia("PCMU", 0, 8000, ssrc=2),
                                  lambda p: None, lambda p: None, now=START)

    def answer(self) -> None:
        self.status = CallStatus.ESTABLISHED
        self.on_status({"callId": self.call_id, "status": "ESTABLISHED", "recording": None})


class RecordingsTests(unittest.TestCase):
    def setUp(self) -> None:
        self.folder = Path(tempfile.mkdtemp()) / "state" / "recordings"
        self.addCleanup(shutil.rmtree, self.folder.parent.parent)
        self.clock = Clock()
        self.clock.advance(START)
        self.registry = CallRegistry()
        self.recordings = recording_module.Recordings(self.folder, self.registry, self.clock)
        self.call = FakeCall("c1", "s1", self.clock)
        self.registry.add(self.call)

    def finish(self, call: FakeCall) -> Any:
        """End ``call`` and wait for its recording's worker; its file's path."""
        worker = self.recordings._calls[call].worker
        call.status = CallStatus.FINISH
        self.registry.gone(call)
        self.assertTrue(worker.join(10))
        return self.folder / call.recording

    def test_the_folder_is_made_private(self) -> None:
        self.assertEqual(oct(self.folder.stat().st_mode & 0o777), "0o700")

    def test_asked_before_the_answer_starts_at_the_answer_and_stops_at_the_end(self) -> None:
        name = self.recordings.record("s1", "c1", True)
        self.assertRegex(name, recording_module.NAME_PATTERN)
        self.assertIsNone(self.call.recording)
        self.assertEqual(os.listdir(self.folder), [])  # no file before media
        self.call.answer()
        self.assertEqual(self.call.recording, name)
        self.assertEqual(self.call.statuses[-1]["recording"], name)  # the notification shows it
        for now, packet in packets("opus", 440, begin=START, seconds=1.0, ssrc=5, pt=111):
            self.call.bridge.from_webrtc(packet, now)
        for now, packet in packets("pcmu", 1000, begin=START, seconds=1.0, ssrc=6, pt=0):
            self.call.bridge.from_sip(packet, now)
        path = self.finish(self.call)
        with wave.open(str(path)) as w:
            self.assertEqual((w.getnchannels(), w.getframerate()), (2, 16000))
            frames = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)
        assert_near(self, dominant(frames[3200:14000, 0], 16000), 440, 5)
        assert_near(self, dominant(frames[3200:14000, 1], 16000), 1000, 5)
        self.assertEqual(oct(path.stat().st_mode & 0o777), "0o600")
        self.assertEqual([r["name"] for r in self.recordings.list()], [name])
        self.assertEqual(self.recordings.path(name), path)

    def test_stop_removes_the_taps_and_start_again_keeps_one_file(self) -> None:
        self.call.answer()
        name = self.recordings.record("s1", "c1", True)
        self.assertEqual(self.call.recording, name)
        self.assertIsNotNone(self.call.bridge._w2s.tap)
        self.assertIsNone(self.recordings.record("s1", "c1", False))
        self.assertIsNone(self.call.bridge._w2s.tap)
        self.assertIsNone(self.call.bridge._s2w.tap)
        self.assertEqual(self.recordings.record("s1", "c1", True), name)
        self.assertIsNotNone(self.call.bridge._s2w.tap)
        self.finish(self.call)
        self.assertEqual(os.listdir(self.folder), [name])

    def test_when_closed_waits_for_the_files(self) -> None:
        """What the service's stop waits for: every recording's file closed."""
        self.call.answer()
        self.recordings.record("s1", "c1", True)
        closed: list[None] = []
        self.recordings.when_closed().addCallback(closed.append)
        self.assertEqual(closed, [])
        self.finish(self.call)
        self.assertEqual(closed, [None])
        self.assertEqual((self.recordings.started, self.recordings.finished), (1, 1))

    def test_only_the_sessions_own_calls(self) -> None:
        for session, call_id in (("s2", "c1"), ("s1", "nope")):
            with self.assertRaises(CallError) as caught:
                self.recordings.record(session, call_id, True)
            self.assertEqual((caught.exception.code, caught.exception.field),
                             (Codes.UNKNOWN_CALL, "callId"))
        self.assertTrue(self.recordings.record(None, "c1", True))  # the operator: any call

    def test_all_calls_records_from_the_answer(self) -> None:
        self.recordings.all_calls = True
        call = FakeCall("c2", "s1", self.clock)
        self.registry.add(call)
        self.assertIsNone(call.recording)
        call.answer()
        self.assertRegex(call.recording, recording_module.NAME_PATTERN)
        self.finish(call)

    def test_the_file_is_created_exclusively(self) -> None:
        """A file already at the name (planted, or a clash) is never overwritten: the
        recording is refused, naming enable."""
        planted = "20260101T000000Z-0123456789abcdef.wav"
        (self.folder / planted).write_bytes(b"not ours")
        self.patch(recording_module.ids, "recording_name", lambda: planted)
        self.call.answer()
        with self.assertRaises(CallError) as caught:
            self.recordings.record("s1", "c1", True)
        self.assertEqual(caught.exception.field, "enable")
        self.assertEqual((self.folder / planted).read_bytes(), b"not ours")
        self.assertIsNone(self.call.recording)

    def test_path_serves_only_the_gateways_names_inside_the_folder(self) -> None:
        real = "20260101T000000Z-0123456789abcdef.wav"
        (self.folder / real).write_bytes(b"RIFF")
        outside = self.folder.parent / "secret.wav"
        outside.write_bytes(b"secret")
        link = "20260101T000000Z-fedcba9876543210.wav"
        os.symlink(outside, self.folder / link)
        self.assertEqual(self.recordings.path(real), self.folder / real)
        for name in ("..", "../secret.wav", str(outside), "/etc/passwd", "secret.wav", link,
                     "20260101T000000Z-0000000000000000.wav", "", real + "/"):
            with self.assertRaises(CallError, msg=name) as caught:
                self.recordings.path(name)
            self.assertEqual((caught.exception.code, caught.exception.field),
                             (Codes.INVALID, "name"))
        self.assertEqual([r["name"] for r in self.recordings.list()], [real])


class ConfigTests(unittest.TestCase):
    def test_the_old_rest_recordings_folder_is_refused_with_where_it_went(self) -> None:
        path = Path(tempfile.mkdtemp()) / "wcsgw.toml"
        self.addCleanup(shutil.rmtree, path.parent)
        path.write_text('[rest]\nrecordings_folder = "/var/lib/wcsgw/rec"\n')
        with self.assertRaises(ConfigError) as caught:
            load_config(str(path), environ={})
        message = str(caught.exception)
        self.assertNotIn("\n", message)
        self.assertTrue(message.startswith("rest.recordings_folder:"), message)
        self.assertIn("recording.folder", message)

    def test_the_old_environment_variable_too(self) -> None:
        with self.assertRaises(ConfigError) as caught:
            load_config(None, environ={"WCSGW_REST_RECORDINGS_FOLDER": "/var/lib/wcsgw/rec"})
        message = str(caught.exception)
        self.assertTrue(message.startswith("WCSGW_REST_RECORDINGS_FOLDER:"), message)
        self.assertIn("recording.folder", message)


class FakeRecordings:
    def __init__(self) -> None:
        self.asked: list[tuple[str | None, str, bool]] = []

    def record(self, session_id: str | None, call_id: str, enable: bool) -> str | None:
        self.asked.append((session_id, call_id, enable))
        if call_id != "c1":
            raise CallError(Codes.UNKNOWN_CALL, f"no call {call_id}", "callId")
        return "20260101T000000Z-0123456789abcdef.wav" if enable else None


class RpcTests(MethodsTestCase):
    def setUp(self) -> None:
        super().setUp()
        if not hasattr(self.gateway, "ladders"):  # (the fake gateway may not have it yet)
            self.gateway.ladders = None

    def test_record_and_stop_recording(self) -> None:
        self.gateway.recordings = fake = FakeRecordings()
        self.assertEqual(self.assertResult(self.rpc("record", {"callId": "c1"})),
                         {"recording": "20260101T000000Z-0123456789abcdef.wav"})
        self.assertEqual(self.assertResult(self.rpc("stopRecording", {"callId": "c1"})), {})
        self.assertError(self.rpc("record", {"callId": "c9"}), Codes.UNKNOWN_CALL, "callId")
        self.assertError(self.rpc("record", {}), jsonrpc.INVALID_PARAMS, "callId")
        self.assertEqual(fake.asked, [(SESSION, "c1", True), (SESSION, "c1", False),
                                      (SESSION, "c9", True)])  # always the session's own

    def test_without_recording_configured(self) -> None:
        self.gateway.recordings = None
        self.assertError(self.rpc("record", {"callId": "c1"}), Codes.INVALID, "callId")


class HookReplyTests(unittest.TestCase):
    """The ``call`` hook's reply ``record: true`` (wcsgw.api.asking)."""

    def test_the_reply_asks_and_the_call_is_recorded_once_placed(self) -> None:
        gateway = SimpleNamespace(recordings=FakeRecordings())
        args = {"call_id": "c1", "callee": "1002"}
        changed = asking.call_change(gateway, args, Decision(True, changes={"record": True}))
        self.assertIs(changed.pop("record"), True)
        self.assertEqual(changed, args)  # nothing else changed
        self.assertNotIn("record", asking.call_change(gateway, args, Decision(True)))
        asking.record_asked(gateway, "s1", "c1")
        self.assertEqual(gateway.recordings.asked, [("s1", "c1", True)])

    def test_without_recording_the_call_goes_on(self) -> None:
        asking.record_asked(SimpleNamespace(recordings=None), "s1", "c1")  # logged, no raise
        asking.record_asked(SimpleNamespace(recordings=FakeRecordings()), "s1", "c9")


class ServiceTests(unittest.TestCase):
    def test_a_folder_that_cannot_be_made_refuses_the_start_naming_the_key(self) -> None:
        from twisted.application.service import MultiService

        from wcsgw.calls.stores import make_recordings
        from wcsgw.config import Config, RecordingSettings

        root = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, root)
        (root / "a-file").write_text("not a folder")
        config = Config(recording=RecordingSettings(folder=str(root / "a-file" / "recordings")))
        gateway = SimpleNamespace(registry=CallRegistry(), when_idle=lambda: None,
                                  recordings=None)
        with self.assertRaises(ConfigError) as caught:
            make_recordings(config, gateway, MultiService())
        self.assertTrue(str(caught.exception).startswith("recording.folder: "), caught.exception)
        self.assertNotIn("\n", str(caught.exception))
        self.assertIsNone(gateway.recordings)
        # and the default, under state.folder, is made private
        config = Config(state=attrs.evolve(Config().state, folder=str(root / "state")))
        make_recordings(config, gateway, MultiService())
        self.assertEqual(gateway.recordings.folder, (root / "state" / "recordings").resolve())
        self.assertEqual(oct((root / "state" / "recordings").stat().st_mode & 0o777), "0o700")
