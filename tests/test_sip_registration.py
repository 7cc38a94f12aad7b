"""REGISTER client (wcsgw.sip.registration): whole flows fed with Response objects."""

from __future__ import annotations

import random

from twisted.trial.unittest import SynchronousTestCase

from wcsgw.sip.account import SipAccount
from wcsgw.sip.digest import DigestClient, compute_response, parse_authorization
from wcsgw.sip.message import Request, Response
from wcsgw.sip.parser import parse_message
from wcsgw.sip.registration import (
    Registered,
    Registration,
    RegistrationFailed,
    RegistrationState,
    Unregistered,
)

CONTACT = "sip:1001@192.0.2.10:5070;transport=udp"
CHALLENGE = 'Digest realm="example.com", nonce="{nonce}", qop="auth", algorithm=MD5{extra}'


class TopRandom(random.Random):
    """Jitter pinned to its top: every backoff delay is exactly its ceiling W."""

    def uniform(self, a: float, b: float) -> float:
        return b


def account(**kw: object) -> SipAccount:
    params: dict[str, object] = dict(login="1001", password="s3cret-pw", domain="example.com")
    params.update(kw)
    return SipAccount(**params)  # type: ignore[arg-type]


def reply(request: Request, status: int, reason: str = "", *extra: tuple[str, str]) -> Response:
    """What a registrar sends back: From/Call-ID/CSeq copied, To with a tag."""
    headers = [(n, v) for n, v in request.headers if n in ("From", "Call-ID", "CSeq")]
    headers.append(("To", (request.headers.get("To") or "") + ";tag=reg"))
    headers.extend(extra)
    return Response(status, reason or "Reason", headers)


def challenge(request: Request, nonce: str, stale: bool = False, status: int = 401) -> Response:
    name = "Proxy-Authenticate" if status == 407 else "WWW-Authenticate"
    value = CHALLENGE.format(nonce=nonce, extra=", stale=true" if stale else "")
    return reply(request, status, "Unauthorized", (name, value))


def ok(request: Request, *extra: tuple[str, str]) -> Response:
    """A 200 echoing our Contact with the expires we asked for (unless extra says otherwise)."""
    if not extra:
        expires = request.headers.get("Expires")
        extra = (("Contact", f"<{CONTACT}>;expires={expires}"),)
    return reply(request, 200, "OK", *extra)


class Base(SynchronousTestCase):
    def make(self, *, rng: random.Random | None = None, acct: SipAccount | None = None, **kw: object) -> Registration:
        acct = acct or account()
        digest = DigestClient(acct.credentials(), cnonce_factory=lambda: "0a4f113b")
        return Registration(acct, CONTACT, rng=rng or TopRandom(), digest=digest, **kw)  # type: ignore[arg-type]

    def register(self, reg: Registration, now: float = 0.0) -> Request:
        """start -> 401 -> authorized REGISTER -> 200; returns the authorized REGISTER."""
        first = reg.start(now)
        second = reg.receive_response(challenge(first, "N1"), now)
        assert second is not None
        self.assertIsNone(reg.receive_response(ok(second), now))
        return second


class FirstRegisterTests(Base):
    def test_first_request(self) -> None:
        reg = self.make(call_id="cid-1@gw")
        req = reg.start(10.0)
        self.assertIs(reg.state, RegistrationState.REGISTERING)
        self.assertEqual((req.method, req.uri), ("REGISTER", "sip:example.com"))
        self.assertEqual(req.headers.get("To"), "<sip:1001@example.com>")
        self.assertEqual(req.to.tag, None)
        self.assertTrue(req.from_.tag)
        self.assertEqual(str(req.from_.uri), "sip:1001@example.com")
        self.assertEqual(req.call_id, "cid-1@gw")
        self.assertEqual(req.cseq, (1, "REGISTER"))
        self.assertEqual(req.headers.get("Contact"), f"<{CONTACT}>;expires=600")
        self.assertEqual(req.headers.get("Expires"), "600")
        self.assertEqual(req.headers.get("Max-Forwards"), "70")
        self.assertNotIn("Via", req.headers)
        self.assertNotIn("Authorization", req.headers)
        self.assertIsNone(reg.next_deadline())
        self.assertEqual(reg.take_events(), [])

    def test_generated_call_id_instance_and_extra_headers(self) -> None:
        reg = self.make(instance_id="urn:uuid:00000000-0000-1000-8000-000A95A0E128",
                        extra_headers=[("User-Agent", "wcsgw")])
        req = reg.start(0)
        self.assertTrue(req.call_id)
        self.assertEqual(
            req.headers.get("Contact"),
            f'<{CONTACT}>;+sip.instance="<urn:uuid:00000000-0000-1000-8000-000A95A0E128>";expires=600',
        )
        self.assertEqual(req.headers.get("User-Agent"), "wcsgw")

    def test_display_name_in_from(self) -> None:
        reg = self.make(acct=account(display_name="Front Desk"))
        self.assertEqual(reg.start(0).from_.display_name, "Front Desk")

    def test_start_twice_refused(self) -> None:
        reg = self.make()
        reg.start(0)
        self.assertRaises(RuntimeError, reg.start, 0)


