"""The SDP of an ICE restart toward the browser: its restart offer checked, our answer, sans-IO.

When the browser's network changes (Wi-Fi to LTE, a new address) its candidate pair is dead;
it restarts ICE (RFC 8445 §9) with a new offer carrying new ``a=ice-ufrag``/``a=ice-pwd`` —
for a call it placed and for one it answered alike, so for the latter the browser is now the
offerer.  Everything else stays: the same m-lines, the same DTLS fingerprint (a restart does
not redo DTLS, RFC 8839 §4.4.1.1.1), the codecs in use.  Our answer is therefore built from
the *last SDP we sent the browser* (our answer, or our offer for a call the gateway offered),
not from scratch: only our ICE credentials (new), candidates, ``a=setup`` (``passive``: the
DTLS role established, we stay the DTLS server), ``a=mid`` and the direction change, so the
browser sees the same tracks (``a=msid``/``a=ssrc``), payload types and session (``o=``
version + 1, RFC 3264 §8).  Formats are those both sides agreed on last time (our last SDP's
that the browser's last SDP kept).

What is refused (:class:`~wcsgw.sdp.errors.SdpNegotiationError`, the reason in the message;
the call layer names ``sdp``): an offer that is not a WebRTC offer, keeps the old ICE
credentials (not a restart), carries another fingerprint, has other m-lines (count, kinds,
mids, a section accepted before and now rejected), or lacks a format in use.  A restart must
never renegotiate: nothing goes to the SIP side, so nothing may change that it would see.
"""

from __future__ import annotations

from typing import Optional, Sequence

import attr

from wcsgw.sdp.codecs import Codec, same_codec
from wcsgw.sdp.errors import SdpNegotiationError
from wcsgw.sdp.model import DIRECTIONS, Attribute, MediaDescription, SessionDescription
from wcsgw.sdp.negotiate import answer_direction
from wcsgw.webrtc.sdp import BrowserTransport, LegAddress, browser_transport, leg_candidates

__all__ = ["RestartPlan", "plan_restart"]

#: Our attributes an answer rewrites (the rest of the last SDP is kept as it was).
_REWRITTEN = frozenset({"ice-ufrag", "ice-pwd", "candidate", "end-of-candidates", "setup",
                        "mid", *DIRECTIONS})
#: Attributes that name a payload type first: kept only for the formats kept.
_PER_FORMAT = frozenset({"rtpmap", "fmtp", "rtcp-fb"})


@attr.s(frozen=True, slots=True, auto_attribs=True)
class RestartPlan:
    """A restart offer that passed the checks, and what the answer keeps of each m-section:
    ``kept[i]`` the formats of our last SDP's section ``i`` still in use (empty: rejected)."""

    offer: SessionDescription
    local: SessionDescription
    transport: BrowserTransport
    kept: tuple[tuple[str, ...], ...]

    def answer(self, leg: LegAddress) -> SessionDescription:
        """Our answer, with ``leg``'s (new) ICE credentials and its candidates."""
        media = [
            _answer_section(offered, ours, formats, leg) if formats else _rejected(offered)
            for offered, ours, formats in zip(self.offer.media, self.local.media, self.kept)
        ]
        attributes = [Attribute("ice-lite")]
        if self.offer.groups():
            mids = [m.mid for m in media if m.port != 0 and m.mid]
            if mids:
                attributes.append(Attribute("group", "BUNDLE " + " ".join(mids)))
        attributes += [a for a in self.local.attributes if a.name.lower() == "msid-semantic"]
        origin = attr.evolve(self.local.origin,
                             session_version=self.local.origin.session_version + 1)
        return attr.evolve(self.local, origin=origin, attributes=attributes, media=media)


