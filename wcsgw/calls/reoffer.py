"""What the SIP side's new SDP leaves of a call's codec: re-offers and new dialogs.

Why apart from the call: once media flows, the near leg's codec is fixed (the page is not
re-offered, a transcoder or a file keeps its codec), so every later SDP from the SIP side — a
re-INVITE's offer (hold, unhold, a new address or port), the answer of a transfer target's
new dialog — is read for one thing: is our codec still in it, and under which payload
numbers.  These are pure functions of the SDP; the call applies what they return.
"""

from __future__ import annotations

from wcsgw.sdp.codecs import Codec, is_auxiliary, same_codec
from wcsgw.sdp.model import MediaDescription

__all__ = ["kept_in_reoffer", "taken_in_answer"]

TELEPHONE_EVENT = "telephone-event"


def kept_in_reoffer(audio: MediaDescription | None,
                    current: Codec | None) -> tuple[Codec, Codec | None] | None:
    """A re-offer's audio keeps ``current`` (the codec in use) under its own payload type,
    and telephone-event at its rate when offered: (codec, telephone-event or None); None when
    it dropped our codec (the re-offer is refused with 488: RFC 3264 lets us keep the call)."""
    offered = audio.codecs() if audio is not None else []
    same = next((c for c in offered if current is not None and same_codec(c, current)), None)
    if same is None:
        return None
    dtmf = next((c for c in offered if c.key == TELEPHONE_EVENT
                 and c.clock_rate == same.clock_rate), None)
    return same, dtmf


def taken_in_answer(audio: MediaDescription) -> tuple[Codec, Codec | None] | None:
    """A new dialog's answer (after a transfer): the codec it took first and its
    telephone-event, None when it took none."""
    chosen = [c for c in audio.codecs() if not is_auxiliary(c)]
    if not chosen:
        return None
    dtmf = next((c for c in audio.codecs() if c.key == TELEPHONE_EVENT), None)
    return chosen[0], dtmf