class AuthTests(Base):
    def test_401_then_authorized_retry(self) -> None:
        reg = self.make()
        first = reg.start(0)
        second = reg.receive_response(challenge(first, "N1"), 0.5)
        assert second is not None
        self.assertEqual(second.call_id, first.call_id)
        self.assertEqual(second.cseq, (2, "REGISTER"))
        self.assertEqual(second.from_.tag, first.from_.tag)
        p = parse_authorization(second.headers.get("Authorization") or "")
        expected = compute_response(algorithm="MD5", username="1001", realm="example.com", password="s3cret-pw",
                                    method="REGISTER", uri="sip:example.com", nonce="N1", cnonce="0a4f113b",
                                    nc=1, qop="auth")
        self.assertEqual(p["response"], expected)
        self.assertEqual((p["username"], p["realm"], p["uri"], p["nc"], p["qop"]),
                         ("1001", "example.com", "sip:example.com", "00000001", "auth"))
        self.assertEqual(reg.take_events(), [])  # a challenge is not a failure
        self.assertIsNone(reg.receive_response(ok(second), 1.0))
        self.assertEqual(reg.take_events(), [Registered(expires=600, contact=CONTACT)])
        self.assertIs(reg.state, RegistrationState.REGISTERED)

    def test_auth_name_is_used(self) -> None:
        reg = self.make(acct=account(auth_name="acme-1001"))
        second = reg.receive_response(challenge(reg.start(0), "N1"), 0)
        assert second is not None
        self.assertEqual(parse_authorization(second.headers.get("Authorization") or "")["username"], "acme-1001")

    def test_407_answered_with_proxy_authorization(self) -> None:
        reg = self.make()
        second = reg.receive_response(challenge(reg.start(0), "P1", status=407), 0)
        assert second is not None
        self.assertIn("Proxy-Authorization", second.headers)
        self.assertNotIn("Authorization", second.headers)

    def test_wrong_password_fails_and_backs_off(self) -> None:
        reg = self.make(rng=random.Random(1234), retry_min=2.0, retry_max=300.0, auth_retry_min=0.0)
        first = reg.start(0)
        second = reg.receive_response(challenge(first, "N1"), 0)
        assert second is not None
        # Asterisk-style: a fresh nonce, not stale, right after we answered the last one
        self.assertIsNone(reg.receive_response(challenge(second, "N2"), 1.0))
        [event] = reg.take_events()
        assert isinstance(event, RegistrationFailed)
        self.assertEqual((event.status, event.auth), (401, True))
        self.assertIs(reg.state, RegistrationState.BACKOFF)
        # exact schedule: RFC 5626 §4.5 with the same seeded generator
        expected_rng = random.Random(1234)
        expected = 1.0 + max(2.0, min(300.0, 2.0 * 2 ** 1) * expected_rng.uniform(0.5, 1.0))
        self.assertEqual(reg.next_deadline(), expected)
        self.assertEqual(event.retry_in, expected - 1.0)
        self.assertIsNone(reg.handle_timer(expected - 0.001))
        # the retry starts over without the refused nonce: plain REGISTER, then challenge
        retry = reg.handle_timer(expected)
        assert retry is not None
        self.assertEqual(retry.cseq, (3, "REGISTER"))
        self.assertNotIn("Authorization", retry.headers)
        third = reg.receive_response(challenge(retry, "N3"), expected)
        assert third is not None
        self.assertIsNone(reg.receive_response(challenge(third, "N3"), expected))  # same nonce again
        [event] = reg.take_events()
        assert isinstance(event, RegistrationFailed)
        self.assertEqual((event.status, event.auth), (401, True))
        expected2 = expected + max(2.0, min(300.0, 2.0 * 2 ** 2) * expected_rng.uniform(0.5, 1.0))
        self.assertEqual(reg.next_deadline(), expected2)
        self.assertTrue(expected + 4.0 <= expected2 <= expected + 8.0)

    def test_auth_failure_waits_at_least_auth_retry_min(self) -> None:
        reg = self.make()  # retry_min=1, auth_retry_min=30 by default
        second = reg.receive_response(challenge(reg.start(0), "N1"), 0)
        assert second is not None
        reg.receive_response(challenge(second, "N2"), 5.0)
        self.assertEqual(reg.next_deadline(), 35.0)

    def test_403_is_auth_failure(self) -> None:
        reg = self.make()
        self.assertIsNone(reg.receive_response(reply(reg.start(0), 403, "Forbidden"), 0))
        [event] = reg.take_events()
        self.assertEqual(event, RegistrationFailed(status=403, reason="403 Forbidden", auth=True, retry_in=30.0))
        self.assertIs(reg.state, RegistrationState.BACKOFF)

    def test_stale_nonce_is_retried_not_failed(self) -> None:
        reg = self.make()
        second = self.register(reg, 0.0)
        reg.take_events()
        refresh = reg.handle_timer(570.0)
        assert refresh is not None
        p = parse_authorization(refresh.headers.get("Authorization") or "")
        self.assertEqual((p["nonce"], p["nc"]), ("N1", "00000002"))  # pre-authorized, nc counts
        again = reg.receive_response(challenge(refresh, "N2", stale=True), 570.0)
        assert again is not None
        p = parse_authorization(again.headers.get("Authorization") or "")
        self.assertEqual((p["nonce"], p["nc"]), ("N2", "00000001"))
        self.assertEqual(reg.take_events(), [])
        reg.receive_response(ok(again), 571.0)
        self.assertEqual(reg.take_events(), [Registered(expires=600, contact=CONTACT)])
        self.assertEqual(again.cseq[0], second.cseq[0] + 2)

    def test_endless_stale_challenges_are_capped(self) -> None:
        reg = self.make()
        req: Request | None = reg.start(0)
        sent = 0
        while req is not None:
            sent += 1
            req = reg.receive_response(challenge(req, f"N{sent}", stale=True), 0)
            self.assertLess(sent, 10)
        self.assertEqual(sent, 4)  # the first REGISTER plus three answered challenges
        [event] = reg.take_events()
        assert isinstance(event, RegistrationFailed)
        self.assertTrue(event.auth)

    def test_unanswerable_challenge_gives_up(self) -> None:
        reg = self.make()
        first = reg.start(0)
        resp = reply(first, 401, "Unauthorized", ("WWW-Authenticate", 'Digest realm="x", nonce="n", algorithm=AKAv1-MD5'))
        self.assertIsNone(reg.receive_response(resp, 0))
        [event] = reg.take_events()
        assert isinstance(event, RegistrationFailed)
        self.assertEqual((event.status, event.auth, event.retry_in), (401, True, None))
        self.assertIs(reg.state, RegistrationState.FAILED)
        self.assertIsNone(reg.next_deadline())

    def test_password_never_in_requests_or_reprs(self) -> None:
        reg = self.make()
        second = self.register(reg)
        for text in (repr(reg), repr(reg.account), repr(reg.__dict__), second.to_bytes().decode(),
                     repr(reg.take_events())):
            self.assertNotIn("s3cret-pw", text)


