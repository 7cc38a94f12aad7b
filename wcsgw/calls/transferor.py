"""The browser's ``transfer``: this call as the transferor (RFC 3515 REFER, RFC 3891 Replaces).

Blind: a REFER to the target.  Attended: the target is the session's other call's far end,
asked to replace that call's dialog, which joins the two far ends.  The far end reports its
call to the target with NOTIFYs (sipfrag); they become ``transferStatus`` notifications
(ACCEPTED, TRYING, COMPLETED, FAILED).  Once the target answered, our part is done: the call
ends (and, attended, the other call too, in case the target ignored Replaces).

Why an object of its own: one REFER and its subscription at a time, with its own state; it
touches the call only through the SIP leg to REFER on and two callbacks (a status to report,
the transfer completed).  Built by the call environment's ``make_transferor`` factory.
"""

from __future__ import annotations

from typing import Any, Callable

import attr

from wcsgw.calls.errors import CallError, Codes
from wcsgw.sip.events import ReferAccepted, ReferFailed, ReferProgress
from wcsgw.sip.refer import replaces_param

__all__ = ["Transfer", "Transferor"]


@attr.s(auto_attribs=True)
class Transfer:
    """A transfer this call asked for (REFER sent), until its final NOTIFY."""

    target: str
    #: the session's other call whose dialog the target is to replace (attended), or None
    replaces_call: Any = None


class Transferor:
    """One call's REFERs (see the module docstring)."""

    def __init__(self, *, status: Callable[[str, int | None], None],
                 completed: Callable[[Transfer], None]) -> None:
        """``status(state, sip_status)``: a ``transferStatus`` to report; ``completed``: the
        target answered — the call (and an attended transfer's other call) ends."""
        self._status = status
        self._completed = completed
        #: the transfer running, None when none is
        self.active: Transfer | None = None

    def start(self, invite: Any, target_uri: str, now: float,
              replaces_call: Any = None) -> None:
        """REFER ``target_uri`` on ``invite`` (the call's SIP leg); attended when
        ``replaces_call`` is given (its far end is the target).  :class:`CallError` when the
        other call is not up or the dialog cannot REFER now."""
        replaces = None
        if replaces_call is not None:
            other = replaces_call.invite
            if other is None or other.dialog is None or replaces_call.status.terminal:
                raise CallError(Codes.BAD_STATE, "the other call is not established", "target")
            replaces = replaces_param(other.dialog)
            target_uri = replaces_call.request_uri
        try:
            invite.refer(target_uri, now, replaces=replaces)
        except (RuntimeError, ValueError) as exc:
            raise CallError(Codes.BAD_STATE, f"cannot transfer now: {exc}", "target") from None
        self.active = Transfer(target_uri, replaces_call)

    def accepted(self, event: ReferAccepted) -> None:
        if self.active is not None:
            self._status("ACCEPTED", event.status)

    def failed(self, event: ReferFailed) -> None:
        if self.active is not None:
            self.active = None
            self._status("FAILED", event.status)

    def progress(self, event: ReferProgress) -> None:
        """A NOTIFY: its sipfrag says how the far end's call to the target is going."""
        transfer = self.active
        if transfer is None:
            return
        if event.sipfrag_status < 200:
            self._status("TRYING", event.sipfrag_status)
        elif event.sipfrag_status < 300:
            self.active = None
            self._status("COMPLETED", event.sipfrag_status)
            self._completed(transfer)
        else:
            self.active = None
            self._status("FAILED", event.sipfrag_status)
