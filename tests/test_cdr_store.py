"""The call records' store (wcsgw.records) on a temporary SQLite file: written off the
reactor, found, exported, expired, bounded, flushed at stop; ``cdr.database`` checked."""

from __future__ import annotations

import csv
import io
import os
import socket
from typing import Any

from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from wcsgw.calls.cdr import iso_time
from wcsgw.config import ConfigError
from wcsgw.records.book import DAY, CallRecords
from wcsgw.records.export import flatten, to_csv
from wcsgw.records.opening import open_records
from wcsgw.records.service import RecordsService
from wcsgw.records.store import RecordStore

T0 = 1_796_000_000.0


def record(call_id: str, start: float, *, end: float | None = None, **extra: Any) -> dict[str, Any]:
    """A record in docs/contract.md's shape (the fields the store indexes, and nesting)."""
    out = {"callId": call_id, "sessionId": "s1", "appKey": "", "direction": "outgoing",
           "caller": "1001", "callee": "1002", "startTime": iso_time(start),
           "endTime": iso_time(end if end is not None else start + 10), "status": "FINISH",
           "stats": {"sip": {"packetsLost": 0, "mos": 4.3}, "browser": {"packetsLost": 2}},
           "media": {"sipCodec": "PCMU/8000", "mode": "relay", "video": None}}
    out.update(extra)
    return out


class StoreCase(unittest.TestCase):
    def setUp(self) -> None:
        self.folder = self.mktemp()
        self.now = T0
        self.records = open_records("", self.folder, reactor, retention_days=30)
        self.records.clock = lambda: self.now

    def started(self) -> CallRecords:
        self.records.start()
        self.addCleanup(self.records.stop, 5.0)
        return self.records


class FindTests(StoreCase):
    def test_default_is_a_sqlite_file_in_the_state_folder(self) -> None:
        self.assertTrue(os.path.isfile(os.path.join(self.folder, "cdr.sqlite")))

    @defer.inlineCallbacks
    def test_written_off_the_reactor_and_found_newest_first(self):
        records = self.started()
        for i in range(5):
            records.add(record(f"c{i}", T0 + i))
        found = yield records.find()
        self.assertEqual([r["callId"] for r in found], ["c4", "c3", "c2", "c1", "c0"])
        self.assertEqual(found[0], record("c4", T0 + 4))  # the whole record, as given
        by_id = yield records.find(call_id="c2")
        self.assertEqual([r["callId"] for r in by_id], ["c2"])
        window = yield records.find(since=T0 + 1, until=T0 + 3)
        self.assertEqual([r["callId"] for r in window], ["c2", "c1"])
        two = yield records.find(limit=2)
        self.assertEqual([r["callId"] for r in two], ["c4", "c3"])
        self.assertEqual(records.writer.written, 5)

    def test_bad_arguments_are_refused_before_anything_is_queued(self) -> None:
        for kwargs, field in (({"limit": 0}, "limit"), ({"limit": 1001}, "limit"),
                              ({"since": "yesterday"}, "since")):
            with self.assertRaises(ValueError) as caught:
                self.records.find(**kwargs)
            self.assertTrue(str(caught.exception).startswith(field))

    @defer.inlineCallbacks
    def test_csv_export_flattens_with_dots(self):
        records = self.started()
        records.add(record("c1", T0, tags=["a", "b"]))
        text = yield records.export_csv(call_id="c1")
        rows = list(csv.DictReader(io.StringIO(text)))
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0]["callId"], "c1")
        self.assertEqual(rows[0]["stats.sip.mos"], "4.3")
        self.assertEqual(rows[0]["stats.browser.packetsLost"], "2")
        self.assertEqual(rows[0]["media.video"], "")  # null: an empty cell
        self.assertEqual(rows[0]["tags"], '["a","b"]')

    def test_flatten_and_an_empty_export(self) -> None:
        self.assertEqual(flatten({"a": {"b": {"c": 1}}, "d": None}), {"a.b.c": 1, "d": None})
        header = to_csv([]).splitlines()[0]
        self.assertIn("callId", header.split(","))


class RetentionTests(StoreCase):
    @defer.inlineCallbacks
    def test_records_older_than_retention_go_at_start_and_daily(self):
        clock = task.Clock()
        self.records.reactor = clock  # the daily timer on a fake clock; results on the reactor
        self.records.writer.reactor = reactor
        self.records.add(record("old", T0 - 40 * DAY))
        self.records.add(record("young", T0 - 20 * DAY))
        service = RecordsService(self.records, clock, lambda: defer.succeed(None))
        service.startService()  # expires once at start
        found = yield self.records.find()
        self.assertEqual([r["callId"] for r in found], ["young"])
        self.now += 11 * DAY
        clock.advance(DAY)  # the next day's run: "young" is 31 days old now
        found = yield self.records.find()
        self.assertEqual(found, [])
        yield service.stopService()
        self.assertEqual(clock.getDelayedCalls(), [])

    @defer.inlineCallbacks
    def test_zero_keeps_everything(self):
        self.records.retention_days = 0
        records = self.started()
        records.add(record("ancient", T0 - 4000 * DAY))
        gone = yield records.expire()
        self.assertEqual(gone, 0)
        found = yield records.find()
        self.assertEqual(len(found), 1)