class WireTests(Base):
    """The same flow through bytes: what the registrar sees and what it sends back."""

    def test_register_over_the_wire(self) -> None:
        reg = self.make()
        out = reg.start(0)
        out.headers.prepend("Via", "SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bK1")  # the core's job
        first = parse_message(out.to_bytes())
        assert isinstance(first, Request)
        wire_401 = (
            "SIP/2.0 401 Unauthorized\r\n"
            f"Via: {first.headers.get('Via')}\r\n"
            f"From: {first.headers.get('From')}\r\n"
            f"To: {first.headers.get('To')};tag=reg\r\n"
            f"Call-ID: {first.call_id}\r\n"
            "CSeq: 1 REGISTER\r\n"
            'WWW-Authenticate: Digest realm="example.com", nonce="N,1", qop="auth,auth-int",\r\n'
            '  algorithm=MD5, opaque="op"\r\n'
            'WWW-Authenticate: Digest realm="example.com", nonce="N,1", qop="auth", algorithm=SHA-256\r\n'
            "Content-Length: 0\r\n\r\n"
        ).encode()
        resp = parse_message(wire_401)
        assert isinstance(resp, Response)
        second = reg.receive_response(resp, 0)
        assert second is not None
        second.headers.prepend("Via", "SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bK2")
        again = parse_message(second.to_bytes())
        assert isinstance(again, Request)
        p = parse_authorization(again.headers.get("Authorization") or "")
        self.assertEqual((p["nonce"], p["algorithm"], p["qop"]), ("N,1", "SHA-256", "auth"))
        self.assertNotIn("opaque", p)
        self.assertEqual(again.headers.get("Contact"), f"<{CONTACT}>;expires=600")


