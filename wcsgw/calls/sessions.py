"""A browser session as the call layer keeps it, and what it hears back.

A session is one browser connection (one WebSocket, or the next one that resumes it: see
:mod:`wcsgw.calls.resume`): who it is from, the SIP account it connected with, its
registration and registered contact, and its live calls.  The gateway
(:class:`~wcsgw.calls.gateway.CallGateway`) owns the sessions; what a session is and how a
REGISTER client's events reach it as ``sessionStatus`` is here, so that the record, the
listener protocol the WebSocket layer implements and the status mapping read in one place.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

import attr

from wcsgw.calls.resume import Relay
from wcsgw.calls.status import SessionStatus
from wcsgw.sip.account import SipAccount
from wcsgw.sip.endpoint import AccountRegistration
from wcsgw.sip.registration import Registered, RegistrationFailed, Unregistered

__all__ = ["Session", "SessionListener", "registration_status"]


class SessionListener(Protocol):
    """What a browser session hears back (the WebSocket layer turns these into notifications)."""

    def session_status(self, status: str, sip_status: int | None, info: str) -> None: ...

    def call_status(self, call: dict[str, Any]) -> None: ...


@attr.s(auto_attribs=True, eq=False)
class Session:
    id: str
    listener: SessionListener
    account: SipAccount | None = None
    #: the ``[[accounts]] name`` of a server-held account the session is bound to (None: it
    #: brought its own account, or none)
    account_name: str | None = None
    connected: bool = False
    registration: AccountRegistration | None = None
    calls: dict[str, Any] = attr.ib(factory=dict)  # callId -> Call
    #: the user part of this session's own registered contact (``<login>-<token>``): the
    #: registrar forks an account's calls to each logged-in browser by it
    contact_user: str | None = None
    #: who the WebSocket is from, as [limits] count it (``address_key`` of the TCP peer:
    #: the IPv4 address or the IPv6 /64; None: not known)
    peer: str | None = None
    #: what stands between the session and its socket (wcsgw.calls.resume.Relay): queues
    #: while the socket is gone, so the session can be resumed on another one; ``listener``
    #: is this relay, or a hook tap around it
    relay: Relay | None = None
    #: whether its registration ever succeeded: a later failure with a retry scheduled is a
    #: registration *lost for now* (a PBX restarting), not a login that failed
    was_registered: bool = False


def _failed_status(event: RegistrationFailed) -> tuple[str, int | None, str]:
    status = SessionStatus.AUTHENTICATION_FAIL if event.auth else SessionStatus.FAILED
    return status.value, event.status, event.reason


#: A REGISTER client's event -> the ``sessionStatus`` (status, SIP status, info) it makes.
_REGISTRATION_STATUS: dict[type, Callable[[Any], tuple[str, int | None, str]]] = {
    Registered: lambda event: (SessionStatus.REGISTERED.value, 200, ""),
    RegistrationFailed: _failed_status,
    Unregistered: lambda event: (SessionStatus.UNREGISTERED.value, None, event.reason),
}


def registration_status(event: object, session: Session | None = None
                        ) -> tuple[str, int | None, str] | None:
    """The ``sessionStatus`` (status, SIP status, info) a REGISTER client's event makes for
    ``session``; None for an event the browser is not told about.

    A failure after the session was registered, with a retry on its way, is ``UNREGISTERED``
    naming the retry, not ``FAILED``: the Web SDK ends a session on ``FAILED``, and a PBX
    that restarts mid-call must not end the browser's session (its calls go on, and the
    registration comes back: tests.test_net_faults)."""
    if session is not None and isinstance(event, Registered):
        session.was_registered = True
    if (session is not None and session.was_registered and isinstance(event, RegistrationFailed)
            and not event.auth and event.retry_in is not None):
        return (SessionStatus.UNREGISTERED.value, event.status,
                f"Registration lost ({event.reason}); retrying in {max(1, round(event.retry_in))} s")
    report = _REGISTRATION_STATUS.get(type(event))
    return report(event) if report is not None else None
