"""The thread that turns a recorded call's tapped packets into its WAV file.

Why a thread of its own per recording, off the event loop: decoding (Opus, G.722 ...) and
writing cost milliseconds that the loop, which carries every call's packets, cannot spare;
the codecs and the resampler are ctypes calls that release the GIL, so the loop keeps running
while they work.  The thread drains the tap's queue (:mod:`wcsgw.media.recordtap`) into a
:class:`~wcsgw.media.stereorecord.StereoRecorder` and writes every ``interval`` seconds (the
file's header is rewritten each time).  :meth:`RecordingWorker.stop` lets it write what is
left, close the file and call ``on_done`` — from the worker thread: the owner hands that on
to its event loop (``reactor.callFromThread``).
"""

from __future__ import annotations

import queue
import threading
from typing import TYPE_CHECKING, Callable

from wcsgw.media.recordtap import TapItem

if TYPE_CHECKING:  # numpy: the recording's code, not every start's
    from wcsgw.media.stereorecord import StereoRecorder

__all__ = ["RecordingWorker"]

OnDone = Callable[[BaseException | None], None]


class RecordingWorker:
    """Drains ``items`` into ``recorder`` on a daemon thread until :meth:`stop`."""

    def __init__(self, recorder: StereoRecorder, items: "queue.Queue[TapItem]", on_done: OnDone,
                 *, interval: float = 0.5, name: str = "wcsgw-recording") -> None:
        self.recorder = recorder
        self._items = items
        self._on_done = on_done
        self._interval = interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Write what is queued, close the file; returns at once (``on_done`` says when)."""
        self._stopping.set()

    def join(self, timeout: float | None = None) -> bool:
        """For tests and shutdown: wait for the thread; True when it has ended."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        error: BaseException | None = None
        recorder, items = self.recorder, self._items
        try:
            while True:
                # (set: stop now, after draining what came before)
                stopping = self._stopping.wait(self._interval)
                try:
                    while True:
                        recorder.add(*items.get_nowait())
                except queue.Empty:
                    pass
                if stopping:
                    break
                recorder.advance()
        except BaseException as exc:  # noqa: BLE001 - reported to the owner, who logs it
            error = exc
        finally:
            try:
                recorder.close()
            except BaseException as exc:  # noqa: BLE001
                error = error or exc
            self._on_done(error)
