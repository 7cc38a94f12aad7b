"""close_notify in and out of an established DTLS 1.2 association, without OpenSSL's SSL object.

Why: once the SRTP keys are exported, an established leg needs DTLS for two things only —
sending our close_notify when the call ends and noticing the browser's — yet OpenSSL's SSL
object kept for that costs ~70 kB of native memory per leg (measured: 84 kB per established
leg with it, 13 kB without; docs/performance.md, "Lever: own DTLS transport").  So after a
linger (:class:`~wcsgw.webrtc.dtls.DtlsSrtpServer` keeps the connection long enough to answer
a client that lost our Finished) the server keeps only :class:`AlertKeys`: the epoch-1 record
keys (RFC 5246 §6.3 key expansion from the master secret and both randoms), enough to seal
and open an alert record.  Only the AEAD suites of our cipher list have this path
(ECDHE-ECDSA-AES128-GCM-SHA256, RFC 5288; ECDHE-ECDSA-CHACHA20-POLY1305, RFC 7905), which is
what browsers negotiate; with any other suite the server keeps the connection.

Also how a flight is cut into datagrams (:func:`split_records`).  Pure functions and a small
value object: bytes in, bytes out; nothing here logs (keys never leave the object).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final, Optional

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

__all__ = ["AlertKeys", "MTU", "prf_sha256", "split_records"]

_ALERT: Final = 21
_DTLS12: Final = b"\xfe\xfd"
_HEADER: Final = 13  # type, version, epoch, sequence number, length

#: largest datagram we send (a flight is split on record boundaries to fit): under every
#: path MTU WebRTC meets, as browsers use
MTU: Final = 1200
#: the record sequence number of our close_notify: far past any epoch-1 record OpenSSL sent
#: (a Finished and its few retransmissions), so the peer's replay window takes it
_CLOSE_SEQ: Final = 1 << 40

#: cipher name -> (key length, fixed IV length)
_SUITES: Final = {
    "ECDHE-ECDSA-AES128-GCM-SHA256": (16, 4),
    "ECDHE-ECDSA-CHACHA20-POLY1305": (32, 12),
}


def split_records(data: bytes, mtu: int = MTU) -> list[bytes]:
    """Datagrams of at most ``mtu`` bytes from what OpenSSL wrote to its memory BIO (records
    back to back), cut only between records (a record over ``mtu`` goes alone)."""
    datagrams: list[bytes] = []
    start = offset = 0
    while offset < len(data):
        if len(data) - offset < _HEADER:
            end = len(data)  # a torn header: cannot happen from OpenSSL; send as it is
        else:
            end = offset + _HEADER + int.from_bytes(data[offset + 11:offset + 13], "big")
        if end - start > mtu and offset > start:
            datagrams.append(data[start:offset])
            start = offset
        offset = end
    if start < len(data):
        datagrams.append(data[start:])
    return datagrams


def prf_sha256(secret: bytes, label: bytes, seed: bytes, size: int) -> bytes:
    """TLS 1.2's PRF with SHA-256 (RFC 5246 §5), the PRF of both suites above."""
    seed = label + seed
    out = b""
    a = seed
    while len(out) < size:
        a = hmac.new(secret, a, hashlib.sha256).digest()
        out += hmac.new(secret, a + seed, hashlib.sha256).digest()
    return out[:size]


class AlertKeys:
    """One direction's key and IV each way, for alert records of epoch 1 (server role)."""

    __slots__ = ("_chacha", "_client_key", "_client_iv", "_server_key", "_server_iv")

    def __init__(self, chacha: bool, client_key: bytes, client_iv: bytes, server_key: bytes,
                 server_iv: bytes) -> None:
        self._chacha = chacha
        self._client_key, self._client_iv = client_key, client_iv
        self._server_key, self._server_iv = server_key, server_iv

    @classmethod
    def derive(cls, cipher: Optional[str], version: Optional[str], master: Optional[bytes],
               client_random: Optional[bytes], server_random: Optional[bytes]) -> Optional["AlertKeys"]:
        """The keys of an association that used ``cipher`` over ``version`` (OpenSSL's names);
        None when it is not one this module can seal (the caller keeps OpenSSL's object)."""
        suite = _SUITES.get(cipher or "")
        if suite is None or version != "DTLSv1.2" or not (master and client_random and server_random):
            return None
        key_len, iv_len = suite
        block = prf_sha256(master, b"key expansion", server_random + client_random,
                           2 * (key_len + iv_len))
        return cls(cipher == "ECDHE-ECDSA-CHACHA20-POLY1305",
                   block[:key_len], block[2 * key_len:2 * key_len + iv_len],
                   block[key_len:2 * key_len], block[2 * key_len + iv_len:])

    def close_notify(self) -> bytes:
        """Our close_notify alert as one record (a datagram of its own)."""
        seq = (1).to_bytes(2, "big") + _CLOSE_SEQ.to_bytes(6, "big")
        plain = b"\x01\x00"  # warning, close_notify
        aad = seq + bytes([_ALERT]) + _DTLS12 + len(plain).to_bytes(2, "big")
        if self._chacha:
            nonce = _xor(self._server_iv, seq)
            body = ChaCha20Poly1305(self._server_key).encrypt(nonce, plain, aad)
        else:
            body = seq + AESGCM(self._server_key).encrypt(self._server_iv + seq, plain, aad)
        return bytes([_ALERT]) + _DTLS12 + seq + len(body).to_bytes(2, "big") + body

    def ends(self, datagram: bytes) -> bool:
        """Whether ``datagram`` holds an authentic epoch-1 alert from the client that ends
        the association (close_notify, or any fatal alert).  Anything else — a handshake
        retransmission, garbage, a forged alert — is False."""
        offset = 0
        while offset + _HEADER <= len(datagram):
            end = offset + _HEADER + int.from_bytes(datagram[offset + 11:offset + 13], "big")
            header, body = datagram[offset:offset + _HEADER], datagram[offset + _HEADER:end]
            offset = end
            if header[0] != _ALERT or header[3:5] != b"\x00\x01":
                continue
            plain = self._open(header, body)
            if plain is not None and len(plain) == 2 and (plain[1] == 0 or plain[0] == 2):
                return True
        return False

    def _open(self, header: bytes, body: bytes) -> Optional[bytes]:
        seq = header[3:11]
        if len(body) < (16 if self._chacha else 24):  # shorter than its tag (and nonce): forged
            return None
        try:
            if self._chacha:
                size = len(body) - 16
                aad = seq + header[:3] + size.to_bytes(2, "big")
                return ChaCha20Poly1305(self._client_key).decrypt(
                    _xor(self._client_iv, seq), body, aad)
            size = len(body) - 8 - 16
            aad = seq + header[:3] + size.to_bytes(2, "big")
            return AESGCM(self._client_key).decrypt(self._client_iv + body[:8], body[8:], aad)
        except (InvalidTag, ValueError):
            return None


def _xor(iv: bytes, seq: bytes) -> bytes:
    """RFC 7905 nonce: the 12-byte IV XOR the 64-bit sequence number, left-padded."""
    padded = bytes(4) + seq
    return bytes(a ^ b for a, b in zip(iv, padded))
