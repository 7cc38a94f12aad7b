"""The start-up banner (wcsgw.api.banner): what ``make run`` shows is the gateway's own log,
so it must be the truth — the configured scheme and host, the port the kernel picked when 0
was asked, the SIP ports and the media range.  Pure lines first, then real twistd processes.
"""

from __future__ import annotations

import os
import re
import signal
import urllib.request
from pathlib import Path

from twisted.internet import task

from tests.peers.ports import free_port
from tests.peers.testca import make_ca
from tests.support import inline
from tests.test_twistd import START_TIMEOUT, Gateway, TwistdTestCase, _reactor, _write
from wcsgw.api.banner import banner_lines
from wcsgw.config import parse_config

REPO = Path(__file__).resolve().parent.parent
UI = re.compile(r"Phone UI: (https?)://127\.0\.0\.1:(\d+)/")


class BannerLinesTests(TwistdTestCase):
    def test_plain_http_with_the_bound_ports(self) -> None:
        config = parse_config({"media": {"port_min": 30000, "port_max": 30099}})
        self.assertEqual(banner_lines(config, 41234, 5062, 0), [
            "Phone UI: http://127.0.0.1:41234/",
            "admin page: http://127.0.0.1:41234/admin",
            "SIP: 127.0.0.1:5062 (UDP+TCP)",
            "media: 127.0.0.1 UDP ports 30000-30099",
        ])

    def test_https_wildcards_sip_tls_and_browser_port(self) -> None:
        config = parse_config({
            "http": {"listen": "::", "tls_cert": "a.pem", "tls_key": "a.key"},
            "sip": {"listen": "0.0.0.0"},
            "media": {"browser_port": 3479},
            "rest": {"tokens": ["t" * 32]},  # a non-loopback site needs one
        })
        lines = banner_lines(config, 8443, 5060, 5061)
        self.assertEqual(lines[0], "Phone UI: https://[::1]:8443/")
        self.assertEqual(lines[1], "admin page: https://[::1]:8443/admin")
        self.assertEqual(lines[2], "SIP: 127.0.0.1:5060 (UDP+TCP), TLS 127.0.0.1:5061")
        self.assertIn("browser legs on UDP+TCP 3479", lines[3])


class BannerProcessTests(TwistdTestCase):
    async def banner(self, config_text: str) -> tuple[Gateway, str]:
        """Start ``twistd -n wcsgw`` on ``config_text``; its output once the banner's last
        line (media) is out."""
        folder = self.tmpdir()
        path = _write(folder, "wcsgw.toml", config_text)
        gateway = Gateway(self, ["-n", "--pidfile=", "--logfile=-", "wcsgw", "--config", path],
                          cwd=folder)
        reactor = _reactor()
        deadline = reactor.seconds() + START_TIMEOUT
        while "media: " not in gateway.output:
            if gateway.proc.poll() is not None or reactor.seconds() > deadline:
                raise AssertionError(f"no start-up banner:\n{gateway.output}")
            await task.deferLater(reactor, 0.1, lambda: None)
        return gateway, gateway.output

    async def stop(self, gateway: Gateway) -> None:
        os.killpg(gateway.proc.pid, signal.SIGTERM)
        await gateway.wait_exit()
        self.assertNotIn("Traceback", gateway.output)

    @inline
    async def test_port_zero_shows_the_real_port_and_the_media_range(self) -> None:
        sip_port = free_port("udp+tcp")
        gateway, out = await self.banner(
            f'[http]\nport = 0\n[sip]\nport = {sip_port}\n'
            '[media]\nport_min = 31000\nport_max = 31199\n')
        found = UI.search(out)
        assert found is not None, out
        scheme, port = found.group(1), int(found.group(2))
        self.assertEqual(scheme, "http")
        self.assertNotEqual(port, 0)
        self.assertIn(f"admin page: http://127.0.0.1:{port}/admin", out)
        self.assertIn(f"SIP: 127.0.0.1:{sip_port} (UDP+TCP)", out)
        self.assertIn("media: 127.0.0.1 UDP ports 31000-31199", out)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as reply:
            self.assertEqual(reply.status, 200)  # the URL shown is the one that answers
        await self.stop(gateway)

    @inline
    async def test_https_config_shows_https(self) -> None:
        cert, key = make_ca(self.tmpdir()).issue(["127.0.0.1"], self.tmpdir())
        http_port, sip_port = free_port("tcp"), free_port("udp+tcp")
        gateway, out = await self.banner(
            f'[http]\nport = {http_port}\ntls_cert = "{cert}"\ntls_key = "{key}"\n'
            f'[sip]\nport = {sip_port}\n')
        self.assertIn(f"Phone UI: https://127.0.0.1:{http_port}/", out)
        self.assertNotIn("http://127.0.0.1", out)
        await self.stop(gateway)


class MakeRunTests(TwistdTestCase):
    def test_make_run_prints_no_address_of_its_own(self) -> None:
        """The gateway's banner is the one source: the Makefile's ``run`` recipe names no URL
        or port that a config could make false."""
        makefile = (REPO / "Makefile").read_text()
        recipe = re.search(r"^run:.*\n((?:\t.*\n)+)", makefile, re.M)
        assert recipe is not None
        self.assertIn("twistd -n", recipe.group(1))
        self.assertNotRegex(recipe.group(1), r"https?://|:8080")

    def test_local_config_is_ignored_by_git(self) -> None:
        """``make run`` reads ./wcsgw.toml: an operator's local config (tokens, passwords)
        must never be committed by accident."""
        ignored = (REPO / ".gitignore").read_text().splitlines()
        self.assertIn("/wcsgw.toml", ignored)
