"""Registration against a real Kamailio registrar (digest auth), on loopback.

Each test starts its own Kamailio on a free port, runs a gateway SIP service in this process
(port 0: picked by the kernel) and stops both, so nothing is left listening.
"""

from __future__ import annotations

from twisted.internet import reactor
from twisted.internet.protocol import DatagramProtocol
from twisted.trial import unittest

from tests.peers.kamailio import Kamailio
from tests.peers.ports import free_port
from tests.support import EventLog, inline
from wcsgw.config import Account, SipSettings
from wcsgw.sip.ids import new_call_id, new_tag
from wcsgw.sip.message import Request
from wcsgw.sip.registration import Registered, RegistrationFailed, Unregistered
from wcsgw.sip.service import SipService
from wcsgw.sip.target import Target

# Short RFC 3261 timers: a lost request times out (64*T1) in 3.2 s instead of 32 s.
FAST = SipSettings(listen="127.0.0.1", port=0, t1=0.05, t2=0.4, t4=0.5)


def account(kam_port: int, login: str = "1001", password: str = "pass1001",
            transport: str = "udp") -> Account:
    return Account(login=login, password=password, domain="127.0.0.1",
                   port=kam_port, transport=transport, expires=300)


class RecordRequests:
    """A transaction user on the gateway that notes each request and lets defaults answer."""

    def __init__(self) -> None:
        self.seen = EventLog()

    def handle_request(self, request, transaction, source, now) -> bool:
        self.seen(request)
        return False


class RegistrationTests(unittest.TestCase):
    def start_kamailio(self, port: int | None = None) -> Kamailio:
        kam = Kamailio(port=port)
        self.addCleanup(kam.stop)
        return kam

    def start_gateway(self, *accounts: Account, settings: SipSettings = FAST) -> tuple[SipService, EventLog]:
        service = SipService(settings, accounts=accounts)
        events = EventLog()
        service.registration_listeners.append(events)
        service.startService()
        self.addCleanup(service.stopService)
        return service, events

    def send_options(self, via: SipService, uri: str, kam: Kamailio) -> EventLog:
        """OPTIONS from a stranger's UA to ``uri``, routed by Kamailio's location lookup."""
        answers = EventLog()
        request = Request("OPTIONS", uri, [
            ("From", f"<sip:tester@example.invalid>;tag={new_tag()}"),
            ("To", f"<{uri}>"),
            ("Call-ID", new_call_id("127.0.0.1")),
            ("CSeq", "1 OPTIONS"),
        ])
        assert via.endpoint is not None and via.transport is not None
        via.endpoint.send_request(request, Target("UDP", kam.host, kam.port), reactor.seconds(),
                                  lambda r, now: answers(r), lambda why, now: answers(why))
        return answers

    @inline
    async def test_register_then_reachable_then_unregister(self) -> None:
        """Right password: REGISTERED, Kamailio holds our contact, and a request that
        Kamailio routes by that binding reaches the gateway; stopping removes the binding."""
        kam = self.start_kamailio()
        await kam.start()
        gateway, events = self.start_gateway(account(kam.port))
        recorder = RecordRequests()
        gateway.endpoint.handlers.append(recorder)

        _, event = await events.wait_for(lambda e: isinstance(e[1], (Registered, RegistrationFailed)))
        self.assertIsInstance(event, Registered)
        self.assertEqual(event.expires, 300)
        rows = await kam.bindings("1001")
        self.assertEqual(len(rows), 1)
        self.assertIn(f"127.0.0.1:{gateway.port}", rows[0]["contact"])

        stranger, _ = self.start_gateway()
        answers = self.send_options(stranger, f"sip:1001@127.0.0.1:{kam.port}", kam)
        arrived = await recorder.seen.wait_for(lambda r: r.method == "OPTIONS")
        self.assertEqual(arrived.uri.split(";")[0], f"sip:1001@127.0.0.1:{gateway.port}")
        final = await answers.wait_for(lambda r: getattr(r, "status", 0) >= 200)
        self.assertEqual(final.status, 200)

        await gateway.stopService()
        await events.wait_for(lambda e: isinstance(e[1], Unregistered))
        self.assertEqual(await kam.bindings("1001"), [])

    @inline
    async def test_register_over_tcp(self) -> None:
        kam = self.start_kamailio()
        await kam.start()
        gateway, events = self.start_gateway(account(kam.port, transport="tcp"))
        _, event = await events.wait_for(lambda e: isinstance(e[1], (Registered, RegistrationFailed)))
        self.assertIsInstance(event, Registered)
        rows = await kam.bindings("1001")
        self.assertEqual(len(rows), 1)
        self.assertIn("transport=tcp", rows[0]["contact"])

    @inline
    async def test_wrong_password(self) -> None:
        """Wrong password: one failure naming the SIP code, flagged as an auth failure,
        and no binding at the registrar."""
        kam = self.start_kamailio()
        await kam.start()
        gateway, events = self.start_gateway(account(kam.port, password="wrong"))
        _, event = await events.wait_for(lambda e: isinstance(e[1], (Registered, RegistrationFailed)))
        self.assertIsInstance(event, RegistrationFailed)
        self.assertTrue(event.auth)
        self.assertIn(event.status, (401, 403))
        self.assertEqual(await kam.bindings("1001"), [])
        # Backoff, not a hammer: one REGISTER with credentials, not a loop of them.
        registers = kam.log_text().count("REGISTER challenge/fail")
        self.assertLessEqual(registers, 3)

    @inline
    async def test_registrar_down_then_back(self) -> None:
        """Nothing listening: each attempt fails cleanly, retries back off, the process keeps
        serving, and once the registrar comes up the account registers."""
        port = free_port("udp+tcp")
        gateway, events = self.start_gateway(account(port, transport="tcp"))
        failures = []
        for _ in range(2):
            _, failure = await events.wait_for(
                lambda e: isinstance(e[1], RegistrationFailed) and e[1] not in failures)
            failures.append(failure)
            self.assertFalse(failure.auth)
        self.assertEqual(len(failures), 2)
        # The gateway still answers while it retries.
        kam = self.start_kamailio(port)
        await kam.start()
        _, event = await events.wait_for(lambda e: isinstance(e[1], Registered), timeout=20)
        self.assertEqual((await kam.bindings("1001"))[0]["user"], "1001")

    @inline
    async def test_registrar_silent_udp_times_out(self) -> None:
        """UDP into the void: Timer F (64*T1) ends the attempt with a timeout failure."""
        port = free_port("udp+tcp")
        # a socket that reads and never answers: a closed port would answer ICMP, which fails
        # the REGISTER at once (tests.test_sip_icmp)
        silent = reactor.listenUDP(port, DatagramProtocol(), interface="127.0.0.1")
        self.addCleanup(silent.stopListening)
        gateway, events = self.start_gateway(account(port))
        started = reactor.seconds()
        _, failure = await events.wait_for(lambda e: isinstance(e[1], RegistrationFailed))
        self.assertFalse(failure.auth)
        self.assertGreaterEqual(reactor.seconds() - started, 64 * FAST.t1 * 0.9)
