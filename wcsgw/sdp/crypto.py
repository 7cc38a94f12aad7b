"""SDES (RFC 4568): the ``a=crypto`` lines of a SIP-side audio m-line, and who keys what.

Why here and sans-IO: the browser leg keys its SRTP by DTLS, but SIP trunks and phones key
theirs in the SDP itself.  Parsing, writing and choosing ``a=crypto`` lines is pure text work
— the caller passes a key source (``os.urandom`` in service) and gets lines and keys back;
the media layer (:mod:`wcsgw.media.srtpsip`) does the packet work with the keys.

What we take (and why the rest is refused rather than half-done):

* suites ``AES_CM_128_HMAC_SHA1_80``, ``AES_CM_128_HMAC_SHA1_32`` (RFC 4568 §6.2) and
  ``AEAD_AES_128_GCM`` / ``AEAD_AES_256_GCM`` (RFC 7714 §12), what pylibsrtp keys;
* one ``inline:`` key per line; a lifetime of at least 2^31 packets (libsrtp's own limit —
  a shorter one would need a re-key mid-call we do not do) is accepted, a shorter one refuses
  the line; an MKI refuses the line (pylibsrtp keys without MKI); any session parameter
  (``UNENCRYPTED_SRTP``, ``KDR=``, ``WSH=``, ...) refuses the line — a line we cannot honour
  whole is one we do not pick, the next one may do.

The key is masked in ``repr()``: an SDP's crypto line is as secret as a password and never
goes to a log (nor does any SIP message body: docs/security.md).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Callable, Iterable

import attr

__all__ = [
    "SUITES", "CryptoError", "Crypto", "parse_crypto", "offer_cryptos", "answer_crypto",
    "accepted_crypto", "SAVP", "AVP",
]

AVP = "RTP/AVP"
SAVP = "RTP/SAVP"

#: suite -> (master key length, master salt length), in the order we offer them
SUITES: dict[str, tuple[int, int]] = {
    "AES_CM_128_HMAC_SHA1_80": (16, 14),
    "AEAD_AES_128_GCM": (16, 12),
    "AEAD_AES_256_GCM": (32, 12),
    "AES_CM_128_HMAC_SHA1_32": (16, 14),
}

#: the smallest key lifetime we accept (packets): libsrtp's maximum, 2^31
MIN_LIFETIME = 2 ** 31

KeySource = Callable[[int], bytes]

_LINE = re.compile(r"^(\d{1,9})\s+(\S+)\s+(\S+)((?:\s+\S+)*)\s*$")


class CryptoError(ValueError):
    """An ``a=crypto`` line we do not take (its message says why, never the key)."""


def _mask(_: object) -> str:
    return "'***'"


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Crypto:
    """One ``a=crypto:<tag> <suite> inline:<key||salt base64>`` line."""

    tag: int
    suite: str
    key: bytes = attr.ib(repr=_mask)  # master key || master salt

    def value(self) -> str:
        """The attribute value (after ``a=crypto:``)."""
        return f"{self.tag} {self.suite} inline:{base64.b64encode(self.key).decode()}"


def _lifetime(text: str) -> int:
    if text.startswith("2^"):
        return int(2 ** int(text[2:]))
    return int(text)


def parse_crypto(value: str) -> Crypto:
    """One ``a=crypto`` value parsed; :class:`CryptoError` when it is malformed or asks for
    what we do not do (see the module docstring)."""
    match = _LINE.match(value.strip())
    if match is None:
        raise CryptoError("malformed a=crypto")
    tag, suite, keys, params = int(match[1]), match[2].upper(), match[3], match[4].split()
    if suite not in SUITES:
        raise CryptoError(f"unsupported crypto suite {suite}")
    if params:
        raise CryptoError(f"unsupported session parameter {params[0].split('=')[0]}")
    if ";" in keys:
        raise CryptoError("more than one key in a line")
    if not keys.startswith("inline:"):
        raise CryptoError("key method is not inline")
    parts = keys[len("inline:"):].split("|")
    try:
        key = base64.b64decode(parts[0] + "=" * (-len(parts[0]) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise CryptoError("key is not base64") from None
    size = sum(SUITES[suite])
    if len(key) != size:
        raise CryptoError(f"{suite} wants a {size}-byte key and salt, got {len(key)}")
    for extra in parts[1:]:
        if ":" in extra:
            raise CryptoError("MKI is not supported")
        try:
            lifetime = _lifetime(extra)
        except (ValueError, OverflowError):
            raise CryptoError("malformed key lifetime") from None
        if lifetime < MIN_LIFETIME:
            raise CryptoError("key lifetime below 2^31 packets")
    return Crypto(tag, suite, key)


def _supported(values: Iterable[str]) -> list[Crypto]:
    taken: list[Crypto] = []
    for value in values:
        try:
            taken.append(parse_crypto(value))
        except CryptoError:
            continue
    return taken


def new_crypto(tag: int, suite: str, keys: KeySource) -> Crypto:
    """A fresh line: a new master key and salt of ``suite``'s size from ``keys``."""
    return Crypto(tag, suite, keys(sum(SUITES[suite])))


def offer_cryptos(keys: KeySource, suites: Iterable[str] = SUITES) -> list[Crypto]:
    """Our offer's lines: one per suite, tags 1.., each with its own key (RFC 4568 §5.1)."""
    return [new_crypto(tag, suite, keys) for tag, suite in enumerate(suites, start=1)]


def answer_crypto(offered: Iterable[str], keys: KeySource) -> tuple[Crypto, Crypto] | None:
    """Answering an offer's ``a=crypto`` values: (theirs, ours) for the first line we take,
    ours with its tag and suite and our own new key (RFC 4568 §5.1.2); None when we take none."""
    for theirs in _supported(offered):
        return theirs, new_crypto(theirs.tag, theirs.suite, keys)
    return None


def accepted_crypto(ours: Iterable[Crypto], answered: Iterable[str]) -> tuple[Crypto, Crypto] | None:
    """The answer to our offer: (ours, theirs) when it holds exactly one line we can take whose
    tag names one of ours with the same suite (RFC 4568 §5.1.3); None otherwise."""
    lines = list(answered)
    if len(lines) != 1:
        return None
    taken = _supported(lines)
    if not taken:
        return None
    theirs = taken[0]
    for mine in ours:
        if mine.tag == theirs.tag and mine.suite == theirs.suite:
            return mine, theirs
    return None

