"""/metrics counts what the operations write off the event loop and may drop: call records
(wcsgw.records.writer) and recordings (wcsgw.calls.recording), so a record lost to a full
queue or a recording that failed shows on a dashboard, not only in a warning line."""

from __future__ import annotations

from types import SimpleNamespace

from twisted.trial import unittest

from wcsgw.api.metrics import render
from wcsgw.api.opsmetrics import ops_families


class OpsMetricsTests(unittest.TestCase):
    def test_records_and_recordings_by_result(self) -> None:
        writer = SimpleNamespace(written=7, dropped=2, failed=1)
        gateway = SimpleNamespace(cdr=SimpleNamespace(writer=writer),
                                  recordings=SimpleNamespace(started=3, finished=2, failed=1))
        text = render(ops_families(gateway)).decode()
        for line in ('wcsgw_cdr_records_total{result="written"} 7',
                     'wcsgw_cdr_records_total{result="dropped"} 2',
                     'wcsgw_cdr_records_total{result="failed"} 1',
                     'wcsgw_recordings_total{result="started"} 3',
                     'wcsgw_recordings_total{result="finished"} 2',
                     'wcsgw_recordings_total{result="failed"} 1',
                     "# TYPE wcsgw_cdr_records_total counter"):
            self.assertIn(line, text)

    def test_nothing_when_both_are_off(self) -> None:
        self.assertEqual(ops_families(SimpleNamespace(cdr=None, recordings=None)), [])

    def test_the_real_writer_and_recordings_have_the_counters(self) -> None:
        """The names read here are the ones the real objects keep (a rename there would
        otherwise only show as a failed collector at scrape time)."""
        from wcsgw.calls.recording import Recordings
        from wcsgw.records.writer import RecordWriter

        writer = RecordWriter(lambda batch: None, reactor=None)
        for name in ("written", "dropped", "failed"):
            self.assertEqual(getattr(writer, name), 0)
        registry = SimpleNamespace(watchers=[])
        recordings = Recordings(self.mktemp(), registry, reactor=None)
        for name in ("started", "finished", "failed"):
            self.assertEqual(getattr(recordings, name), 0)
