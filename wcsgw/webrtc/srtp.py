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
    "DTLS_SRTP_KEYING",
    "SRTP_AES128_CM_SHA1_80",
    "SRTP_AEAD_AES_128_GCM",
    "SRTP_AEAD_AES_256_GCM",
    "SUPPORTED_PROFILES",
    "SrtpError",
    "SrtpSession",
    "from_dtls_keying",
]

SRTP_AES128_CM_SHA1_80: Final = "SRTP_AES128_CM_SHA1_80"
SRTP_AEAD_AES_128_GCM: Final = "SRTP_AEAD_AES_128_GCM"
SRTP_AEAD_AES_256_GCM: Final = "SRTP_AEAD_AES_256_GCM"

#: Our preference order, strongest first (the DTLS server's order decides).
SUPPORTED_PROFILES: Final = (SRTP_AEAD_AES_256_GCM, SRTP_AEAD_AES_128_GCM, SRTP_AES128_CM_SHA1_80)

#: profile -> (libsrtp profile, master key length, master salt length), RFC 5764 / RFC 7714:
#: what the DTLS handshake exports for each
DTLS_SRTP_KEYING: Final = {
    SRTP_AEAD_AES_256_GCM: (pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_256_GCM, 32, 12),
    SRTP_AEAD_AES_128_GCM: (pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM, 16, 12),
    SRTP_AES128_CM_SHA1_80: (pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80, 16, 14),
}

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


def from_dtls_keying(profile: str, material: bytes) -> SrtpSession:
    """The two sessions from DTLS-exported keying material (RFC 5764 §4.2: client key, server
    key, client salt, server salt).  The gateway is always the DTLS server, so it sends with
    the server's key and reads with the client's."""
    libsrtp_profile, key_len, salt_len = DTLS_SRTP_KEYING[profile]
    client_key = material[:key_len] + material[2 * key_len:2 * key_len + salt_len]
    server_key = (material[key_len:2 * key_len]
                  + material[2 * key_len + salt_len:2 * (key_len + salt_len)])

    def session(key: bytes, ssrc_type: int) -> pylibsrtp.Session:
        policy = pylibsrtp.Policy(key=key, ssrc_type=ssrc_type, srtp_profile=libsrtp_profile)
        policy.allow_repeat_tx = True  # a resent packet (same seq) is protected again
        policy.window_size = 1024
        return pylibsrtp.Session(policy)

    return SrtpSession(profile=profile, rx=session(client_key, pylibsrtp.Policy.SSRC_ANY_INBOUND),
                       tx=session(server_key, pylibsrtp.Policy.SSRC_ANY_OUTBOUND))
