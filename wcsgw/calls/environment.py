"""What every call of a gateway shares: the SIP service, media addresses, timers and policy —
and the factories that build a call's legs and features.

Why the factories live here: a call's features that are objects of their own (hold, the INFO
queue, both sides of a transfer, supervision) and its legs (the INVITE it places, the
browser's WebRTC leg) are built through the environment, so a test gives a call others by
giving it another environment, never by patching a module's globals.
"""

from __future__ import annotations

from typing import Any, Callable

import attr

from wcsgw.calls.hold import Hold
from wcsgw.calls.infoqueue import InfoQueue
from wcsgw.calls.plan import CodecPolicy, default_policy
from wcsgw.calls.supervision import Supervision
from wcsgw.calls.transferee import Transferee
from wcsgw.calls.transferor import Transferor
from wcsgw.media.clock import MediaClock, ReactorClock
from wcsgw.media.ports import PortAllocator
from wcsgw.media.udp import RtpSocket
from wcsgw.sip.account import SipAccount
from wcsgw.sip.invite import OutgoingInvite
from wcsgw.webrtc.leg import WebRtcLeg

__all__ = ["CallEnvironment"]


@attr.s(auto_attribs=True)
class CallEnvironment:
    """What every call of a gateway shares: the SIP service, media addresses and timers."""

    reactor: Any
    sip: Any  # wcsgw.sip.service.SipService
    allocator: PortAllocator
    media_host: str  # bind address of media sockets (both sides')
    #: what each side is told: ICE candidates and c= toward browsers (the public side behind
    #: 1:1 NAT), c=/o= toward the SIP side (the private side) — never the other's, so the
    #: PBX never learns the public address nor the browser the private one
    browser_address: str
    sip_address: str
    rtp_timeout: float = 30.0
    no_answer_timeout: float = 60.0
    #: the account that calls without a session account go out with (toward the built-in test
    #: lines); a callable because the lines choose their port when they start
    testlines_account: Callable[[], SipAccount] | None = None
    #: how a browser's "hangup" of a ringing incoming call is answered (486 or 603)
    decline_status: int = 603
    #: where the SIP side may transfer our calls to (REFER targets): the gateway's Policy;
    #: None refuses every REFER
    policy: Any = None
    #: a far end's REFER that passed the policy (``policy.incoming_transfers``): "ask" the
    #: browser (``transferRequest``; calls without one refuse), "accept", or "refuse" (403)
    incoming_transfers: str = "ask"
    #: seconds the browser has to answer a ``transferRequest`` (``policy.transfer_timeout``)
    transfer_timeout: float = 15.0
    #: the DTLS certificate of every browser leg: one per gateway, as browsers expect of a
    #: server (a fresh one per call cost ~1 ms of CPU and native memory per call); None: each
    #: leg makes its own
    certificate: Any = None
    #: this gateway's name in a cluster (``[cluster] node_id``; the call object's ``node``);
    #: None: one process, and the call object has no ``node``
    node_id: str | None = None
    #: the [codecs] config and what the media layer can transcode (wcsgw.calls.plan)
    codecs: CodecPolicy = attr.Factory(default_policy)
    #: monotonic and wall time for the media plane (wcsgw.media.clock): the reactor's and
    #: the system's; tests give a FakeClock over their task.Clock
    clock: MediaClock = attr.Factory(lambda env: ReactorClock(env.reactor), takes_self=True)
    #: the call's features that are objects of their own, built here so that a test gives
    #: a call another: its SIP INFO queue (wcsgw.calls.infoqueue) and its media
    #: supervision (wcsgw.calls.supervision)
    make_info_queue: Callable[..., InfoQueue] = InfoQueue
    make_supervision: Callable[..., Supervision] = Supervision
    #: ... and both sides of a transfer: the far end's REFER (wcsgw.calls.transferee) and
    #: the browser's (wcsgw.calls.transferor)
    make_transferee: Callable[..., Transferee] = Transferee
    make_transferor: Callable[..., Transferor] = Transferor
    #: ... and its two holds (wcsgw.calls.hold)
    make_hold: Callable[..., Hold] = Hold
    #: the legs' own: the SIP leg a call places (an INVITE client session) and the
    #: browser's WebRTC leg; tests give fakes here
    make_invite: Callable[..., OutgoingInvite] = OutgoingInvite
    make_browser_leg: Callable[..., WebRtcLeg] = WebRtcLeg
    #: the SIP side's RTP/RTCP socket pair (audio, and video when the call has it), called as
    #: ``make_rtp_socket(reactor, allocator, media_host)``; tests give one without a socket
    make_rtp_socket: Callable[..., RtpSocket] = RtpSocket
