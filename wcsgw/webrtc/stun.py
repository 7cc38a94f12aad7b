"""ICE-lite on the server side: answer the browser's STUN Binding requests, sans-IO.

A gateway sits on a known address, so it does not gather or check candidates itself: it
advertises one host candidate with ``a=ice-lite`` and only *answers* connectivity checks
(RFC 8445 §2.5).  The browser is then always the controlling agent; it starts DTLS and media as
soon as one of its checks succeeds (before USE-CANDIDATE, measured 60-70 ms earlier), and keeps
sending a check every ~2.5 s on the selected pair for consent freshness (RFC 7675) for the
whole call.  Unanswered, Chrome stops sending audio after ~5.6 s — so answering must stay
prompt and must never queue behind media.

This module holds no socket and reads no clock: :class:`IceLiteResponder` takes
``(datagram, source address, now)`` and returns the bytes to send back, and tracks which
addresses passed an authenticated check (the only ones media is accepted from and sent to)
and when consent was last given.  The message codec is aioice's public ``aioice.stun``.

Security rules (why checks are ignored rather than answered with errors):

* USERNAME must be ``<our ufrag>:<their ufrag>`` and MESSAGE-INTEGRITY must verify with *our*
  ice-pwd (RFC 8445 §7.2.2: the short-term credential is the responder's password).  Anything
  else gets no answer: an error response would tell a prober that the port is live and would
  let spoofed sources make us send to third parties.
* Only Binding *requests* are answered; indications (keep-alives) and responses are dropped.
"""

from __future__ import annotations

import secrets
import string
import struct
from typing import Optional

import attrs
from aioice import stun

__all__ = [
    "Address",
    "IceCredentials",
    "IceLiteResponder",
    "CheckOutcome",
    "is_stun",
    "make_ice_credentials",
]

Address = tuple[str, int]

#: RFC 8445 §5.3: ice-char = ALPHA / DIGIT / "+" / "/".  We use letters and digits only, so
#: the values are also safe in USERNAME, logs and URLs.
_ICE_CHARS = string.ascii_letters + string.digits

_MAGIC_COOKIE = b"\x21\x12\xa4\x42"


@attrs.frozen
class IceCredentials:
    """One side's ICE username fragment and password (RFC 8445 §5.3: ≥4 and ≥22 ice-chars)."""

    ufrag: str
    pwd: str


def make_ice_credentials(ufrag_length: int = 8, pwd_length: int = 24) -> IceCredentials:
    """Fresh random credentials: the password is the key for every STUN message integrity
    check, so it must be unguessable (``secrets``, ~142 bits at the default length)."""
    if ufrag_length < 4 or pwd_length < 22:
        raise ValueError("RFC 8445 needs ice-ufrag >= 4 and ice-pwd >= 22 characters")
    pick = secrets.choice
    return IceCredentials(
        ufrag="".join(pick(_ICE_CHARS) for _ in range(ufrag_length)),
        pwd="".join(pick(_ICE_CHARS) for _ in range(pwd_length)),
    )


def is_stun(data: bytes) -> bool:
    """RFC 7983 demultiplexing (first byte 0..3) plus the RFC 5389 magic cookie.

    The cookie check keeps stray bytes in that range from ever reaching the STUN parser.
    """
    return len(data) >= 20 and data[0] < 4 and data[4:8] == _MAGIC_COOKIE


@attrs.frozen
class CheckOutcome:
    """An authenticated Binding request was answered.

    ``first`` is True for the first authenticated check of the session (ICE "connected" for a
    lite agent: the browser starts DTLS right after), ``nominated`` when the request carried
    USE-CANDIDATE, ``new_address`` when ``address`` had not passed a check before.
    ``forgotten``: after an ICE restart, the addresses of the old credentials that are no
    longer admitted now that a pair of the new ones was nominated (a shared port un-routes
    them).
    """

    response: bytes
    address: Address
    first: bool
    nominated: bool
    new_address: bool
    forgotten: tuple[Address, ...] = ()