class ExpiresTests(Base):
    def test_423_retries_with_min_expires(self) -> None:
        reg = self.make()
        first = reg.start(0)
        retry = reg.receive_response(reply(first, 423, "Interval Too Brief", ("Min-Expires", "1800")), 0)
        assert retry is not None
        self.assertEqual(retry.headers.get("Expires"), "1800")
        self.assertEqual(retry.headers.get("Contact"), f"<{CONTACT}>;expires=1800")
        self.assertEqual(retry.cseq, (2, "REGISTER"))
        reg.receive_response(ok(retry), 1.0)
        self.assertEqual(reg.take_events(), [Registered(expires=1800, contact=CONTACT)])
        self.assertEqual(reg.next_deadline(), 1.0 + 1770)
        refresh = reg.handle_timer(1771.0)
        assert refresh is not None
        self.assertEqual(refresh.headers.get("Expires"), "1800")

    def test_423_without_a_larger_value_fails(self) -> None:
        reg = self.make()
        first = reg.start(0)
        self.assertIsNone(reg.receive_response(reply(first, 423, "Interval Too Brief", ("Min-Expires", "60")), 0))
        [event] = reg.take_events()
        assert isinstance(event, RegistrationFailed)
        self.assertEqual(event.status, 423)

    def test_contact_expires_param_wins(self) -> None:
        reg = self.make()
        first = reg.start(0)
        resp = reply(first, 200, "OK",
                     ("Contact", "<sip:1001@198.51.100.1:5060>;expires=3600"),
                     ("Contact", "<sip:1001@192.0.2.10:5070;transport=UDP;ob>;expires=120;received=\"x\""),
                     ("Expires", "3600"))
        reg.receive_response(resp, 100.0)
        self.assertEqual(reg.take_events(), [Registered(expires=120, contact=CONTACT)])
        self.assertEqual(reg.granted_expires, 120)
        self.assertEqual(reg.next_deadline(), 100.0 + 90.0)  # 120 - min(30, 60)

    def test_joined_contact_list(self) -> None:
        reg = self.make()
        first = reg.start(0)
        resp = reply(first, 200, "OK", ("Contact", f"<sip:x@198.51.100.1>;expires=3600, <{CONTACT}>;expires=50"))
        reg.receive_response(resp, 0.0)
        self.assertEqual(reg.granted_expires, 50)
        self.assertEqual(reg.next_deadline(), 25.0)  # short bindings refresh at half-life

    def test_expires_header_then_requested(self) -> None:
        reg = self.make()
        reg.receive_response(reply(reg.start(0), 200, "OK", ("Expires", "300")), 0.0)
        self.assertEqual(reg.granted_expires, 300)
        reg = self.make()
        reg.receive_response(reply(reg.start(0), 200, "OK"), 0.0)
        self.assertEqual(reg.granted_expires, 600)

    def test_refresh_rule(self) -> None:
        self.assertEqual(Registration.refresh_delay(600), 570)
        self.assertEqual(Registration.refresh_delay(3600), 3570)
        self.assertEqual(Registration.refresh_delay(60), 30)
        self.assertEqual(Registration.refresh_delay(20), 10)


