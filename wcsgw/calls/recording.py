"""Recording browser-to-phone calls: one stereo WAV per call (docs/operations.md, Recordings).

Why here, beside the calls and not inside them: recording is something done *to* a call — asked
by its browser (JSON-RPC ``record``), an operator (REST ``/call/record``), the ``call`` hook's
reply (``record: true``) or ``[recording] all_calls`` — and the call code need not know.
:class:`Recordings` follows the calls as a registry watcher (:attr:`CallRegistry.watchers`),
starts a recording when the call is answered (or at once, when asked during the call), taps its
media bridge (:meth:`~wcsgw.media.bridge.MediaBridge.set_taps`) and stops at the call's end.
To see the answer without a hook in the call code it wraps the call's ``on_status`` callback
(the one its session hears), once, and only for calls it was asked to record.

The file is the gateway's: named by :func:`wcsgw.calls.ids.recording_name` (never a client's
id), created ``O_EXCL|O_NOFOLLOW`` mode 0600 in ``[recording] folder`` (mode 0700), written off
the event loop (:mod:`wcsgw.media.recordworker`).  One file per call: stopping and starting again
(``enable`` false, then true) leaves silence in between.  REST file calls
(:mod:`wcsgw.calls.filecall`) record themselves, mono, into the same folder under the same kind
of names; they are listed here too but not recorded twice.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from twisted.application.service import Service
from twisted.internet import defer
from twisted.logger import Logger

from wcsgw.calls import ids
from wcsgw.calls.errors import CallError, Codes
from wcsgw.calls.filecall import FileCall
from wcsgw.calls.status import CallStatus
from wcsgw.media.recordtap import RecordingTap

if TYPE_CHECKING:
    from wcsgw.media.recordworker import RecordingWorker
    from wcsgw.media.stereorecord import StereoRecorder

__all__ = ["Recordings", "RecordingsService", "NAME_PATTERN", "prepare_folder"]

log = Logger(namespace="wcsgw.calls")

#: the names the gateway makes (wcsgw.calls.ids.recording_name); nothing else is served
NAME_PATTERN = re.compile(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{16}\.wav")
_ANSWERED = (CallStatus.ESTABLISHED, CallStatus.HOLD)


def prepare_folder(folder: str | Path) -> Path:
    """The recordings folder, made (mode 0700, parents too) when missing; its resolved path."""
    path = Path(folder)
    if not path.is_dir():
        os.makedirs(path, mode=0o700, exist_ok=True)
    return path.resolve(strict=True)


@attrs.define(eq=False)
class _Recording:
    """One call's recording, from the request to the file's close."""

    call: Any
    name: str
    #: wanted now (enable true and not stopped since)
    on: bool = True
    tap: RecordingTap | None = None
    worker: RecordingWorker | None = None


class Recordings:
    """The gateway's call recordings (``gateway.recordings``; its interface is the one the REST
    API codes against).  ``reactor``: the worker threads' ends are handed to it
    (``callFromThread``)."""

    def __init__(self, folder: str | Path, registry: Any, reactor: Any, *,
                 all_calls: bool = False) -> None:
        self.folder = prepare_folder(folder)
        self.all_calls = all_calls
        self._reactor = reactor
        self._calls: dict[Any, _Recording] = {}
        #: recordings started / finished / that failed to start, since the gateway started
        self.started = 0
        self.finished = 0
        self.failed = 0
        registry.watchers.append(self)
        self._registry = registry
        self._writing: set[_Recording] = set()  # workers not done yet
        self._closed_waiters: list[defer.Deferred[None]] = []

    # -- the interface -----------------------------------------------------------------

    def record(self, session_id: str | None, call_id: str, enable: bool) -> str | None:
        """Start (``enable``) or stop recording the call ``call_id`` of session
        ``session_id`` (None: any, the operator).  Returns the file's name when recording is
        on — asked before the answer, the name it will have — and None when off."""
        call = self._registry.get(session_id, call_id)  # CallError UNKNOWN_CALL, callId
        if not enable:
            rec = self._calls.get(call)
            if rec is not None and rec.on:
                rec.on = False
                self._untap(rec)
                log.info("call {call_id}: recording {name} paused", call_id=call.call_id,
                         name=rec.name)
            return None
        self._check(call)
        return self._want(call, raise_errors=True)

    def list(self) -> list[dict[str, Any]]:
        """The recordings in the folder, newest first: ``{"name", "size", "modified"}``
        (bytes, epoch seconds)."""
        out = []
        with os.scandir(self.folder) as entries:
            for entry in entries:
                if not NAME_PATTERN.fullmatch(entry.name):
                    continue
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISREG(info.st_mode):
                    out.append({"name": entry.name, "size": info.st_size,
                                "modified": info.st_mtime})
        return sorted(out, key=lambda r: r["name"], reverse=True)

    def path(self, name: str) -> Path:
        """The path of the recording ``name``: a name the gateway made, of a regular file in
        the folder (never a symlink, never anything outside); CallError INVALID naming
        ``name`` otherwise."""
        if not NAME_PATTERN.fullmatch(name):
            raise CallError(Codes.INVALID, "name is not the name of a recording", "name")
        path = self.folder / name
        try:
            info = path.lstat()
        except OSError:
            info = None
        if info is None or not stat.S_ISREG(info.st_mode):
            raise CallError(Codes.INVALID, f"there is no recording {name}", "name")
        return path

    def when_closed(self) -> defer.Deferred[None]:
        """Fires once no recording is being written (every file closed)."""
        if not self._writing:
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()
        self._closed_waiters.append(d)
        return d

    # -- the registry's watcher ----------------------------------------------------------

    def call_started(self, call: Any) -> None:
        if self.all_calls and _recordable(call):
            self._want(call, raise_errors=False)

    def call_ended(self, call: Any) -> None:
        rec = self._calls.pop(call, None)
        if rec is None:
            return
        self._untap(rec)
        if rec.worker is not None:
            rec.worker.stop()  # writes the rest, closes the file, then _done

    # -- the work ------------------------------------------------------------------------

    def _check(self, call: Any) -> None:
        if not _recordable(call):
            raise CallError(Codes.INVALID, "only browser-to-phone calls are recorded this way "
                            "(a REST file call records with record at its start)", "enable")
        if call.finished or call.status.terminal:
            raise CallError(Codes.BAD_STATE, "the call has ended", "enable")

    def _want(self, call: Any, *, raise_errors: bool) -> str:
        rec = self._calls.get(call)
        if rec is None:
            rec = self._calls[call] = _Recording(call, ids.recording_name())
            self._follow(rec)
        rec.on = True
        if call.status in _ANSWERED and call.bridge is not None:
            if rec.worker is None:
                self._begin(rec, raise_errors)
            else:
                self._tap(rec)
        return rec.name

    def _follow(self, rec: _Recording) -> None:
        """Hear the call's statuses (its session's callback, wrapped): the answer starts a
        recording asked for before it."""
        call = rec.call
        inner = call.on_status

        def on_status(described: dict[str, Any]) -> None:
            try:
                if (rec.on and rec.worker is None and self._calls.get(call) is rec
                        and call.status in _ANSWERED and call.bridge is not None):
                    self._begin(rec, raise_errors=False)
                    described["recording"] = call.recording
            except Exception:  # noqa: BLE001 - a recording's bug must not cost the call its status
                log.failure("call {call_id}: starting its recording failed", call_id=call.call_id)
            inner(described)

        call.on_status = on_status

    def _begin(self, rec: _Recording, raise_errors: bool) -> None:
        # The codecs, numpy and the WAV writer: a recording's, not every start's (issue 19).
        from wcsgw.media.audiocodec import CodecError, make_codec
        from wcsgw.media.recordworker import RecordingWorker
        from wcsgw.media.stereorecord import StereoRecorder
        from wcsgw.media.wavrecord import create_new

        call = rec.call
        bridge = call.bridge
        try:
            left = make_codec(bridge.webrtc.codec, bridge.webrtc.clock_rate or None)
            try:
                right = make_codec(bridge.sip.codec, bridge.sip.clock_rate or None)
            except BaseException:
                left.close()
                raise
            file = create_new(self.folder, rec.name, 0o600)
            recorder = StereoRecorder(file, left, right, call.env.clock.now())
        except (CodecError, OSError, ValueError) as exc:
            self.failed += 1
            log.warn("call {call_id}: cannot record: {error}", call_id=call.call_id, error=str(exc))
            self._calls.pop(call, None)
            if raise_errors:
                raise CallError(Codes.INVALID, f"the call cannot be recorded: {exc}",
                                "enable") from None
            return
        rec.tap = RecordingTap()
        rec.worker = RecordingWorker(recorder, rec.tap.queue,
                                     lambda error: self._from_thread(rec, recorder, error),
                                     name=f"wcsgw-recording-{call.call_id}"[:64])
        rec.worker.start()
        self._writing.add(rec)
        self._tap(rec)
        call.recording = rec.name
        self.started += 1
        log.info("call {call_id}: recording {name} (stereo, {rate} Hz)", call_id=call.call_id,
                 name=rec.name, rate=recorder.rate)

    def _tap(self, rec: _Recording) -> None:
        bridge = rec.call.bridge
        if bridge is not None and rec.tap is not None:
            bridge.set_taps(rec.tap.from_webrtc, rec.tap.from_sip)

    def _untap(self, rec: _Recording) -> None:
        bridge = rec.call.bridge
        if bridge is not None:
            bridge.set_taps(None, None)

    def _from_thread(self, rec: _Recording, recorder: StereoRecorder,
                     error: BaseException | None) -> None:
        call_from_thread = getattr(self._reactor, "callFromThread", None)
        if call_from_thread is None:  # a test's Clock: the worker's end is told at once
            self._done(rec, recorder, error)
        else:
            call_from_thread(self._done, rec, recorder, error)

    def _done(self, rec: _Recording, recorder: StereoRecorder, error: BaseException | None) -> None:
        self.finished += 1
        self._writing.discard(rec)
        if not self._writing:
            waiters, self._closed_waiters = self._closed_waiters, []
            for d in waiters:
                d.callback(None)
        dropped = rec.tap.dropped if rec.tap is not None else 0
        if error is not None:
            log.error("call {call_id}: recording {name} failed: {error}",
                      call_id=rec.call.call_id, name=rec.name, error=repr(error))
            return
        log.info("call {call_id}: recording {name} done: {seconds:.1f} s, {dropped} packets "
                 "dropped", call_id=rec.call.call_id, name=rec.name, seconds=recorder.duration,
                 dropped=dropped)



class RecordingsService(Service):
    """At stop, waits (at most ``wait`` seconds) until the calls are over and every recording
    is closed: a gateway stopped mid-call still leaves finished files.  Added to the service
    tree before the calls' service, so it is asked to stop after it."""

    def __init__(self, recordings: Recordings, calls_over: Any, reactor: Any,
                 wait: float = 15.0) -> None:
        self.recordings = recordings
        self.calls_over = calls_over
        self.reactor = reactor
        self.wait = wait

    def stopService(self) -> defer.Deferred[None]:
        super().stopService()  # type: ignore[no-untyped-call]
        done: defer.Deferred[None] = self.calls_over()
        done.addCallback(lambda _: self.recordings.when_closed())
        done.addErrback(lambda failure: log.failure("recordings: waiting failed", failure))
        return done.addTimeout(self.wait, self.reactor).addErrback(lambda failure: None)


def _recordable(call: Any) -> bool:
    """A browser-to-phone call (a file call records itself)."""
    return not isinstance(call, FileCall) and hasattr(call, "bridge")
