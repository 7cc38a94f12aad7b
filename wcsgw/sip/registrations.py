"""The accounts an endpoint keeps registered: one REGISTER client per account, sent through the
endpoint's transactions, woken by one Deadline in the endpoint's heap.

:class:`~wcsgw.sip.registration.Registration` is the sans-IO REGISTER client of one account
(what to send, when to refresh, retry or give up); :class:`Registrations` is what runs it on an
endpoint: it sends its REGISTERs, feeds it their answers or failures, keeps its next instant in
the heap while no REGISTER is in flight, hands its events to the listener, and forgets it once
its un-REGISTER is settled.  It holds no socket and reads no clock, as the endpoint does not;
the endpoint composes one and keeps ``register``/``unregister`` as its API.
"""

from __future__ import annotations

import random
from typing import Callable, Iterator

import attr
from twisted.logger import Logger

from wcsgw.sip.account import SipAccount, escape_user
from wcsgw.sip.message import Request, Response
from wcsgw.sip.registration import Registration, RegistrationFailed
from wcsgw.sip.registrationlog import FAILURE_FORMAT, failure_fields
from wcsgw.sip.target import Target, unbracket
from wcsgw.sip.timers import Deadline, Deadlines
from wcsgw.sip.trust import AddressBook

log = Logger(namespace="wcsgw.sip")

#: :meth:`SipEndpoint.send_request <wcsgw.sip.endpoint.SipEndpoint.send_request>` as the
#: registrations use it: request, target, now, on_response, on_failure
SendRequest = Callable[
    [Request, Target, float, Callable[[Response, float], None], Callable[[str, float], None]],
    object,
]


@attr.s(auto_attribs=True, eq=False)
class AccountRegistration:
    """One account's REGISTER client, with where its requests go and who listens."""

    account: SipAccount
    registration: Registration
    target: Target
    listener: Callable[[object], None] | None = None
    busy: bool = False  # a REGISTER transaction is in flight
    stopping: bool = False
    #: the refresh, retry or give-up instant, in the endpoint's heap while no REGISTER is
    #: in flight (set by the endpoint when it starts keeping the registration)
    timer: Deadline | None = None


class Registrations:
    """The registrations one endpoint keeps, in the order they were started."""

    def __init__(self, send_request: SendRequest, deadlines: Deadlines, addresses: AddressBook,
                 contact_uri: Callable[[str | None, str], str], rng: random.Random,
                 wake: Callable[[], None]) -> None:
        self._send_request = send_request
        self._deadlines = deadlines
        self._addresses = addresses
        self._contact_uri = contact_uri
        self._rng = rng
        self._wake = wake
        self._registrations: dict[AccountRegistration, None] = {}  # ordered set
        #: called with each registration no longer kept (after its un-REGISTER)
        self.removed: list[Callable[[AccountRegistration], None]] = []

    def __iter__(self) -> Iterator[AccountRegistration]:
        return iter(list(self._registrations))

    def register(
        self,
        account: SipAccount,
        now: float,
        listener: Callable[[object], None] | None = None,
        contact_user: str | None = None,
    ) -> AccountRegistration:
        """See :meth:`SipEndpoint.register <wcsgw.sip.endpoint.SipEndpoint.register>`."""
        host, port, transport = account.next_hop()
        target = Target(transport.upper(), unbracket(host), port)
        contact = self._contact_uri(contact_user or escape_user(account.login), transport)
        registration = Registration(account, contact, rng=random.Random(self._rng.random()))
        reg = AccountRegistration(account, registration, target, listener)
        reg.timer = self._deadlines.new(lambda now: self._registration_due(reg, now))
        self._registrations[reg] = None
        self._addresses.want(account.server_hosts())  # whose INVITEs and challenges we trust
        self._send_register(reg, registration.start(now), now)
        return reg

    def unregister(self, reg: AccountRegistration, now: float) -> None:
        """Remove the binding (Expires: 0) if there is one, and stop refreshing."""
        reg.stopping = True
        request = reg.registration.stop(now)
        if request is not None:
            self._send_register(reg, request, now, force=True)
        else:
            self._forget(reg)
        self._registration_events(reg)
        self._rearm(reg)
        self._wake()

    def _send_register(
        self, reg: AccountRegistration, request: Request, now: float, force: bool = False
    ) -> None:
        reg.busy = True

        def on_response(response: Response, now: float) -> None:
            if response.status < 200:
                return
            reg.busy = False
            follow_up = reg.registration.receive_response(response, now)
            if follow_up is not None:
                self._send_register(reg, follow_up, now)
            self._registration_events(reg)
            self._forget_if_done(reg)
            self._rearm(reg)

        def on_failure(reason: str, now: float) -> None:
            reg.busy = False
            reg.registration.transaction_failed(now, reason)
            self._registration_events(reg)
            self._forget_if_done(reg)
            self._rearm(reg)

        self._send_request(request, reg.target, now, on_response, on_failure)
        self._rearm(reg)

    def _registration_due(self, reg: AccountRegistration, now: float) -> None:
        """The registration's refresh, retry or give-up instant came."""
        if reg.busy or reg not in self._registrations:
            return
        request = reg.registration.handle_timer(now)
        if request is not None:
            self._send_register(reg, request, now)
        self._registration_events(reg)
        self._rearm(reg)

    def _rearm(self, reg: AccountRegistration) -> None:
        """Put the registration's next instant in the heap, unless a REGISTER is in flight
        (its answer decides the next one) or the endpoint no longer keeps it."""
        if reg.timer is None:
            return
        when = reg.registration.next_deadline()
        if when is None or reg.busy or reg not in self._registrations:
            reg.timer.clear()
        else:
            reg.timer.set(when)

    def _registration_events(self, reg: AccountRegistration) -> None:
        for event in reg.registration.take_events():
            if isinstance(event, RegistrationFailed):  # why, and where to look: one warn line
                log.warn(FAILURE_FORMAT, **failure_fields(reg.account.aor(), event, reg.target))
            else:
                log.info("registration {aor}: {event}", aor=reg.account.aor(),
                         event=type(event).__name__)
            if reg.listener is not None:
                reg.listener(event)

    def _forget_if_done(self, reg: AccountRegistration) -> None:
        if reg.stopping and not reg.busy:
            self._forget(reg)

    def _forget(self, reg: AccountRegistration) -> None:
        if reg in self._registrations:
            del self._registrations[reg]
            if reg.timer is not None:
                reg.timer.clear()
            for observer in list(self.removed):
                observer(reg)