def plan_restart(offer: SessionDescription, local: SessionDescription,
                 remote: SessionDescription,
                 fingerprint: Optional[tuple[str, str]]) -> RestartPlan:
    """Check the browser's restart ``offer`` against the last exchange — ``local`` the last
    SDP we sent it, ``remote`` the last it sent us, ``fingerprint`` the one its DTLS
    association was made with — and plan the answer.  SdpNegotiationError says what is
    wrong."""
    transport = browser_transport(offer)  # a WebRTC offer we can answer at all
    previous = browser_transport_of(remote)
    if (transport.ice_ufrag, transport.ice_pwd) == (previous.ice_ufrag, previous.ice_pwd):
        raise SdpNegotiationError("the offer keeps the ICE credentials: it restarts nothing")
    if fingerprint is None or not _same_fingerprint(transport.fingerprint, fingerprint):
        raise SdpNegotiationError("the offer has another DTLS fingerprint (an ICE restart "
                                  "keeps the DTLS association)")
    if len(offer.media) != len(local.media) or len(remote.media) != len(local.media):
        raise SdpNegotiationError(f"the offer has {len(offer.media)} m-lines, the call "
                                  f"{len(local.media)}")
    kept: list[tuple[str, ...]] = []
    for index, (offered, ours, theirs) in enumerate(zip(offer.media, local.media, remote.media)):
        where = f"m-line {index + 1}"
        if offered.kind != ours.kind or offered.mid != ours.mid:
            raise SdpNegotiationError(
                f"{where} is {offered.kind} mid {offered.mid}, the call's {ours.kind} mid "
                f"{ours.mid}")
        in_use = () if ours.rejected or theirs.rejected else tuple(
            f for f in ours.formats if f in theirs.formats)
        if in_use and offered.rejected:
            raise SdpNegotiationError(f"{where} ({offered.kind}) is in use and the offer "
                                      "rejects it")
        if in_use:
            _check_formats(where, offered.codecs(), ours.codecs(), in_use)
        kept.append(in_use)
    return RestartPlan(offer, local, transport, tuple(kept))


def browser_transport_of(sd: SessionDescription) -> BrowserTransport:
    """The browser's ICE credentials and fingerprint in its last SDP (offer or answer): that
    SDP was checked when it came, so only what is there is read."""
    audio = sd.first_audio() or (sd.media[0] if sd.media else None)
    if audio is None:
        raise SdpNegotiationError("the call's last SDP has no media")
    return BrowserTransport(
        (sd.ice_ufrag_for(audio) or "").strip(), (sd.ice_pwd_for(audio) or "").strip(),
        sd.fingerprint_for(audio) or ("", ""), audio.mid)


def _same_fingerprint(a: tuple[str, str], b: tuple[str, str]) -> bool:
    """Hash name and hex digits compared case-blind (RFC 8122 §5: the hex is upper case, but
    a lower-case one is the same certificate)."""
    return a[0].lower() == b[0].lower() and a[1].upper() == b[1].upper()


def _check_formats(where: str, offered: Sequence[Codec], ours: Sequence[Codec],
                   in_use: Sequence[str]) -> None:
    """Every format in use must still be offered under its number, as the same codec."""
    by_type = {str(c.payload_type): c for c in offered}
    for codec in ours:
        number = str(codec.payload_type)
        if number not in in_use:
            continue
        have = by_type.get(number)
        if have is None or not same_codec(have, codec):
            raise SdpNegotiationError(
                f"{where}: the offer drops {codec.rtpmap} (payload type {number}), in use")


def _answer_section(offered: MediaDescription, ours: MediaDescription,
                    formats: Sequence[str], leg: LegAddress) -> MediaDescription:
    """Our last section, its ICE and DTLS role rewritten, its formats ``formats``."""
    kept = set(formats)
    wanted = ours.direction or "sendrecv"
    attributes: list[Attribute] = []
    if offered.mid is not None:
        attributes.append(Attribute("mid", offered.mid))
    attributes += [Attribute("ice-ufrag", leg.ice_ufrag), Attribute("ice-pwd", leg.ice_pwd),
                   Attribute("setup", "passive"),
                   Attribute(answer_direction(offered.direction or "sendrecv", wanted))]
    for attribute in ours.attributes:
        name = attribute.name.lower()
        if name in _REWRITTEN:
            continue
        if name in _PER_FORMAT:
            number = (attribute.value or "").split(" ", 1)[0]
            if number != "*" and number not in kept:
                continue
        elif name == "rtcp-rsize" and not offered.has("rtcp-rsize"):
            continue  # an answer takes on only what was offered
        attributes.append(attribute)
    attributes += [Attribute("candidate", c) for c in leg_candidates(leg)]
    attributes.append(Attribute("end-of-candidates"))
    return attr.evolve(ours, port=leg.port, formats=[f for f in ours.formats if f in kept],
                       attributes=attributes)


def _rejected(section: MediaDescription) -> MediaDescription:
    """Port 0 with the offer's proto, formats and mid (RFC 3264 §6)."""
    attributes = [Attribute("mid", section.mid)] if section.mid is not None else []
    return MediaDescription(kind=section.kind, port=0, proto=section.proto,
                            formats=list(section.formats) or ["0"], connection=None,
                            attributes=attributes)
