"""SIP transactions, sans-IO: RFC 3261 §17 with the RFC 6026 fixes for 2xx to INVITE.

Messages, transport errors and the time come in as method calls with ``now`` passed explicitly;
datagrams to send (:meth:`TransactionLayer.take_outgoing`), events for the transaction user
(:meth:`TransactionLayer.take_events`) and the next instant the layer wants to be woken
(:meth:`TransactionLayer.next_deadline`) come out.  Nothing here reads a clock or touches a
socket, so every timer rule is a unit test with a fake clock (see ``wcsgw.sip.driver``).

The four state machines are small transition tables keyed by ``(state, input)``; an input with
no entry in the table is absorbed, which is how the RFC's "MUST be discarded" rules read.
Matching is a dict lookup per message: client transactions by (top-Via branch, CSeq method)
(§17.1.3), server transactions by (branch, sent-by, method) (§17.2.3), with the RFC 2543
fall-back keys for branches lacking the magic cookie.

The package's modules: :mod:`~wcsgw.sip.transaction.events` (what the TU is told),
:mod:`~wcsgw.sip.transaction.matching` (the keys), :mod:`~wcsgw.sip.transaction.machine`
(the states and the machines' shared base), :mod:`~wcsgw.sip.transaction.client` and
:mod:`~wcsgw.sip.transaction.server` (the four machines with their tables),
:mod:`~wcsgw.sip.transaction.layer` (:class:`TransactionLayer`).  Their public names are
re-exported here: the rest of the stack, the call layer and the tests import them from
``wcsgw.sip.transaction``.
"""

from wcsgw.sip.timers import TimerConfig
from wcsgw.sip.transaction.client import (
    ClientTransaction,
    InviteClientTransaction,
    NonInviteClientTransaction,
    build_ack,
)
from wcsgw.sip.transaction.events import (
    Event,
    RequestReceived,
    ResponseReceived,
    StrayResponse,
    TransactionTerminated,
    TransactionTimeout,
    TransportFailed,
)
from wcsgw.sip.transaction.layer import TransactionLayer
from wcsgw.sip.transaction.machine import State, Transaction
from wcsgw.sip.transaction.server import (
    InviteServerTransaction,
    NonInviteServerTransaction,
    ServerTransaction,
)

__all__ = [
    "State",
    "TimerConfig",
    "Transaction",
    "ClientTransaction",
    "InviteClientTransaction",
    "NonInviteClientTransaction",
    "ServerTransaction",
    "InviteServerTransaction",
    "NonInviteServerTransaction",
    "TransactionLayer",
    "RequestReceived",
    "ResponseReceived",
    "StrayResponse",
    "TransactionTimeout",
    "TransportFailed",
    "TransactionTerminated",
    "Event",
    "build_ack",
]
