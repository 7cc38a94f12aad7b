"""A real call's record, end to end: headless Chromium calls the gateway's built-in test lines
(a real SIP service) and the call's record is read back from the database the gateway wrote —
SQLite by default, and PostgreSQL started by the suite (tests/peers/postgres.py) — and arrives
at the session's app as the signed ``cdr`` hook event (tests/peers/backend.py)."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

import attrs
from twisted.internet import defer
from twisted.trial import unittest

from tests import test_e2e_hooks
from tests.e2e import Gateway, Phone, gateway_config
from tests.peers.backend import Backend
from tests.peers.chromium import Chromium, aio, dominant_frequency, evaluate, write_tone_wav
from tests.peers.postgres import PostgreSQL, missing
from tests.support import assert_near, inline
from tests.test_hooks_backend import SECRET, assert_documented
from wcsgw.config.settings import AppSettings, CdrSettings, StateSettings
from wcsgw.records.store import RecordStore
from wcsgw.records.url import database_url


def seconds(record: dict[str, Any], field: str) -> float:
    return datetime.fromisoformat(record[field].replace("Z", "+00:00")).timestamp()


class CdrEndToEndCase(unittest.TestCase):
    timeout = 120

    async def start(self, cdr: CdrSettings, **config: Any) -> Gateway:
        self.state = os.path.abspath(self.mktemp())
        gateway = Gateway(attrs.evolve(gateway_config(), state=StateSettings(folder=self.state),
                                       cdr=cdr, **config))
        gateway.start()
        self.addCleanup(gateway.stop)
        self.browser = Chromium(fake_audio=write_tone_wav(self.mktemp() + "-mic.wav", 440.0))
        await self.browser.start()
        self.addCleanup(self.browser.stop)
        return gateway

    def assert_carried_audio(self, record: dict[str, Any], *, min_seconds: float) -> None:
        self.assertEqual(record["direction"], "outgoing")
        self.assertEqual(record["status"], "FINISH")
        self.assertGreaterEqual(record["duration"], min_seconds)
        self.assertLess(abs(record["duration"] - (seconds(record, "endTime")
                                                  - seconds(record, "answerTime"))), 0.002)
        self.assertLessEqual(seconds(record, "startTime"), seconds(record, "answerTime"))
        self.assertEqual(record["media"]["mode"], "relay")
        self.assertTrue(record["media"]["webrtcCodec"])
        self.assertTrue(record["media"]["sipCodec"])
        for leg in ("browser", "sip"):  # audio came from both sides, and went to both
            self.assertGreater(record["stats"][leg]["packetsReceived"], 0, record["stats"])
            self.assertGreater(record["stats"][leg]["packetsSent"], 0, record["stats"])


class SqliteAndHookTests(CdrEndToEndCase):
    @inline
    async def test_record_in_sqlite_and_signed_cdr_event(self) -> None:
        """A page with the Web SDK and an ``appKey`` (the backend sends its call to the echo
        line) talks, hangs up; the record is found through ``gateway.cdr``, is on disk in
        ``<state>/cdr.sqlite`` after the stop, and came to the backend signed, after the
        call's FINISH."""
        backend = Backend(SECRET)
        await backend.start()
        self.addCleanup(lambda: defer.ensureDeferred(backend.stop()))
        await backend.script(call={"body": {"callee": "echo"}})
        gateway = await self.start(CdrSettings(), apps=(
            AppSettings(hook_url=backend.url, secret=SECRET, key="shop", timeout=3.0),))
        page = await self.browser.new_page()
        await aio(page.goto(gateway.url + "health"))
        await evaluate(page, test_e2e_hooks.CALL_US_PAGE)
        await aio(page.get_by_role("button", name="Call us", exact=True).click())
        await aio(page.wait_for_function(
            "() => document.getElementById('state').textContent === 'established'",
            timeout=20_000))
        [call] = gateway.calls.values()
        peak = await dominant_frequency(page, "document.getElementById('remote').srcObject", 1500)
        assert_near(self, peak["frequency"], 440, 15)  # the echo line: our own voice
        await evaluate(page, "() => window.callUs.hangup()")
        await gateway.when_idle()

        [record] = await gateway.top.call_gateway.cdr.find(call_id=call.call_id)
        self.assert_carried_audio(record, min_seconds=1.0)
        self.assertEqual(record["callee"], "echo")
        self.assertEqual(record["endedBy"], "browser")
        self.assertEqual(record["appKey"], "shop")
        self.assertEqual(record["sessionId"], call.session_id)

        events = await backend.wait_events(lambda es: any(e["event"] == "cdr" for e in es))
        mine = [e["event"] for e in events if e.get("callId") == call.call_id]
        self.assertEqual(mine[-1], "cdr")
        self.assertEqual(mine[-2], "callStatus")
        [sent] = [e for e in events if e["event"] == "cdr"]
        self.assertTrue(sent["verified"])
        self.assertEqual({k: v for k, v in sent.items() if k not in ("event", "verified", "path")},
                         record)
        assert_documented(self, [sent])

        await gateway.stop()
        store = RecordStore(database_url("", self.state))
        self.addCleanup(store.close)
        self.assertEqual(store.find(call_id=call.call_id), [record])


class PostgresTests(CdrEndToEndCase):
    def setUp(self) -> None:
        why = missing()
        if why is not None:
            raise unittest.SkipTest(why)

    @inline
    async def test_record_of_a_call_the_stop_ended_is_in_postgresql(self) -> None:
        """The gateway stops during a call: the stop's BYE ends it ("gateway"), and its
        record is written to PostgreSQL before the stop completes."""
        pg = PostgreSQL()
        self.addCleanup(pg.stop)
        await pg.start()
        gateway = await self.start(CdrSettings(database=pg.url))
        phone = await Phone.open(self.browser, gateway.url)
        await phone.login()
        await phone.call("tone")
        await phone.wait_state("call-status", "established")
        peak = await phone.received_frequency()
        assert_near(self, peak["frequency"], 1000, 15)
        [call] = gateway.calls.values()
        await gateway.stop()

        store = RecordStore(database_url(pg.url, "unused"))
        self.addCleanup(store.close)
        [record] = store.find(call_id=call.call_id)
        self.assert_carried_audio(record, min_seconds=1.0)
        self.assertEqual(record["callee"], "tone")
        self.assertEqual(record["endedBy"], "gateway")
        self.assertEqual(record["appKey"], "")
        self.assertNotIn(pg.password, repr(gateway.config))
