"""REGISTER client (RFC 3261 §10), sans-IO: requests out, responses and "now" in.

:class:`Registration` keeps one binding of one Contact to an account's address-of-record alive:
it builds REGISTER requests (without Via: the transport core adds Via and branch), reads the
responses the transaction layer hands back, answers digest challenges, refreshes before the
binding expires, backs off after failures, and un-registers on :meth:`Registration.stop`.
It never reads a clock, sleeps or touches a socket; the adapter calls
:meth:`Registration.handle_timer` at :meth:`Registration.next_deadline` and passes the
outcome of each transaction in.  What happened comes out of :meth:`Registration.take_events`.

Rules, and where they come from:

* one Call-ID for every REGISTER of the binding, CSeq +1 each (§10.2, §10.2.4), To = AOR,
  From = AOR with a tag, Request-URI = the registrar (domain, no user part, §10.2);
* the lifetime is requested twice, in the Contact's ``expires`` parameter and in Expires
  (§10.2.1.1 allows either; registrars disagree on which they read);
* 401 / 407: answered via :class:`~wcsgw.sip.digest.DigestClient`, which retries once per
  nonce and tells "wrong password" apart from "stale nonce" (§22.2, RFC 7616 §3.3); 403 is a
  refusal too.  Both are :class:`RegistrationFailed` with ``auth=True``.  Credentials of an
  earlier exchange refused get one retry with the new nonce first (a restarted registrar);
* 423 Interval Too Brief: retry at once with the Min-Expires value (§10.2.8);
* 2xx: the granted lifetime is our Contact's ``expires`` in the 2xx's Contact list, else the
  Expires header, else what we asked for (§10.2.4: the registrar's answer wins);
* refresh ``granted - min(30, granted / 2)`` seconds after the 2xx: 30 s of slack before the
  binding lapses for ordinary lifetimes (one transaction timeout, 32 s of Timer F, almost fits
  inside, and a retransmitted REGISTER gets there well before expiry), half the lifetime for
  short ones so a 60 s binding is refreshed at 30 s rather than at 0;
* failures (timeout, transport error, 5xx, other 4xx, 3xx) back off exponentially with jitter
  as RFC 5626 §4.5 describes: ``W = min(retry_max, retry_min * 2**failures)``, wait a random
  50-100 % of ``W`` (never below ``retry_min``) so a thousand clients that lost the same
  registrar do not return in lockstep; a Retry-After in the failure response (503, 500, 480 ...)
  replaces that delay (§21.5.4, §20.33).  After an authentication failure the delay is at
  least ``auth_retry_min`` (30 s by default): servers with fail2ban-style protection ban the
  *gateway's* address for repeated bad passwords, which would cut off every other user.

Credentials live only inside the DigestClient; nothing here logs, and no repr shows them.
The events are defined in :mod:`wcsgw.sip.events` and re-exported here, where the call layer
and the tests import them.
"""

from __future__ import annotations

import enum
import random
from typing import Iterable

from wcsgw.sip.account import SipAccount
from wcsgw.sip.digest import ChallengeOutcome, DigestClient
from wcsgw.sip.events import (
    Registered as Registered,
    RegistrationEvent as RegistrationEvent,
    RegistrationFailed as RegistrationFailed,
    Unregistered as Unregistered,
)
from wcsgw.sip.headers import delta_seconds, parse_name_addr, retry_after, split_header_list
from wcsgw.sip.ids import new_call_id, new_tag
from wcsgw.sip.message import Headers, Request, Response
from wcsgw.sip.uri import parse_uri, same_binding

#: Challenges answered per attempt before giving up (guards against a server that answers
#: every REGISTER with ``stale=true``).
MAX_CHALLENGES_PER_ATTEMPT = 3
#: Refresh this many seconds before the binding expires (at most half the lifetime).
REFRESH_MARGIN = 30.0


class RegistrationState(enum.Enum):
    IDLE = "idle"  # not started, or stopped and un-registered
    REGISTERING = "registering"  # a REGISTER (first, refresh or retry) is in flight
    REGISTERED = "registered"  # bound; a refresh is scheduled
    UNREGISTERING = "unregistering"  # the Expires: 0 REGISTER is in flight
    BACKOFF = "backoff"  # the last attempt failed; a retry is scheduled
    FAILED = "failed"  # failed with nothing left to try (no challenge we can answer)


