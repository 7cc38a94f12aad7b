"""A call's two holds: ours (the browser's ``hold``: a re-INVITE with ``a=sendonly``) and
the SIP side's (its SDP says ``sendonly``/``inactive``, or the RFC 2543 ``c=0.0.0.0``).

Why an object of its own: hold is a small state machine fed by the SIP leg's SDP — our
re-offer answered or refused, the far end's re-offer, the first answer, an ACK's answer, a
new dialog after a transfer — whose only effect is to tell the call what to apply
(``apply(local, remote, info)``: the media paused toward the SIP side, status HOLD or
ESTABLISHED).  Built by the call environment's ``make_hold`` factory.
"""

from __future__ import annotations

from typing import Callable

from wcsgw.calls.errors import CallError, Codes
from wcsgw.sdp.model import MediaDescription, SessionDescription

__all__ = ["Hold", "holds_us"]


def _is_hold_address(sd: SessionDescription, media: MediaDescription) -> bool:
    """RFC 2543 hold: c=0.0.0.0 (still sent by old phones)."""
    connection = sd.connection_for(media)
    return connection is not None and connection.address in ("0.0.0.0", "::")


def holds_us(sd: SessionDescription) -> bool:
    """Does this SDP of the SIP side hold us — its audio ``sendonly`` or ``inactive``, or the
    RFC 2543 ``c=0.0.0.0``?  The same test for a re-offer, a first answer (2xx), an ACK's
    answer and an incoming INVITE's offer: RFC 3264 §6.1 forbids sending to a stream marked
    so, whichever message of the offer/answer exchange carried it."""
    audio = sd.first_audio()
    if audio is None:
        return False
    return sd.direction_for(audio) in ("sendonly", "inactive") or _is_hold_address(sd, audio)


class Hold:
    """Both holds of one call (see the module docstring)."""

    def __init__(self, *, reoffer: Callable[[str], None],
                 apply: Callable[[bool, bool, str], None]) -> None:
        """``reoffer(direction)``: send our re-INVITE with that audio direction (raises
        :class:`CallError` when the dialog cannot now); ``apply(local, remote, info)``: the
        media and the status follow the two holds."""
        self._reoffer = reoffer
        self._apply = apply
        #: hold as we asked for it (re-INVITE sendonly) and as the SIP side asked for it
        self.local = False
        self.remote = False
        #: the local hold our re-INVITE in flight asks for, None when none is in flight
        self._asked: bool | None = None

    @property
    def direction(self) -> str:
        """The audio direction we want toward the SIP side: our own hold stays in every
        answer and offer we make."""
        return "sendonly" if self.local else "sendrecv"

    def ask(self, local: bool) -> None:
        """The browser's ``hold`` (True) or ``unhold`` (False): a re-INVITE, applied once the
        SIP side agreed (:meth:`answered`).  Nothing when we already are so."""
        if self.local == local:
            return
        if self._asked is not None:
            raise CallError(Codes.BAD_STATE, "a re-INVITE is already in progress; try again")
        self._reoffer("sendonly" if local else "sendrecv")
        self._asked = local

    def answered(self) -> None:
        """Our re-INVITE got its 2xx: the hold it asked for holds."""
        asked, self._asked = self._asked, None
        if asked is not None:
            self.set(local=asked)

    def refused(self) -> None:
        """Our re-INVITE was refused: the call stays as it was (RFC 3261 §14.1)."""
        self._asked = None

    def set(self, *, local: bool | None = None, remote: bool | None = None,
            info: str = "") -> None:
        """Change either hold and have the call apply both."""
        if local is not None:
            self.local = local
        if remote is not None:
            self.remote = remote
        self._apply(self.local, self.remote, info)

    def take_direction(self, sd: SessionDescription | None, info: str = "") -> None:
        """The SIP side's SDP of a call that is up — its first answer (2xx), the ACK's answer
        to our offer, an incoming INVITE's offer — says whether it holds us: the same hold as
        its re-offer would make.  Without usable SDP the hold stays as it was.  Not for early
        media: a 183's ``sendonly`` is ringback, and a call not answered yet has no HOLD."""
        self.set(remote=self.remote if sd is None else holds_us(sd), info=info)

    def reoffered(self, offer: SessionDescription) -> None:
        """The SIP side's re-offer (answered already): a change of its hold is applied."""
        remote = holds_us(offer)
        if remote != self.remote:
            self.set(remote=remote)

    def new_dialog(self, sd: SessionDescription | None, info: str) -> None:
        """The call moved to a new dialog (a transfer): neither old hold carries over; its
        answer may hold us afresh."""
        self.set(local=False, remote=sd is not None and holds_us(sd), info=info)