class RefreshTests(Base):
    def test_refresh_after_200(self) -> None:
        reg = self.make()
        second = self.register(reg, 100.0)
        self.assertEqual(reg.next_deadline(), 670.0)
        self.assertIsNone(reg.handle_timer(669.9))
        refresh = reg.handle_timer(670.0)
        assert refresh is not None
        self.assertIs(reg.state, RegistrationState.REGISTERING)
        self.assertIsNone(reg.next_deadline())
        self.assertEqual(refresh.call_id, second.call_id)
        self.assertEqual(refresh.cseq, (3, "REGISTER"))
        self.assertEqual(refresh.headers.get("Expires"), "600")
        self.assertIn("Authorization", refresh.headers)
        self.assertIsNone(reg.handle_timer(700.0))  # nothing more while it is in flight
        reg.take_events()
        reg.receive_response(ok(refresh), 671.0)
        self.assertEqual(reg.take_events(), [Registered(expires=600, contact=CONTACT)])
        self.assertEqual(reg.next_deadline(), 671.0 + 570.0)

    def test_stray_responses_ignored(self) -> None:
        reg = self.make()
        first = reg.start(0)
        late = reply(first, 200, "OK")
        late.headers.set("CSeq", "99 REGISTER")
        self.assertIsNone(reg.receive_response(late, 0))
        other = reply(first, 200, "OK")
        other.headers.set("Call-ID", "someone-else")
        self.assertIsNone(reg.receive_response(other, 0))
        self.assertIsNone(reg.receive_response(reply(first, 100, "Trying"), 0))
        self.assertIs(reg.state, RegistrationState.REGISTERING)
        self.assertEqual(reg.take_events(), [])


class FailureTests(Base):
    def test_timeout_backoff_doubles_up_to_retry_max(self) -> None:
        reg = self.make(retry_min=1.0, retry_max=20.0)
        req = reg.start(0.0)
        now = 0.0
        delays = []
        for _ in range(6):
            now += 32.0  # Timer F
            reg.transaction_failed(now, "timeout")
            [event] = reg.take_events()
            self.assertEqual(event, RegistrationFailed(status=None, reason="timeout", auth=False,
                                                       retry_in=event.retry_in))  # type: ignore[union-attr]
            deadline = reg.next_deadline()
            assert deadline is not None
            delays.append(deadline - now)
            self.assertIs(reg.state, RegistrationState.BACKOFF)
            now = deadline
            nxt = reg.handle_timer(now)
            assert nxt is not None
            self.assertEqual(nxt.call_id, req.call_id)
            req = nxt
        self.assertEqual(delays, [2.0, 4.0, 8.0, 16.0, 20.0, 20.0])
        self.assertEqual(req.cseq, (7, "REGISTER"))
        reg.receive_response(ok(req), now)
        self.assertEqual(reg.take_events(), [Registered(expires=600, contact=CONTACT)])
        reg.transaction_failed(now, "late")  # nothing in flight: ignored
        self.assertEqual(reg.take_events(), [])

    def test_jitter_stays_in_rfc5626_window(self) -> None:
        reg = self.make(rng=random.Random(99), retry_min=1.0, retry_max=300.0)
        for failures in range(1, 12):
            ceiling = min(300.0, 2.0 ** failures)
            delay = reg.backoff_delay(failures)
            self.assertTrue(max(1.0, ceiling / 2) <= delay <= ceiling, (failures, delay))

    def test_503_retry_after(self) -> None:
        reg = self.make()
        first = reg.start(0.0)
        reg.receive_response(reply(first, 503, "Service Unavailable", ("Retry-After", "120 (maintenance);duration=60")), 5.0)
        [event] = reg.take_events()
        self.assertEqual(event, RegistrationFailed(status=503, reason="503 Service Unavailable", auth=False, retry_in=120.0))
        self.assertEqual(reg.next_deadline(), 125.0)

    def test_500_retry_after_and_5xx_without(self) -> None:
        reg = self.make()
        reg.receive_response(reply(reg.start(0.0), 500, "Server Internal Error", ("Retry-After", "7")), 0.0)
        self.assertEqual(reg.next_deadline(), 7.0)
        reg = self.make()
        reg.receive_response(reply(reg.start(0.0), 502, "Bad Gateway"), 0.0)
        self.assertEqual(reg.next_deadline(), 2.0)  # TopRandom: W = 1 * 2**1

    def test_failed_refresh_after_expiry_drops_binding(self) -> None:
        reg = self.make()
        self.register(reg, 0.0)
        reg.take_events()
        refresh = reg.handle_timer(570.0)
        assert refresh is not None
        reg.transaction_failed(602.0, "timeout")
        self.assertIs(reg.state, RegistrationState.BACKOFF)
        [event] = reg.take_events()
        self.assertIsInstance(event, RegistrationFailed)
        self.assertEqual(reg.bound_until, None)  # 600 s passed: the binding is gone
        self.assertIsNone(reg.stop(603.0))  # nothing to un-register
        self.assertEqual(reg.take_events(), [Unregistered()])

    def test_failed_refresh_before_expiry_still_unregisters_on_stop(self) -> None:
        reg = self.make()
        self.register(reg, 0.0)
        reg.receive_response(reply(reg.handle_timer(570.0), 500, "Oops"), 571.0)  # type: ignore[arg-type]
        self.assertEqual(reg.bound_until, 600.0)
        bye = reg.stop(580.0)
        assert bye is not None
        self.assertEqual(bye.headers.get("Expires"), "0")


