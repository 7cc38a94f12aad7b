"""Two sides, two addresses (issue 12): what browsers are told (``media.browser_address``) and
what the SIP side is told (``media.sip_address``), each apart from what sockets bind to.

The config half checks the keys refuse bad addresses with one line naming the key; the call
half (below, on the socketless fakes of tests/call_fakes.py) checks that every SDP toward one
side carries that side's address and never the other's."""

from __future__ import annotations

from typing import Any

from twisted.trial import unittest

from wcsgw.calls.addresses import sendable
from wcsgw.config import Config, ConfigError, parse_config

PUBLIC, PRIVATE = "203.0.113.7", "10.0.0.7"
PUBLIC6 = "2001:db8::7"


def media(**keys: Any) -> Config:
    return parse_config({"media": keys})


def media_error(**keys: Any) -> str:
    try:
        media(**keys)
    except ConfigError as exc:
        message = str(exc)
        assert "\n" not in message
        return message
    raise AssertionError(f"{keys} was accepted")


class ConfigTests(unittest.TestCase):
    def test_defaults_are_as_before(self) -> None:
        """Both empty: each side is told media.advertised_address, else the listen address."""
        self.assertEqual((Config().media.browser_host, Config().media.sip_host),
                         ("127.0.0.1", "127.0.0.1"))
        old = media(listen="0.0.0.0", advertised_address=PUBLIC).media
        self.assertEqual((old.browser_host, old.sip_host), (PUBLIC, PUBLIC))
        wildcard = media(listen="0.0.0.0").media
        self.assertEqual((wildcard.browser_host, wildcard.sip_host), ("127.0.0.1", "127.0.0.1"))

    def test_each_side_its_own(self) -> None:
        m = media(listen="0.0.0.0", advertised_address="192.0.2.1",
                  browser_address=PUBLIC, sip_address=PRIVATE).media
        self.assertEqual((m.browser_host, m.sip_host), (PUBLIC, PRIVATE))
        self.assertEqual(media(browser_address=PUBLIC).media.sip_host, "127.0.0.1")

    def test_ipv6_toward_browsers(self) -> None:
        self.assertEqual(media(listen="::", browser_address="[2001:DB8:0::7]").media.browser_host,
                         PUBLIC6)  # brackets dropped, one canonical spelling
        self.assertEqual(media(listen="::1", browser_address="::1").media.browser_host, "::1")

    def test_bad_addresses_name_the_key(self) -> None:
        for key in ("browser_address", "sip_address"):
            for bad in ("gw.example.com", "0.0.0.0", "::", "224.0.0.1", "fe80::1%eth0",
                        "10.0.0.300", 7):
                message = media_error(listen="::", **{key: bad})
                self.assertTrue(message.startswith(f"media.{key}"), message)

    def test_family_the_sockets_cannot_receive(self) -> None:
        message = media_error(listen="0.0.0.0", browser_address=PUBLIC6)
        self.assertTrue(message.startswith("media.browser_address"), message)
        self.assertIn("IPv6", message)
        message = media_error(listen="::1", sip_address=PRIVATE)
        self.assertTrue(message.startswith("media.sip_address"), message)
        # "::" binds dual-stack sockets: both families
        m = media(listen="::", browser_address=PUBLIC6, sip_address=PRIVATE).media
        self.assertEqual((m.browser_host, m.sip_host), (PUBLIC6, PRIVATE))

    def test_environment_override(self) -> None:
        from wcsgw.config import load_config

        config = load_config(None, {"WCSGW_MEDIA_BROWSER_ADDRESS": PUBLIC,
                                    "WCSGW_MEDIA_SIP_ADDRESS": PRIVATE})
        self.assertEqual((config.media.browser_host, config.media.sip_host), (PUBLIC, PRIVATE))


class SendableTests(unittest.TestCase):
    def test_ipv4_on_a_dual_stack_socket_is_mapped(self) -> None:
        self.assertEqual(sendable("192.0.2.5", "::"), "::ffff:192.0.2.5")
        self.assertEqual(sendable("2001:db8::5", "::"), "2001:db8::5")
        self.assertEqual(sendable("192.0.2.5", "0.0.0.0"), "192.0.2.5")
        self.assertEqual(sendable("pbx.example", "::"), "pbx.example")
