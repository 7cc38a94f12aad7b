"""A browser reaches the gateway's media over IPv6 (issue 12: "IPv6 as well as IPv4 toward
browsers"): Chromium in a namespace of its own, linked to the gateway by an IPv6-only wire,
calls the echo test line; the gateway tells it ``media.browser_address`` (an IPv6 address:
``c=IN IP6`` and an IPv6 host candidate), ICE proves that path, and the browser hears its
own tone back.

Why a namespace rather than ::1: Chromium gathers no IPv6 loopback candidate (on a host with
only ``lo`` it offers 127.0.0.1 alone, and ICE has no IPv6 pair to check), so the browser
needs an IPv6 interface of its own.  The media sockets bind ``::`` (dual-stack:
docs/configuration.md, ``[media]``): the browser side over IPv6, the SIP side toward the
test lines on ::1 (``media.sip_address``), the HTTP site on the wire's IPv6 address.  The
same dual-stack sockets still serve an IPv4 browser (the second test).
"""

from __future__ import annotations

import shutil

import attrs
from twisted.trial import unittest

from tests.e2e import Gateway, Phone, gateway_config
from tests.peers.chromium import Chromium, write_tone_wav
from tests.peers.netns import chromium_in, network_for, scratch_folder
from tests.support import assert_near, inline

GATEWAY6, BROWSER6 = "fd77::1", "fd77::2"


class Ipv6BrowserTests(unittest.TestCase):
    timeout = 120

    @inline
    async def test_echo_over_ipv6(self) -> None:
        net = network_for(self)  # removed last, after every peer
        browser_ns = net.namespace("browser6")
        # nodad: the addresses are usable at once (no duplicate detection on a private wire)
        net.link(browser_ns, "eth0", f"{BROWSER6}/64 nodad", None, f"gw6{net.serial}",
                 f"{GATEWAY6}/64 nodad")
        scratch = scratch_folder()
        self.addCleanup(shutil.rmtree, scratch, True)

        base = gateway_config()
        gateway = Gateway(attrs.evolve(
            base, http=attrs.evolve(base.http, listen=GATEWAY6),
            media=attrs.evolve(base.media, listen="::", browser_address=GATEWAY6,
                               sip_address="::1")))
        gateway.start()
        self.addCleanup(gateway.stop)
        host, port = gateway.top.getServiceNamed("http").address
        self.assertEqual(host, GATEWAY6)
        url = f"http://[{GATEWAY6}]:{port}/"
        browser = Chromium(
            fake_audio=write_tone_wav(self.mktemp() + ".wav", 440.0),
            executable=chromium_in(browser_ns, scratch),
            # plain HTTP off loopback is no secure context: no getUserMedia without this
            extra_args=(f"--unsafely-treat-insecure-origin-as-secure={url.rstrip('/')}",))
        await browser.start()
        self.addCleanup(browser.stop)
        phone = await Phone.open(browser, url)
        await phone.login()
        await phone.call("echo")
        await phone.wait_state("call-status", "established")
        [call] = gateway.calls.values()
        answer = call.browser_answer
        self.assertIn(f"c=IN IP6 {GATEWAY6}\r\n", answer)
        candidates = [line.split()[4] for line in answer.split("\r\n")
                      if line.startswith("a=candidate:")]
        self.assertEqual(set(candidates), {GATEWAY6})
        self.assertNotIn("::1", answer.replace(GATEWAY6, ""))  # the SIP side's address
        peak = await phone.received_frequency()
        assert_near(self, peak["frequency"], 440, 15)
        self.assertGreater(peak["level"], -60)
        # the path ICE proved is the IPv6 one
        self.assertEqual(call.leg.remote_address[0], BROWSER6)
        await phone.click("Hangup")
        await phone.wait_state("call-status", "finish")
        await gateway.testlines.wait_idle()
        await gateway.when_idle()
        self.assertEqual(gateway.calls, {})

    @inline
    async def test_ipv4_browser_on_dual_stack_sockets(self) -> None:
        """``media.listen = "::"`` still serves IPv4 browsers: the leg's socket is dual-stack,
        the browser's checks arrive IPv4-mapped and are answered there."""
        base = gateway_config()
        gateway = Gateway(attrs.evolve(base, media=attrs.evolve(
            base.media, listen="::", browser_address="127.0.0.1", sip_address="::1")))
        gateway.start()
        self.addCleanup(gateway.stop)
        browser = Chromium(fake_audio=write_tone_wav(self.mktemp() + ".wav", 440.0))
        await browser.start()
        self.addCleanup(browser.stop)
        phone = await Phone.open(browser, gateway.url)
        await phone.login()
        await phone.call("echo")
        await phone.wait_state("call-status", "established")
        [call] = gateway.calls.values()
        self.assertIn("c=IN IP4 127.0.0.1\r\n", call.browser_answer)
        peak = await phone.received_frequency()
        assert_near(self, peak["frequency"], 440, 15)
        self.assertGreater(peak["level"], -60)
        self.assertEqual(call.leg.remote_address[0], "::ffff:127.0.0.1")
        await phone.click("Hangup")
        await phone.wait_state("call-status", "finish")
        await gateway.testlines.wait_idle()
