"""A failed registration says why, once, at warn: the AOR (never the password), where the
REGISTER went, and what to check (wcsgw/sip/registrationlog.py, wcsgw/sip/registrations.py).

The texts are checked on the pure function for every kind of failure; then for real: a wrong
password at a real Kamailio (401), a TCP port nobody listens on (connection refused), a UDP
one (no answer: the timeout, with short RFC 3261 timers) and a registrar name that does not
resolve.
"""

from __future__ import annotations

from twisted.trial import unittest

from tests.peers.kamailio import Kamailio
from tests.peers.ports import free_port
from tests.support import EventLog, inline
from tests.test_logs import Capture
from wcsgw.config import Account, SipSettings
from wcsgw.sip.events import RegistrationFailed
from wcsgw.sip.registrationlog import failure_fields, failure_text
from wcsgw.sip.service import SipService
from wcsgw.sip.target import Target

AOR = "sip:1001@pbx.example"
FAST = SipSettings(listen="127.0.0.1", port=0, t1=0.05, t2=0.4, t4=0.5)


def failed(status: int | None, reason: str, auth: bool = False,
           retry_in: float | None = 30.0) -> RegistrationFailed:
    return RegistrationFailed(status=status, reason=reason, auth=auth, retry_in=retry_in)


class FailureTextTests(unittest.TestCase):
    def test_each_kind_of_failure(self) -> None:
        udp = Target("UDP", "192.0.2.7", 5060)
        cases = [
            (failed(401, "401 Unauthorized", True), udp,
             "registration sip:1001@pbx.example failed: 401 Unauthorized (credentials refused: "
             "wrong login, authentication name or password) from UDP 192.0.2.7:5060; "
             "retrying in 30 s"),
            (failed(403, "403 Forbidden", True), udp, "403 Forbidden (forbidden: the registrar "
             "refuses this account"),
            (failed(404, "404 Not Found"), udp, "404 Not Found (not found: the registrar has no "
             "such user (check login and domain)) from UDP 192.0.2.7:5060"),
            (failed(None, "timeout", retry_in=2.4), Target("TCP", "192.0.2.7", 5070),
             "failed: no answer from TCP 192.0.2.7:5070 (timeout); retrying in 2 s"),
            (failed(None, "transport"), Target("TCP", "192.0.2.7", 5060),
             "could not reach TCP 192.0.2.7:5060 (transport error: connection refused or ICMP "
             "unreachable)"),
            (failed(None, "transport"), Target("UDP", "pbx.invalid", 5060),
             "could not reach UDP pbx.invalid:5060 (transport error: DNS failure for "
             "pbx.invalid, connection refused or ICMP unreachable)"),
            (failed(None, "timeout"), Target("UDP", "2001:db8::1", 5060),
             "no answer from UDP [2001:db8::1]:5060"),
            (failed(401, "401 Unauthorized: not the account's realm", True, None), udp,
             "401 Unauthorized: not the account's realm (credentials refused: wrong login, "
             "authentication name or password) from UDP 192.0.2.7:5060; not retried"),
            (failed(503, "503 Service Unavailable", retry_in=120), udp,
             "503 Service Unavailable (the registrar is unavailable) from UDP 192.0.2.7:5060; "
             "retrying in 120 s"),
        ]
        for event, target, expected in cases:
            text = failure_text(AOR, event, target)
            self.assertIn(expected, text)
            self.assertTrue(text.startswith(f"registration {AOR} failed: "), text)
            self.assertNotIn("\n", text)

    def test_fields_for_the_json_log(self) -> None:
        fields = failure_fields(AOR, failed(None, "timeout"), Target("UDP", "192.0.2.7", 5060))
        self.assertEqual((fields["aor"], fields["registrar"], fields["sip_status"]),
                         (AOR, "UDP 192.0.2.7:5060", None))


class RegistrationLogTests(unittest.TestCase):
    """A gateway SIP service with one account; the warn lines read back from a JSON log."""

    timeout = 60

    def start_gateway(self, account: Account) -> tuple[Capture, EventLog]:
        capture = Capture(self, "info", "json")
        service = SipService(FAST, accounts=[account])
        events = EventLog()
        service.registration_listeners.append(events)
        service.startService()
        self.addCleanup(service.stopService)
        return capture, events

    async def first_failure_lines(self, capture: Capture, events: EventLog) -> list[dict]:
        await events.wait_for(lambda e: isinstance(e[-1] if isinstance(e, tuple) else e,
                                                   RegistrationFailed))
        lines = [r for r in capture.lines() if r["level"] == "warn"
                 and r["message"].startswith("registration ")]
        self.assertEqual(len(lines), 1, lines)  # one line for the one failed attempt
        return lines

    @inline
    async def test_wrong_password_at_kamailio(self) -> None:
        kam = Kamailio()
        self.addCleanup(kam.stop)
        await kam.start()
        capture, events = self.start_gateway(Account(
            login="1001", password="not-the-password", domain="127.0.0.1", port=kam.port,
            transport="udp", expires=300))
        [line] = await self.first_failure_lines(capture, events)
        self.assertIn(f"registration sip:1001@127.0.0.1 failed: 401 Unauthorized (credentials "
                      f"refused: wrong login, authentication name or password) from UDP "
                      f"127.0.0.1:{kam.port}; retrying in ", line["message"])
        self.assertEqual((line["aor"], line["registrar"], line["sip_status"]),
                         ("sip:1001@127.0.0.1", f"UDP 127.0.0.1:{kam.port}", 401))
        self.assertNotIn("not-the-password", capture.text())

    @inline
    async def test_tcp_port_nobody_listens_on(self) -> None:
        port = free_port("tcp")
        capture, events = self.start_gateway(Account(
            login="1001", password="pass1001", domain="127.0.0.1", port=port, transport="tcp"))
        [line] = await self.first_failure_lines(capture, events)
        self.assertIn(f"could not reach TCP 127.0.0.1:{port} (transport error: connection "
                      "refused or ICMP unreachable)", line["message"])
        self.assertIsNone(line["sip_status"])

    @inline
    async def test_udp_port_that_never_answers(self) -> None:
        port = free_port("udp")
        capture, events = self.start_gateway(Account(
            login="1001", password="pass1001", domain="127.0.0.1", port=port, transport="udp"))
        [line] = await self.first_failure_lines(capture, events)
        # loopback UDP: the ICMP port-unreachable of an unconnected socket is not reported,
        # so a dead UDP registrar is a timeout (64*T1 = 3.2 s here)
        self.assertRegex(line["message"], rf"(no answer from UDP 127\.0\.0\.1:{port} \(timeout\)"
                         rf"|could not reach UDP 127\.0\.0\.1:{port} \(transport error)")

    @inline
    async def test_a_registrar_name_that_does_not_resolve(self) -> None:
        # .invalid never resolves (RFC 6761); here there is no DNS server either
        capture, events = self.start_gateway(Account(
            login="1001", password="pass1001", domain="pbx.invalid", port=5060, transport="udp"))
        [line] = await self.first_failure_lines(capture, events)
        self.assertIn("could not reach UDP pbx.invalid:5060 (transport error: DNS failure for "
                      "pbx.invalid", line["message"])