class QueueTests(StoreCase):
    @defer.inlineCallbacks
    def test_overflow_drops_and_counts_never_blocks(self):
        small = CallRecords(self.records.store, reactor, capacity=3)
        for i in range(5):  # the thread is not running yet: the queue fills up
            small.add(record(f"c{i}", T0 + i))
        self.assertEqual((small.writer.pending, small.writer.dropped), (3, 2))
        small.start()
        yield small.stop(5.0)
        self.assertEqual(small.writer.written, 3)
        store = RecordStore(self.records.store.engine.url)
        self.addCleanup(store.close)
        self.assertEqual(store.count(), 3)

    @defer.inlineCallbacks
    def test_stop_waits_for_the_calls_then_writes_their_records(self):
        """The calls' stop ends every call (BYE); their records arrive while the records'
        stop waits for the calls to be over, and are written before it fires."""
        self.records.start()
        calls_over: defer.Deferred[None] = defer.Deferred()
        service = RecordsService(self.records, reactor, lambda: calls_over)
        service.running = True
        stopped = service.stopService()
        self.assertFalse(stopped.called)
        for i in range(50):
            self.records.add(record(f"drained{i}", T0 + i))
        calls_over.callback(None)
        yield stopped
        store = RecordStore(self.records.store.engine.url)
        self.addCleanup(store.close)
        self.assertEqual(store.count(), 50)
        self.assertEqual(self.records.writer.dropped, 0)


    @defer.inlineCallbacks
    def test_a_failed_write_is_counted_logged_and_the_writer_goes_on(self):
        """A database error (here: the first batch) costs that batch, not the writer."""
        records = self.started()
        real, calls = records.store.write, []

        def flaky(batch: list) -> None:
            calls.append(len(batch))
            if len(calls) == 1:
                raise RuntimeError("database gone for a moment")
            real(batch)

        records.writer._write = flaky
        records.add(record("lost", T0))
        yield records.find()  # behind the failed write
        records.add(record("kept", T0 + 1))
        found = yield records.find()
        self.assertEqual([r["callId"] for r in found], ["kept"])
        self.assertEqual((records.writer.failed, records.writer.written), (1, 1))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


class DatabaseSettingTests(unittest.TestCase):
    def test_sqlite_url_folder_is_created(self) -> None:
        path = os.path.join(self.mktemp(), "sub", "c.sqlite")
        records = open_records(f"sqlite:///{path}", "unused", reactor)
        records.store.close()
        self.assertTrue(os.path.isfile(path))

    def test_bad_values_name_the_key_and_never_the_password(self) -> None:
        with socket.socket() as s:  # a port nothing listens on
            s.bind(("127.0.0.1", 0))
            closed = s.getsockname()[1]
        for value, says in (("mysql://u:topsecret@h/db", "unknown scheme"),
                            ("no url at all", "not a database URL"),
                            (f"postgresql://u:topsecret@127.0.0.1:{closed}/cdr", "cannot open"),
                            ("sqlite://", "needs a file")):
            with self.assertRaises(ConfigError) as caught:
                open_records(value, self.mktemp(), reactor)
            line = str(caught.exception)
            self.assertTrue(line.startswith("cdr.database: "), line)
            self.assertIn(says, line)
            self.assertNotIn("topsecret", line)
            self.assertNotIn("\n", line)


class PostgresStoreTests(unittest.TestCase):
    """The same store on a real PostgreSQL 15 (started by the suite: tests/peers/postgres.py)."""

    timeout = 60

    @defer.inlineCallbacks
    def setUp(self):
        from tests.peers.postgres import PostgreSQL, missing

        why = missing()
        if why is not None:
            raise unittest.SkipTest(why)
        self.pg = PostgreSQL()
        self.addCleanup(self.pg.stop)
        yield self.pg.start()

    @defer.inlineCallbacks
    def test_written_found_and_expired(self):
        self.now = T0
        records = open_records(self.pg.url, "unused", reactor, retention_days=30)
        records.clock = lambda: self.now
        records.start()
        self.addCleanup(records.stop, 5.0)
        for i, start in enumerate((T0 - 40 * DAY, T0 - 1, T0)):
            records.add(record(f"c{i}", start))
        found = yield records.find(since=T0 - 100)
        self.assertEqual([r["callId"] for r in found], ["c2", "c1"])
        self.assertEqual(found[0], record("c2", T0))
        gone = yield records.expire()
        self.assertEqual(gone, 1)
        text = yield records.export_csv(limit=10)
        self.assertEqual([row["callId"] for row in csv.DictReader(io.StringIO(text))],
                         ["c2", "c1"])

    def test_a_wrong_password_is_one_line_without_it(self) -> None:
        wrong = self.pg.url.replace(self.pg.password, "not-the-password-42")
        with self.assertRaises(ConfigError) as caught:
            open_records(wrong, "unused", reactor)
        line = str(caught.exception)
        self.assertTrue(line.startswith("cdr.database: cannot open "), line)
        self.assertIn("password authentication failed", line)
        self.assertNotIn("not-the-password-42", line)
        self.assertNotIn(self.pg.password, line)
