"""The caller's display name with real peers (issue 18, Deliver 5): a person types a Display
name in the Phone UI (headless Chromium), calls a baresip phone registered at Kamailio through
the gateway, and the phone sees that name as the caller's — the INVITE's From display name,
sent as ``sipVisibleName`` and put in From by the gateway.
"""

from __future__ import annotations

from twisted.trial import unittest

from tests.e2e import Phone, SipPhoneMixin
from tests.support import inline

#: with a quote and a backslash: quoted and escaped in From (RFC 3261 quoted-string)
NAME = 'Alice "A\\B" Example'


class DisplayNameTests(SipPhoneMixin, unittest.TestCase):
    @inline
    async def test_the_phone_sees_the_display_name(self) -> None:
        await self.start_pbx_and_phone(answermode="manual", codecs="PCMU")
        await self.start_browser()
        ui = await Phone.open(self.browser, self.gateway.url)
        await ui.fill("Display name", NAME)
        await ui.login(login="1001", password="pass1001", domain="127.0.0.1",
                       proxy="127.0.0.1", port=str(self.kam.port), register=True)
        mark = self.phone.mark()
        await ui.call("1002")
        incoming = await self.phone.wait_event("CALL_INCOMING", since=mark, timeout=30.0)
        # baresip reports the quoted-string's content as it came on the wire: the escapes show
        # that the name was quoted and escaped, not cut or sent raw.
        self.assertEqual(incoming["peerdisplayname"], r'Alice \"A\\B\" Example')
        self.assertEqual(incoming["peeruri"], "sip:1001@127.0.0.1")
        [call] = self.gateway.calls.values()
        self.assertEqual(call.describe()["visibleName"], NAME)
        await ui.click("Hangup")
        await ui.wait_state("call-status", "finish")
        await self.assert_clean()
