"""The operator's REST API driving real calls: /rest-api/call/* against Kamailio and baresip.

A call started with playFile is heard by the phone (by content), `record` captures what the
phone answers with, DTMF sent over REST reaches the phone by both methods, and the call can
be found, held and terminated.
"""

from __future__ import annotations

import json
import os
from io import BytesIO

import attrs
from twisted.internet import reactor, task
from twisted.trial import unittest
from twisted.web.client import Agent, FileBodyProducer, readBody
from twisted.web.http_headers import Headers

from tests.e2e import Gateway, gateway_config
from tests.peers.baresip import Baresip, write_tone
from tests.peers.chromium import write_tone_wav
from tests.peers.kamailio import Kamailio
from tests.support import assert_near, inline
from tests.test_e2e_sip_phone import dominant_hz
from wcsgw.config import RestSettings

TOKEN = "operator-secret"


class RestCallTests(unittest.TestCase):
    timeout = 120

    async def setup(self) -> Baresip:
        self.kam = Kamailio()
        self.addCleanup(self.kam.stop)
        await self.kam.start()
        self.media = os.path.abspath(self.mktemp())
        self.recordings = os.path.abspath(self.mktemp())
        os.makedirs(self.media)
        os.makedirs(self.recordings)
        write_tone_wav(os.path.join(self.media, "tone440.wav"), 440.0, seconds=3.0)
        config = attrs.evolve(
            gateway_config(allowed_domains=("127.0.0.1",), t1=0.1, t2=0.8),
            rest=RestSettings(tokens=(TOKEN,), media_folder=self.media,
                              recordings_folder=self.recordings))
        self.gateway = Gateway(config)
        self.gateway.start()
        self.addCleanup(self.gateway.stop)
        tone = write_tone(os.path.abspath(self.mktemp()) + ".wav", frequency=1000.0, rate=8000)
        self.phone = Baresip("1002", "pass1002", registrar_port=self.kam.port, codecs="PCMU",
                             tone=tone)
        self.addCleanup(self.phone.stop)
        await self.phone.start()
        await self.phone.registered()
        return self.phone

    async def rest(self, path: str, body: dict, token: str | None = TOKEN) -> tuple[int, object]:
        headers = Headers({b"content-type": [b"application/json"]})
        if token:
            headers.addRawHeader(b"authorization", f"Bearer {token}".encode())
        url = self.gateway.url + "rest-api/" + path
        response = await Agent(reactor).request(
            b"POST", url.encode(), headers, FileBodyProducer(BytesIO(json.dumps(body).encode())))
        return response.code, json.loads(await readBody(response))

    async def phone_digits(self, phone: Baresip, since: int, count: int) -> list[str]:
        """The next ``count`` digits the phone reports (CALL_DTMF_START), in order."""
        digits = []
        for _ in range(count):
            event = await phone.wait_event("CALL_DTMF_START", since=since)
            digits.append(event.get("param"))
            since = phone.events.index(event) + 1
        return digits

    def startup_body(self, **extra: object) -> dict:
        return {"callee": "1002", "sipLogin": "1001", "sipPassword": "pass1001",
                "sipDomain": "127.0.0.1", "sipOutboundProxy": "127.0.0.1",
                "sipPort": self.kam.port, **extra}

    @inline
    async def test_play_file_heard_and_answer_recorded(self) -> None:
        phone = await self.setup()
        code, reply = await self.rest("call/startup", self.startup_body(
            callId="rest-1", playFile="tone440.wav", record=True))
        self.assertEqual((code, reply), (200, {"callId": "rest-1"}))
        await phone.wait_event("CALL_ESTABLISHED")
        code, found = await self.rest("call/find", {"callId": "rest-1"})
        self.assertEqual(code, 200)
        self.assertEqual(found[0]["callee"], "1002")
        await task.deferLater(reactor, 2.5, lambda: None)  # the file plays; both sides record
        mark = phone.mark()
        self.assertEqual(await self.rest("call/terminate", {"callId": "rest-1"}), (200, {}))
        await phone.wait_event("CALL_CLOSED", since=mark)
        await self.gateway.when_idle()
        [heard] = phone.recordings()
        frequency, level = dominant_hz(heard)
        assert_near(self, frequency, 440, 10)
        self.assertGreater(level, 300)
        recorded = os.path.join(self.recordings, "rest-1.wav")
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
        self.assertEqual(await self.phone_digits(phone, mark, 3), ["1", "2", "#"])
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