class IceLiteResponder:
    """Answers connectivity checks for one ICE session and keeps the consent bookkeeping.

    ``selected`` is where we send (DTLS and media): the nominated address once the browser has
    nominated one, before that the most recent address that passed a check — Chrome sends
    DTLS before nominating, and the DTLS answer must go back to where it came from (the
    adapter reports DTLS/media sources with :meth:`note_traffic` for that).
    """

    def __init__(self, local: IceCredentials, remote_ufrag: Optional[str] = None) -> None:
        self.local = local
        self.remote_ufrag = remote_ufrag
        self._key = local.pwd.encode("utf-8")
        self._last_check: dict[Address, float] = {}
        self._nominated: Optional[Address] = None
        self._latest: Optional[Address] = None
        self.started_at: Optional[float] = None
        self.requests_ignored = 0
        #: addresses proven under the credentials before the latest ICE restart
        self._previous: set[Address] = set()
        #: ICE restarts so far (each one a new generation of credentials)
        self.restarts = 0

    # -- configuration ---------------------------------------------------------------------

    def set_remote_ufrag(self, ufrag: str) -> None:
        """The browser's ufrag, from its SDP: checks naming another one are ignored."""
        self.remote_ufrag = ufrag

    def restart(self, local: IceCredentials, remote_ufrag: str) -> None:
        """An ICE restart (RFC 8445 §9, RFC 8839 §4.4.1.1.1): both sides' credentials are new.

        From now on only checks with the new ones are answered — a check naming the old ufrag
        or keyed with the old password is ignored like any stranger's.  The addresses the old
        credentials proved stay admitted, and we keep sending to the selected one, until a
        check with the new credentials nominates a pair: a restart without a network change
        must not cut media that still flows, and one after a change has nothing left on the
        old pair to cut.  Then the old addresses are forgotten and the nominated one is where
        media goes (the DTLS association and SRTP keys are untouched: a restart does not redo
        DTLS).  The consent clock runs on: no check for the consent timeout, on either pair,
        still fails the leg.
        """
        self.local = local
        self.remote_ufrag = remote_ufrag
        self._key = local.pwd.encode("utf-8")
        self._previous = set(self._last_check)
        self._nominated = None
        self.restarts += 1

    def start(self, now: float) -> None:
        """Start the consent clock: the first check must come within the consent timeout."""
        self.started_at = now

    # -- queries ---------------------------------------------------------------------------

    @property
    def selected(self) -> Optional[Address]:
        return self._nominated if self._nominated is not None else self._latest

    @property
    def nominated(self) -> Optional[Address]:
        return self._nominated

    def note_traffic(self, address: Address) -> None:
        """DTLS or media came from ``address``: before nomination, answer there.

        Only authenticated addresses count (the caller drops everything else anyway).
        """
        if self._nominated is None and address in self._last_check:
            self._latest = address

    def is_authenticated(self, address: Address) -> bool:
        """Did ``address`` pass an authenticated check?  Media from anyone else is dropped."""
        return address in self._last_check

    def consent_deadline(self, timeout: float) -> Optional[float]:
        """When consent runs out unless another check arrives on the selected address.

        Before the first check the clock runs from :meth:`start`; None if not started.
        """
        selected = self.selected
        if selected is not None:
            return self._last_check[selected] + timeout
        if self.started_at is None:
            return None
        return self.started_at + timeout

    # -- input -----------------------------------------------------------------------------

    def receive(self, data: bytes, address: Address, now: float) -> Optional[CheckOutcome]:
        """Handle one datagram that :func:`is_stun` accepted; None means "send nothing"."""
        try:
            request = stun.parse_message(data)
        except (ValueError, struct.error):
            # Includes a FINGERPRINT mismatch and unknown methods; struct.error is aioice
            # reading an attribute shorter than its type (a 2-byte ICE-CONTROLLING: fuzzing)
            self.requests_ignored += 1
            return None
        if (
            request.message_method != stun.Method.BINDING
            or request.message_class != stun.Class.REQUEST
        ):
            return None
        username = request.attributes.get("USERNAME")
        if not isinstance(username, str) or ":" not in username:
            self.requests_ignored += 1
            return None
        ours, _, theirs = username.partition(":")
        if ours != self.local.ufrag or (
            self.remote_ufrag is not None and theirs != self.remote_ufrag
        ):
            self.requests_ignored += 1
            return None
        if not request.check_message_integrity(self._key):
            self.requests_ignored += 1
            return None

        response = stun.Message(
            message_method=stun.Method.BINDING,
            message_class=stun.Class.RESPONSE,
            transaction_id=request.transaction_id,
            attributes={"XOR-MAPPED-ADDRESS": address},
        )
        response.add_message_integrity(self._key)  # also adds FINGERPRINT, last

        first = not self._last_check
        new_address = address not in self._last_check
        self._previous.discard(address)  # proven again, with the current credentials
        self._last_check[address] = now
        self._latest = address
        nominated = "USE-CANDIDATE" in request.attributes
        forgotten: tuple[Address, ...] = ()
        if nominated:
            self._nominated = address
            forgotten = self._forget_previous(address)
        return CheckOutcome(
            response=bytes(response),
            address=address,
            first=first,
            nominated=nominated,
            new_address=new_address,
            forgotten=forgotten,
        )

    def _forget_previous(self, nominated: Address) -> tuple[Address, ...]:
        """A pair of the new credentials is nominated: the old generation's addresses that no
        check with the new ones proved again go."""
        gone = tuple(self._previous)
        self._previous = set()
        for address in gone:
            self._last_check.pop(address, None)
        if self._latest in gone:
            self._latest = nominated
        return gone
