"""The Opus band to ask a browser for when the call is transcoded against a narrower codec.

A browser left to itself encodes Opus fullband; on a transcoded call the gateway decodes
every one of those frames and then throws away all above the SIP codec's band (4 kHz for
G.711).  RFC 7587 §6.1: ``maxplaybackrate`` in our SDP is the most we render, and a sender
that honours it (Chromium maps it to libopus's maximum bandwidth; Firefox ignores it, Mozilla
bug 1043543) encodes narrowband SILK frames, which cost about a third as much to decode.
``sprop-maxcapturerate`` says what we send: our encoder toward the browser already runs at
the SIP leg's rate (:mod:`wcsgw.media.transcode`).  Both are hints (§7): a browser that
ignores them still works, only at fullband cost.  A relayed Opus call never gets them: there
the two far ends' own fmtp pass untouched.
"""

from __future__ import annotations

import attr

from wcsgw.sdp.codecs import Codec, parse_fmtp

__all__ = ["audio_rate", "band_limited_opus"]

#: RFC 7587's range for both parameters; Opus at 48 kHz needs no limit.
_MIN_RATE, _FULLBAND = 8000, 48000
_LIMITS = ("maxplaybackrate", "sprop-maxcapturerate")


def audio_rate(codec: Codec) -> int:
    """The audio sample rate ``codec`` carries: its RTP clock, except G.722, whose clock is
    8000 for historical reasons (RFC 3551 §4.5.2) while its audio is 16 kHz."""
    return 16000 if codec.key == "g722" else codec.clock_rate


def band_limited_opus(browser: Codec, sip: Codec) -> Codec:
    """``browser`` with ``maxplaybackrate`` and ``sprop-maxcapturerate`` set to the audio
    rate of ``sip`` (the codec the call is transcoded to), when ``browser`` is Opus and
    ``sip`` is narrower than 48 kHz; anything else comes back unchanged.  A lower limit the
    fmtp already has is kept; the other parameters keep their order."""
    rate = max(_MIN_RATE, audio_rate(sip))
    if browser.key != "opus" or rate >= _FULLBAND:
        return browser
    params = parse_fmtp(browser.fmtp)
    items = [item.strip() for item in (browser.fmtp or "").split(";") if item.strip()
             and item.partition("=")[0].strip().lower() not in _LIMITS]
    for name in _LIMITS:
        try:
            have = int(params.get(name) or 0)
        except ValueError:
            have = 0
        items.append(f"{name}={have if 0 < have < rate else rate}")
    return attr.evolve(browser, fmtp=";".join(items))
