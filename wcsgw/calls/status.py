"""Session and call statuses (docs/contract.md), and how SIP outcomes map onto them.

The strings are public: browsers, the Web SDK and REST clients compare against them, and they
follow Flashphoner WCS's names so existing WCS front-ends read them unchanged.
"""

from __future__ import annotations

import enum


class CallStatus(str, enum.Enum):
    NEW = "NEW"
    PENDING = "PENDING"
    TRYING = "TRYING"
    RING = "RING"
    RING_MEDIA = "RING_MEDIA"
    SESSION_PROGRESS = "SESSION_PROGRESS"
    ESTABLISHED = "ESTABLISHED"
    HOLD = "HOLD"
    BUSY = "BUSY"
    FINISH = "FINISH"
    FAILED = "FAILED"

    @property
    def terminal(self) -> bool:
        return self in (CallStatus.BUSY, CallStatus.FINISH, CallStatus.FAILED)


class SessionStatus(str, enum.Enum):
    ESTABLISHED = "ESTABLISHED"
    REGISTERED = "REGISTERED"
    UNREGISTERED = "UNREGISTERED"
    AUTHENTICATION_FAIL = "AUTHENTICATION_FAIL"
    DISCONNECTED = "DISCONNECTED"
    FAILED = "FAILED"


class Info:
    """The ``info`` reasons docs/contract.md names (others are "<code> <reason phrase>")."""

    NORMAL = "Normal call clearing"
    NO_CODECS = "No common codecs"
    #: only transcoding could bridge the two legs, and [codecs] transcoding is false
    TRANSCODING_DISABLED = "Transcoding required, but disabled"
    ICE = "Failed by ICE error"
    DTLS = "Failed by DTLS error"
    RTP = "Failed by RTP activity"
    TIMEOUT = "Failed by request timeout"
    FORBIDDEN = "Forbidden destination"


#: Final SIP codes that mean "the callee is busy" rather than "the call failed".
BUSY_CODES = frozenset({486, 600})


def status_for_failure(sip_status: int | None) -> CallStatus:
    return CallStatus.BUSY if sip_status in BUSY_CODES else CallStatus.FAILED


def status_for_provisional(sip_status: int, has_sdp: bool) -> CallStatus:
    """100 -> TRYING; 180 -> RING (RING_MEDIA with early media); 183 and other 18x ->
    SESSION_PROGRESS."""
    if sip_status == 100:
        return CallStatus.TRYING
    if sip_status == 180:
        return CallStatus.RING_MEDIA if has_sdp else CallStatus.RING
    return CallStatus.SESSION_PROGRESS
