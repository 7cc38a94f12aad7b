"""What the transaction layer tells its user (the TU): RFC 3261 §17's "passed up" and the
timeouts and transport failures that end a transaction, as frozen values taken in order from
:meth:`~wcsgw.sip.transaction.TransactionLayer.take_events`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Union

import attr

from wcsgw.sip.message import Request, Response
from wcsgw.sip.target import Target

if TYPE_CHECKING:
    from wcsgw.sip.transaction.client import ClientTransaction
    from wcsgw.sip.transaction.machine import Transaction
    from wcsgw.sip.transaction.server import ServerTransaction


@attr.s(frozen=True, slots=True, auto_attribs=True)
class RequestReceived:
    """A new request for the TU (retransmissions are absorbed by its server transaction).

    ``transaction`` is None for an ACK that matched no transaction or matched an INVITE
    server transaction in Accepted: the ACK of a 2xx, which belongs to the dialog (RFC 6026).
    """

    request: Request
    source: Target
    transaction: "ServerTransaction | None"


@attr.s(frozen=True, slots=True, auto_attribs=True)
class ResponseReceived:
    """A response for the TU: 1xx and the first final, plus 2xx retransmissions while an
    INVITE client transaction is Accepted (RFC 6026 §8.4: the TU must re-ACK them)."""

    response: Response
    transaction: "ClientTransaction"


@attr.s(frozen=True, slots=True, auto_attribs=True)
class StrayResponse:
    """A response matching no client transaction (§18.1.2 hands it to the core; a stray 2xx
    to INVITE is typically ACKed and BYEd by the TU)."""

    response: Response
    source: Target


@attr.s(frozen=True, slots=True, auto_attribs=True)
class TransactionTimeout:
    """Timer B, F or H fired.  For H the TU learns that the ACK to its final never came."""

    transaction: "Transaction"


#: :attr:`TransportFailed.reason` of a transport error with nothing more to say
TRANSPORT = "transport"


@attr.s(frozen=True, slots=True, auto_attribs=True)
class TransportFailed:
    """The transport reported that sending to the transaction's peer failed (§17.1.1.2,
    §17.1.2.2, §17.2.4); the transaction is terminated right after this event.  ``reason``
    is :data:`TRANSPORT` when the transport has no more to say (a refused connection, a
    failed send), else its words for the user (an ICMP error names the host:port that did
    not answer: :mod:`wcsgw.sip.udperrors`)."""

    transaction: "Transaction"
    reason: str = "transport"


@attr.s(frozen=True, slots=True, auto_attribs=True)
class TransactionTerminated:
    """The transaction reached Terminated and is gone from the layer (bookkeeping)."""

    transaction: "Transaction"


Event = Union[
    RequestReceived,
    ResponseReceived,
    StrayResponse,
    TransactionTimeout,
    TransportFailed,
    TransactionTerminated,
]
