"""SRTP for one WebRTC leg: the two pylibsrtp sessions a DTLS-SRTP handshake yields.

DTLS-SRTP (RFC 5764) negotiates a protection profile and exports keying material; from that
come one session that unprotects what the browser sends and one that protects what we send.
The handshake (``wcsgw.webrtc.dtls``) builds the sessions; this module is the small surface
the media path uses per packet, so the per-packet code never touches DTLS objects.

Profiles, by their RFC 5764 / RFC 7714 names (what OpenSSL's ``use_srtp`` extension calls them):
Chrome picks ``SRTP_AEAD_AES_256_GCM`` when offered; ``SRTP_AES128_CM_SHA1_80`` is the one
every DTLS-SRTP peer supports.  GCM needs a libsrtp built with it (Debian's and the wheel's are).
"""

from __future__ import annotations

from typing import Final

import attrs
import pylibsrtp

__all__ = [
    "SRTP_AES128_CM_SHA1_80",
    "SRTP_AEAD_AES_128_GCM",
    "SRTP_AEAD_AES_256_GCM",
    "SUPPORTED_PROFILES",
    "SrtpError",
    "SrtpSession",
]

SRTP_AES128_CM_SHA1_80: Final = "SRTP_AES128_CM_SHA1_80"
SRTP_AEAD_AES_128_GCM: Final = "SRTP_AEAD_AES_128_GCM"
SRTP_AEAD_AES_256_GCM: Final = "SRTP_AEAD_AES_256_GCM"

#: Our preference order, strongest first (the DTLS server's order decides).
SUPPORTED_PROFILES: Final = (SRTP_AEAD_AES_256_GCM, SRTP_AEAD_AES_128_GCM, SRTP_AES128_CM_SHA1_80)

#: pylibsrtp's error type: a packet failed authentication, was a replay, or was malformed.
SrtpError = pylibsrtp.Error


@attrs.define(eq=False)
class SrtpSession:
    """Protect what we send, unprotect what the browser sends.

    Errors from ``unprotect_*`` (:data:`SrtpError`) mean "drop this packet": forged, replayed,
    or from an older key.  Calls are ~1.5 µs each for a 172-byte packet.
    """

    profile: str
    rx: pylibsrtp.Session
    tx: pylibsrtp.Session

    def protect_rtp(self, packet: bytes) -> bytes:
        return self.tx.protect(packet)

    def protect_rtcp(self, packet: bytes) -> bytes:
        return self.tx.protect_rtcp(packet)

    def unprotect_rtp(self, packet: bytes) -> bytes:
        return self.rx.unprotect(packet)

    def unprotect_rtcp(self, packet: bytes) -> bytes:
        return self.rx.unprotect_rtcp(packet)
