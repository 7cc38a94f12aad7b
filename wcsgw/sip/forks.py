"""The dialogs one INVITE of ours makes, one per fork that answers it (RFC 3261 §12.1.2, §13.2.2.4).

A proxy may fork our INVITE, and every callee that answers with a To tag makes a dialog of its
own: an early one with a 1xx (§13.2.2.1), a confirmed one with a 2xx, which the UAC core — not
the transaction, since a 2xx is end-to-end — ACKs, and ACKs again for each retransmission of
that 2xx (the UAS has not seen our ACK).  :class:`Forks` keeps those dialogs and ACKs by To tag
for :class:`~wcsgw.sip.invite.OutgoingInvite`; which 2xx the call wants, and ending the others
with BYE, stay the session's.
"""

from __future__ import annotations

from typing import Callable

from wcsgw.sip.dialog import Dialog
from wcsgw.sip.dialogs import dialog_target
from wcsgw.sip.endpoint import SipEndpoint
from wcsgw.sip.errors import SipParseError
from wcsgw.sip.message import Request, Response
from wcsgw.sip.target import Target
from wcsgw.sip.usage.host import credentials_of, ignore_response

__all__ = ["Forks", "to_tag"]


def to_tag(response: Response) -> str | None:
    """The To tag of ``response`` (which fork answered), None when it has none."""
    try:
        return response.to.tag or None
    except (SipParseError, ValueError):
        return None


class Forks:
    """The dialogs of one INVITE's forks, by the callee's To tag.

    ``contact`` is our Contact URI, ``transport`` the INVITE's (the ACK's default, as for
    every in-dialog request), ``to_server(target)`` says whether a request to ``target`` may
    carry the account's credentials; ``route`` and ``unroute`` add a new dialog to the
    endpoint's DialogRouter and take one off it.
    """

    def __init__(self, endpoint: SipEndpoint, contact: str, transport: str, *,
                 to_server: Callable[[Target], bool], route: Callable[[Dialog], None],
                 unroute: Callable[[Dialog], None]) -> None:
        self.endpoint = endpoint
        self._local_contact = f"<{contact}>"
        self._transport = transport
        self._to_server = to_server
        self._route = route
        self._unroute = unroute
        #: early dialogs by the callee's To tag (one per fork that sent a 1xx with a tag)
        self.early: dict[str, Dialog] = {}
        self._acks: dict[str, tuple[Request, Target]] = {}  # To tag -> ACK as sent

    def provisional(self, invite: Request, response: Response, tag: str) -> None:
        """A 1xx with To tag ``tag``: that fork's early dialog is made, or updated."""
        dialog = self.early.get(tag)
        if dialog is None:
            dialog = self._new_dialog(invite, response)
            self.early[tag] = dialog
            self._route(dialog)
        else:
            dialog.receive_response(response)

    def confirm(self, invite: Request, response: Response, tag: str, now: float) -> Dialog:
        """The wanted 2xx: the dialog it confirms (its fork's early one, or a new one,
        routed), ACKed; the other forks' early dialogs are dropped."""
        dialog = self.early.pop(tag, None)
        if dialog is not None:
            dialog.receive_response(response)  # confirms; route set from the 2xx
        else:
            dialog = self._new_dialog(invite, response)
            self._route(dialog)
        self.drop_early()
        self.ack(dialog, invite, now)
        return dialog

    def ack_unwanted(self, invite: Request, response: Response, now: float) -> Dialog:
        """A 2xx the call does not want (another fork's, or after the call was settled): its
        dialog, not kept here, ACKed, for the session to end with BYE."""
        dialog = self._new_dialog(invite, response)
        self.ack(dialog, invite, now)
        return dialog

    def drop_early(self) -> None:
        """The call is settled: the early dialogs left are over."""
        for dialog in self.early.values():
            dialog.terminate()
            self._unroute(dialog)
        self.early.clear()

    def ack(self, dialog: Dialog, invite: Request, now: float) -> None:
        """ACK the 2xx that made ``dialog`` and remember the ACK for its retransmissions."""
        # §13.2.2.4: the INVITE's CSeq number, and the same credentials as the INVITE — but
        # only when the ACK goes to the account's proxy: without a Record-Route it goes
        # straight to the callee, which must not get a response hash to search offline.
        target = dialog_target(dialog, self._transport)
        credentials = credentials_of(invite) if self._to_server(target) else []
        ack = dialog.create_ack(invite.cseq[0], credentials)
        self.endpoint.send_request(ack, target, now, ignore_response)
        self._acks[dialog.remote_tag] = (ack, target)

    def ack_again(self, tag: str, now: float) -> bool:
        """A 2xx of fork ``tag`` came again: re-send its ACK, True; False for a new 2xx."""
        sent = self._acks.get(tag)
        if sent is None:
            return False
        ack, target = sent
        self.endpoint.send_request(ack, target, now, ignore_response, stamp=False)
        return True

    def _new_dialog(self, invite: Request, response: Response) -> Dialog:
        return Dialog.from_uac(invite, response, local_contact=self._local_contact)