class Registration:
    """One REGISTER binding: build, authenticate, refresh, back off, un-register."""

    def __init__(
        self,
        account: SipAccount,
        contact_uri: str,
        *,
        call_id: str | None = None,
        instance_id: str | None = None,
        retry_min: float = 1.0,
        retry_max: float = 300.0,
        auth_retry_min: float = 30.0,
        rng: random.Random | None = None,
        digest: DigestClient | None = None,
        extra_headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        """``contact_uri`` is where the registrar should send our calls (a URI, no brackets);
        ``instance_id`` (a ``urn:uuid:...``) adds ``+sip.instance`` (RFC 5626 §4.1) so the
        registrar can tell our binding from a stale one of the same device.  ``rng`` feeds the
        backoff jitter (seed it in tests); ``digest`` lets a test fix the cnonce or a caller
        share nonces with the INVITE side; ``extra_headers`` (User-Agent, Supported ...) go
        into every REGISTER."""
        if not 0 < retry_min <= retry_max:
            raise ValueError("need 0 < retry_min <= retry_max")
        self.account = account
        self.contact_uri = contact_uri
        self.call_id = call_id or new_call_id()
        self.instance_id = instance_id
        self.retry_min = retry_min
        self.retry_max = retry_max
        self.auth_retry_min = auth_retry_min
        self._rng = rng if rng is not None else random.Random()
        self._digest = digest if digest is not None else account.digest_client()
        self._extra_headers = list(extra_headers)
        self._from_tag = new_tag()
        self._contact = parse_uri(contact_uri)

        self.state = RegistrationState.IDLE
        self.requested_expires: int = account.expires
        #: lifetime the registrar granted last, and until when the binding holds
        self.granted_expires: int | None = None
        self.bound_until: float | None = None
        self._cseq = 0
        self._pending: Request | None = None  # the REGISTER in flight
        self._pending_expires: int = 0
        self._challenges = 0  # 401/407 answered in the current attempt
        self._failures = 0  # consecutive failed attempts (backoff exponent)
        self._deadline: float | None = None
        self._stop_requested = False
        self._events: list[RegistrationEvent] = []

    def __repr__(self) -> str:
        return f"<Registration {self.account.aor()} {self.state.name} call_id={self.call_id!r}>"

    # ------------------------------------------------------------------ public API

    @property
    def cseq(self) -> int:
        """CSeq number of the last REGISTER built."""
        return self._cseq

    def start(self, now: float) -> Request:
        """The first REGISTER (no Via: the transport core adds Via and branch)."""
        if self.state not in (RegistrationState.IDLE, RegistrationState.FAILED):
            raise RuntimeError(f"start() in state {self.state.name}")
        self._stop_requested = False
        self._failures = 0
        return self._new_attempt(self.requested_expires)

    def receive_response(self, response: Response, now: float) -> Request | None:
        """Feed the final (or provisional) response of the REGISTER in flight.

        Returns a REGISTER to send right away (digest retry, 423 retry, or the un-REGISTER a
        :meth:`stop` during registration asked for) or None.  Responses that do not answer
        the REGISTER in flight (late, duplicated, other Call-ID) are ignored.
        """
        pending = self._pending
        if pending is None or response.status < 200:
            return None
        try:
            if response.call_id != self.call_id or response.cseq != (self._cseq, "REGISTER"):
                return None
        except ValueError:
            return None
        self._pending = None
        status = response.status
        unregistering = self._pending_expires == 0

        if status in (401, 407):
            return self._on_challenge(pending, response, now, unregistering)
        if 200 <= status < 300:
            return self._on_success(response, now, unregistering)
        if unregistering:
            self._finish_unregister(f"{status} {response.reason}")
            return None
        if status == 423:
            min_expires = delta_seconds(response.headers.get("Min-Expires"))
            if min_expires is not None and min_expires > self._pending_expires:
                self.requested_expires = min_expires
                return self._send(min_expires)
            return self._fail(now, status, f"{status} {response.reason}", auth=False)
        if status == 403:
            return self._fail(now, status, f"{status} {response.reason}", auth=True)
        return self._fail(now, status, f"{status} {response.reason}", auth=False,
                          retry_after=retry_after(response.headers.get("Retry-After")))

    def transaction_failed(self, now: float, reason: str) -> None:
        """The REGISTER in flight timed out or could not be sent (Timer F, transport error).

        Schedules a retry.  If :meth:`stop` was waiting for this transaction, the registration
        ends here (:class:`Unregistered`) without an un-REGISTER: the registrar did not answer
        the last one, and any binding left behind expires on its own.
        """
        if self._pending is None:
            return
        self._pending = None
        if self._pending_expires == 0 or self._stop_requested:
            self._finish_unregister(reason)
            return
        self._fail(now, None, reason, auth=False)

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` wants to run next (refresh or retry), or None."""
        return self._deadline

    def handle_timer(self, now: float) -> Request | None:
        """Send the refresh or the retry that is due, if any."""
        if self._deadline is None or now < self._deadline or self._pending is not None:
            return None
        self._deadline = None
        if self.state in (RegistrationState.REGISTERED, RegistrationState.BACKOFF):
            return self._new_attempt(self.requested_expires)
        return None

    def stop(self, now: float) -> Request | None:
        """Un-register: a REGISTER with Expires: 0 when a binding may exist, else None.

        §10.2.2: same Call-ID, next CSeq, credentials as cached.  While a REGISTER is in flight
        nothing new may be sent (§10.2: one REGISTER at a time per binding), so the
        un-REGISTER follows its answer (returned by :meth:`receive_response`).  Every stop()
        of a started registration ends in exactly one :class:`Unregistered` event.
        """
        self._deadline = None
        if self.state is RegistrationState.IDLE or self.state is RegistrationState.UNREGISTERING:
            return None
        if self._pending is not None:
            self._stop_requested = True
            return None
        if self.bound_until is not None and now < self.bound_until:
            self.state = RegistrationState.UNREGISTERING
            return self._new_attempt(0)
        self._finish_unregister("stopped")
        return None

    def take_events(self) -> list[RegistrationEvent]:
        events, self._events = self._events, []
        return events

    # ------------------------------------------------------------------ building

    def _contact_value(self, expires: int) -> str:
        value = f"<{self.contact_uri}>"
        if self.instance_id:
            value += f';+sip.instance="<{self.instance_id}>"'
        return value + f";expires={expires}"

    def _new_attempt(self, expires: int) -> Request:
        self._challenges = 0
        if expires == 0:
            self.state = RegistrationState.UNREGISTERING
        else:
            self.state = RegistrationState.REGISTERING
        return self._send(expires)

    def _send(self, expires: int) -> Request:
        """The next REGISTER of this binding: CSeq + 1, credentials from the cached challenge."""
        self._cseq += 1
        account = self.account
        h = Headers()
        h.add("Max-Forwards", "70")
        h.add("From", account.from_header(self._from_tag))
        h.add("To", account.name_addr())
        h.add("Call-ID", self.call_id)
        h.add("CSeq", f"{self._cseq} REGISTER")
        h.add("Contact", self._contact_value(expires))
        h.add("Expires", str(expires))
        for name, value in self._extra_headers:
            h.add(name, value)
        request = Request("REGISTER", account.registrar_uri(), h)
        self._digest.authorize(request, to_server=True)
        self._pending = request
        self._pending_expires = expires
        return request

    # ------------------------------------------------------------------ outcomes

    def _on_challenge(self, pending: Request, response: Response, now: float, unregistering: bool) -> Request | None:
        # A REGISTER goes to the account's own next hop (the outbound proxy or the domain)
        # and nowhere else, so it is always "to the server"; the realm pin still applies.
        outcome = self._digest.handle_challenge(pending, response, to_server=True)
        self._challenges += 1
        if outcome is ChallengeOutcome.REJECTED and self._challenges == 1 and (
                pending.headers.get("Authorization") or pending.headers.get("Proxy-Authorization")):
            # Refused credentials from an *earlier* exchange (a cached nonce): a registrar
            # that restarted forgets its nonces without saying stale=true, and without qop
            # there is no nc to tell reuse from first use.  The password is judged on the
            # nonce just given: one retry with it (a wrong one is refused again, below).
            outcome = ChallengeOutcome.RETRY
        if outcome is ChallengeOutcome.RETRY and self._challenges <= MAX_CHALLENGES_PER_ATTEMPT:
            return self._send(self._pending_expires)
        if unregistering:
            self._finish_unregister(f"{response.status} {response.reason}")
            return None
        if outcome is ChallengeOutcome.UNTRUSTED:
            # A realm other than the one the account's server pinned: never answered.
            return self._give_up(now, response.status,
                                 f"{response.status} {response.reason}: not the account's realm")
        if outcome is ChallengeOutcome.UNSUPPORTED:
            # No Digest challenge we can compute (e.g. AKA): retrying cannot help.
            return self._give_up(now, response.status, f"{response.status} {response.reason}: no supported challenge")
        self._digest.forget()  # next attempt starts from a fresh challenge, not a refused nonce
        return self._fail(now, response.status, f"{response.status} {response.reason}", auth=True)

    def _on_success(self, response: Response, now: float, unregistering: bool) -> Request | None:
        if unregistering:
            self._finish_unregister("stopped")
            return None
        granted = self._granted(response)
        if granted <= 0:
            return self._fail(now, response.status, "registrar granted no lifetime", auth=False)
        self._failures = 0
        self.granted_expires = granted
        self.bound_until = now + granted
        self._events.append(Registered(expires=granted, contact=self.contact_uri))
        if self._stop_requested:
            self._stop_requested = False
            return self._new_attempt(0)
        self.state = RegistrationState.REGISTERED
        self._deadline = now + self.refresh_delay(granted)
        return None

    def _granted(self, response: Response) -> int:
        """Our Contact's ``expires`` in the 2xx, else its Expires header, else what we asked
        for (§10.2.4, §10.3 step 8: the 2xx lists every current binding of the AOR)."""
        for value in response.headers.get_all("Contact"):
            for entry in split_header_list(value):
                if entry.strip() == "*":
                    continue
                try:
                    na = parse_name_addr(entry)
                except ValueError:
                    continue
                instance = na.params.get("+sip.instance")
                ours = same_binding(na.uri, self._contact) or (
                    self.instance_id is not None
                    and instance is not None
                    and instance.strip('"<>') == self.instance_id
                )
                if ours:
                    expires = delta_seconds(na.params.get("expires"))
                    if expires is not None:
                        return expires
        header = delta_seconds(response.headers.get("Expires"))
        if header is not None:
            return header
        return self._pending_expires

    @staticmethod
    def refresh_delay(granted: float) -> float:
        """Seconds after a 2xx to refresh: ``granted - min(30, granted / 2)`` (see module doc)."""
        return granted - min(REFRESH_MARGIN, granted / 2)

    def backoff_delay(self, failures: int, *, auth: bool = False) -> float:
        """RFC 5626 §4.5: a random 50-100 % of ``min(retry_max, retry_min * 2**failures)``."""
        ceiling: float = min(self.retry_max, self.retry_min * (2 ** min(failures, 64)))
        delay = ceiling * self._rng.uniform(0.5, 1.0)
        delay = min(self.retry_max, max(self.retry_min, delay))
        if auth:
            delay = max(delay, self.auth_retry_min)
        return delay

    def _fail(
        self, now: float, status: int | None, reason: str, *, auth: bool, retry_after: int | None = None
    ) -> Request | None:
        """Record a failed attempt and schedule the retry; returns the un-REGISTER to send
        when a :meth:`stop` was waiting and an earlier binding may still be alive."""
        if self._stop_requested:
            return self._stop_after_pending(now, reason)
        self._failures += 1
        if retry_after is not None:
            delay = max(float(retry_after), self.retry_min)
        else:
            delay = self.backoff_delay(self._failures, auth=auth)
        self.state = RegistrationState.BACKOFF
        self._deadline = now + delay
        if self.bound_until is not None and now >= self.bound_until:
            self.bound_until = None
        self._events.append(RegistrationFailed(status=status, reason=reason, auth=auth, retry_in=delay))
        return None

    def _stop_after_pending(self, now: float, reason: str) -> Request | None:
        self._stop_requested = False
        if self.bound_until is not None and now < self.bound_until:
            return self._new_attempt(0)
        self._finish_unregister(reason)
        return None

    def _give_up(self, now: float, status: int | None, reason: str) -> Request | None:
        if self._stop_requested:
            return self._stop_after_pending(now, reason)
        self.state = RegistrationState.FAILED
        self._deadline = None
        self._events.append(RegistrationFailed(status=status, reason=reason, auth=True, retry_in=None))
        return None

    def _finish_unregister(self, reason: str) -> None:
        self.state = RegistrationState.IDLE
        self._stop_requested = False
        self._deadline = None
        self.bound_until = None
        self.granted_expires = None
        self._events.append(Unregistered(reason=reason))