class StopTests(Base):
    def test_stop_unregisters(self) -> None:
        reg = self.make()
        second = self.register(reg, 0.0)
        reg.take_events()
        bye = reg.stop(10.0)
        assert bye is not None
        self.assertIs(reg.state, RegistrationState.UNREGISTERING)
        self.assertEqual(bye.headers.get("Expires"), "0")
        self.assertEqual(bye.headers.get("Contact"), f"<{CONTACT}>;expires=0")
        self.assertEqual(bye.call_id, second.call_id)
        self.assertEqual(bye.cseq, (second.cseq[0] + 1, "REGISTER"))
        self.assertIn("Authorization", bye.headers)
        self.assertIsNone(reg.next_deadline())
        self.assertIsNone(reg.stop(10.5))  # already on its way
        self.assertIsNone(reg.receive_response(ok(bye), 11.0))
        self.assertEqual(reg.take_events(), [Unregistered()])
        self.assertIs(reg.state, RegistrationState.IDLE)
        self.assertIsNone(reg.next_deadline())

    def test_unregister_challenged_then_ok(self) -> None:
        reg = self.make()
        self.register(reg, 0.0)
        reg.take_events()
        bye = reg.stop(10.0)
        assert bye is not None
        again = reg.receive_response(challenge(bye, "N9", stale=True), 10.0)
        assert again is not None
        self.assertEqual(again.headers.get("Expires"), "0")
        self.assertEqual(again.cseq, (bye.cseq[0] + 1, "REGISTER"))
        reg.receive_response(ok(again), 10.0)
        self.assertEqual(reg.take_events(), [Unregistered()])

    def test_unregister_timeout_still_unregistered(self) -> None:
        reg = self.make()
        self.register(reg, 0.0)
        reg.take_events()
        self.assertIsNotNone(reg.stop(10.0))
        reg.transaction_failed(42.0, "timeout")
        self.assertEqual(reg.take_events(), [Unregistered(reason="timeout")])
        self.assertIs(reg.state, RegistrationState.IDLE)

    def test_stop_while_registering_waits_for_the_answer(self) -> None:
        reg = self.make()
        first = reg.start(0.0)
        self.assertIsNone(reg.stop(0.5))
        bye = reg.receive_response(ok(first), 1.0)
        assert bye is not None
        self.assertEqual(bye.headers.get("Expires"), "0")
        self.assertEqual(bye.cseq, (2, "REGISTER"))
        reg.receive_response(ok(bye), 1.5)
        self.assertEqual(reg.take_events(), [Registered(expires=600, contact=CONTACT), Unregistered()])

    def test_stop_while_registering_and_it_fails(self) -> None:
        reg = self.make()
        first = reg.start(0.0)
        reg.stop(0.5)
        self.assertIsNone(reg.receive_response(reply(first, 503, "Service Unavailable"), 1.0))
        self.assertEqual(reg.take_events(), [Unregistered(reason="503 Service Unavailable")])
        self.assertIsNone(reg.next_deadline())

    def test_stop_in_backoff_without_binding(self) -> None:
        reg = self.make()
        reg.transaction_failed(0.0, "x")  # nothing in flight: ignored
        reg.start(0.0)
        reg.transaction_failed(32.0, "timeout")
        reg.take_events()
        self.assertIsNone(reg.stop(33.0))
        self.assertEqual(reg.take_events(), [Unregistered()])
        self.assertIsNone(reg.next_deadline())
        self.assertIs(reg.state, RegistrationState.IDLE)

    def test_stop_idle_does_nothing_and_restart_continues_cseq(self) -> None:
        reg = self.make()
        self.assertIsNone(reg.stop(0.0))
        self.assertEqual(reg.take_events(), [])
        first = reg.start(0.0)
        reg.receive_response(ok(first), 0.0)
        bye = reg.stop(1.0)
        assert bye is not None
        reg.receive_response(ok(bye), 1.0)
        again = reg.start(2.0)
        self.assertEqual(again.call_id, first.call_id)
        self.assertEqual(again.cseq, (3, "REGISTER"))
