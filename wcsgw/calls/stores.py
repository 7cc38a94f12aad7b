"""What a gateway keeps beyond a call's life, built from config: its call records (CDR) and its
recordings, each with the service that drains it at stop.  Apart from wcsgw.service so that the
tree builder stays a list of parts.
"""

from __future__ import annotations

from typing import Any

from twisted.application.service import MultiService

from wcsgw.config import Config, ConfigError

__all__ = ["make_call_records", "make_recordings"]


def make_call_records(config: Config, gateway: Any, parent: MultiService) -> None:
    """The call records (docs/operations.md): ``gateway.cdr``, a watcher filing each ended
    call, and their service — before the calls' in ``parent``, so twistd stops it after the
    calls' stop ended every call (it then waits for them, and writes their records)."""
    from twisted.internet import reactor

    from wcsgw.calls.cdr import CdrWatcher
    from wcsgw.records.opening import open_records
    from wcsgw.records.service import RecordsService

    gateway.cdr = open_records(config.cdr.database, config.state.folder, reactor,
                               retention_days=config.cdr.retention_days)
    gateway.registry.watchers.append(CdrWatcher(gateway, gateway.cdr))
    RecordsService(gateway.cdr, reactor, gateway.when_idle).setServiceParent(parent)  # type: ignore[no-untyped-call]


def make_recordings(config: Config, gateway: Any, parent: MultiService) -> None:
    """``gateway.recordings`` (wcsgw.calls.recording): its folder made now (mode 0700), so a
    folder that cannot be is a one-line refusal to start, not a failed recording later."""
    import os

    from twisted.internet import reactor

    from wcsgw.calls.recording import Recordings, RecordingsService

    folder = config.recording.folder or os.path.join(config.state.folder, "recordings")
    try:
        gateway.recordings = Recordings(folder, gateway.registry, reactor,
                                        all_calls=config.recording.all_calls)
    except OSError as exc:
        key = "recording.folder" if config.recording.folder else "state.folder"
        raise ConfigError(key, f"cannot be used for recordings: {exc.strerror or exc}") from None
    # before the calls' service: asked to stop after it, it waits for the files to close
    RecordingsService(gateway.recordings, gateway.when_idle, reactor).setServiceParent(parent)  # type: ignore[no-untyped-call]
