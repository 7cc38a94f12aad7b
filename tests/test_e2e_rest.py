"""The operator's REST API driving real calls: /rest-api/call/* against Kamailio and baresip.

A call started with playFile is heard by the phone (by content), `record` captures what the
phone answers with, DTMF sent over REST reaches the phone by both methods, and the call can
be found, held and terminated.
"""

from __future__ import annotations

import os

from twisted.trial import unittest

from tests.e2e import RestMixin, dominant_hz, phone_digits
from tests.support import assert_near, inline


class RestCallTests(RestMixin, unittest.TestCase):
    @inline
    async def test_play_file_heard_and_answer_recorded(self) -> None:
        phone = await self.setup()
        found = await self.play_and_record(phone, "rest-1")
        self.assertEqual(found[0]["callee"], "1002")
        recorded = os.path.join(self.recordings, found[0]["recording"])  # the gateway's name
        frequency, level = dominant_hz(recorded)
        assert_near(self, frequency, 1000, 10)
        self.assertEqual((await self.rest("call/find", {"callId": "rest-1"}))[0], 404)
        self.assertEqual(self.gateway.calls, {})

    @inline
    async def test_dtmf_both_methods_and_errors(self) -> None:
        phone = await self.setup()
        code, reply = await self.rest("call/startup", self.startup_body(callId="rest-2"))
        self.assertEqual(code, 200)
        await phone.wait_event("CALL_ESTABLISHED")
        mark = phone.mark()
        self.assertEqual(await self.rest("call/send_dtmf", {"callId": "rest-2", "dtmf": "12#"}),
                         (200, {}))
        self.assertEqual(await phone_digits(phone, mark, 3), ["1", "2", "#"])
        mark = phone.mark()
        self.assertEqual(await self.rest("call/send_dtmf",
                                         {"callId": "rest-2", "dtmf": "9*", "type": "INFO"}),
                         (200, {}))
        self.assertEqual(await phone_digits(phone, mark, 2), ["9", "*"])
        self.assertIn("application/dtmf-relay", phone.log_text())
        # Errors: unknown call 404, duplicate callId 409, bad token 401, bad field 400.
        self.assertEqual((await self.rest("call/hold", {"callId": "nope"}))[0], 404)
        self.assertEqual((await self.rest("call/startup", self.startup_body(callId="rest-2")))[0],
                         409)
        self.assertEqual((await self.rest("call/find_all", {}, token="wrong"))[0], 401)
        code, reply = await self.rest("call/send_dtmf", {"callId": "rest-2", "dtmf": "x"})
        self.assertEqual(code, 400)
        self.assertIn("dtmf", reply["error"])
        await self.rest("call/terminate", {"callId": "rest-2"})
        await self.gateway.when_idle()
