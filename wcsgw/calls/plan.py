"""The call's codec plan: which codec each leg uses, relayed whenever a common one exists.

Relaying (same codec on both legs, packets passed through) costs a few microseconds per packet
and keeps the caller's audio bit-exact; transcoding (decode, resample, encode) costs far more
CPU and some quality.  So every decision here prefers relay, and transcoding is only the
fallback when the two sides share no codec — and only when the config allows it.

Three inputs meet here and nowhere else:

* the codec catalogue (:mod:`wcsgw.sdp.catalogue`): what each codec is in SDP;
* the operator's ``[codecs]`` config and what the media layer can transcode on this machine,
  both held by a :class:`~wcsgw.calls.codecpolicy.CodecPolicy` (read and checked once, at
  start-up, in :mod:`wcsgw.calls.codecpolicy`);
* the offer and answer of the call at hand.

This module is the codec plan's public face: callers import the policy names
(``CodecPolicy``, ``default_policy``, ``check_policy``, ``media_transcodable``) from here
too, with the per-call functions they always come with.

Everything below is sans-IO: lists of :class:`~wcsgw.sdp.codecs.Codec` in, a
:class:`CodecPlan` (or a :class:`~wcsgw.calls.errors.CallError` carrying the exact WCS
``info`` string) out.  The Twisted-facing call classes only call these functions.

Outbound (browser -> SIP): :func:`plan_codecs` makes the SIP offer from the browser's offer,
:func:`settle_outbound` reads the SIP answer.  Inbound (SIP -> browser):
:func:`browser_offer_codecs` makes the browser's offer from the SIP offer,
:func:`settle_inbound` reads the browser's choice.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import attr

from wcsgw.calls.codecpolicy import CodecPolicy, check_policy, default_policy, media_transcodable
from wcsgw.calls.errors import CallError, Codes
from wcsgw.calls.status import Info
from wcsgw.sdp.catalogue import Entry
from wcsgw.sdp.codecs import Codec, assign_payload_types, is_auxiliary, same_codec
from wcsgw.sdp.opusband import band_limited_opus

__all__ = [
    "CodecPlan",
    "CodecPolicy",
    "CodecRefusal",
    "TELEPHONE_EVENT_8K",
    "TELEPHONE_EVENT_48K",
    "browser_answer_codecs",
    "browser_offer_codecs",
    "check_policy",
    "default_policy",
    "media_transcodable",
    "plan_codecs",
    "settle_inbound",
    "settle_outbound",
]

TELEPHONE_EVENT = "telephone-event"
#: Our telephone-event formats (RFC 4733): 101 is the number most phones use for 8 kHz.
TELEPHONE_EVENT_8K = Codec(TELEPHONE_EVENT, 8000, 1, 101, "0-16")
TELEPHONE_EVENT_48K = Codec(TELEPHONE_EVENT, 48000, 1, None, "0-16")
_EVENT_PAYLOAD_TYPES = {8000: 101}


@attr.s(auto_attribs=True)
class CodecPlan:
    """Which codecs each leg uses: decided from the first offer, settled by the answer.

    ``sip_offer`` is what we offer (or were offered by) the SIP side; ``mode`` is ``relay``
    or ``transcode`` once settled.  ``sip_ptime``/``browser_ptime`` are each side's
    ``a=ptime`` in ms (None: not given, 20 ms assumed); the codecs carry their fmtp.  The
    media bridge is built from these fields (``LegMedia`` codec, payload type, ptime)."""

    mode: str  # "relay" | "transcode"
    sip_offer: list[Codec]
    browser_codec: Codec | None = None
    sip_codec: Codec | None = None
    browser_dtmf: Codec | None = None
    sip_dtmf: Codec | None = None
    sip_ptime: int | None = None
    browser_ptime: int | None = None

    def describe(self) -> dict[str, str | None]:
        """The ``media`` object of docs/contract.md."""
        return {
            "webrtcCodec": self.browser_codec.rtpmap if self.browser_codec else None,
            "sipCodec": self.sip_codec.rtpmap if self.sip_codec else None,
            "mode": self.mode,
        }


# -- helpers ---------------------------------------------------------------------------------


class CodecRefusal(CallError):
    """A call the codecs cannot bridge.  ``info`` is the exact WCS string the call fails with
    (``No common codecs`` or ``Transcoding required, but disabled``); the message adds what
    was offered, for the request's error and the log."""

    def __init__(self, info: str, detail: str = "") -> None:
        super().__init__(Codes.NO_CODECS, f"{info}: {detail}" if detail else info, "sdp")
        self.info = info


_refuse = CodecRefusal


def _entry(entries: Sequence[Entry], codec: Codec) -> Entry | None:
    return next((e for e in entries if e.matches(codec)), None)


def _primaries(codecs: Iterable[Codec]) -> list[Codec]:
    return [c for c in codecs if not is_auxiliary(c)]


def _event_at(codecs: Iterable[Codec], rate: int) -> Codec | None:
    return next((c for c in codecs if c.key == TELEPHONE_EVENT and c.clock_rate == rate), None)


def _event_for(codecs: Sequence[Codec], rate: int) -> Codec | None:
    """telephone-event at ``rate`` if there is one, else any (the bridge converts durations
    when the event clock differs from the codec's, as phones offering opus/48000 with only
    telephone-event/8000 need)."""
    return _event_at(codecs, rate) or next((c for c in codecs if c.key == TELEPHONE_EVENT), None)


def _names(codecs: Iterable[Codec]) -> str:
    return ", ".join(c.rtpmap for c in codecs) or "none"


def _browser_usable(browser: Sequence[Codec], policy: CodecPolicy) -> list[Codec]:
    """The browser's audio codecs that ``codecs.webrtc`` lists, in the browser's order."""
    return [c for c in _primaries(browser) if _entry(policy.webrtc, c) is not None]


def _transcode_sources(usable: Sequence[Codec], policy: CodecPolicy) -> list[Codec]:
    """Browser codecs we could transcode from, in ``codecs.webrtc`` order (Opus first by
    default: the browser's best codec)."""
    out: list[Codec] = []
    for entry in policy.webrtc:
        codec = next((c for c in usable if entry.matches(c)), None)
        if codec is not None and policy.can_transcode(entry, browser_side=True):
            out.append(codec)
    return out


# -- outbound: browser offer -> SIP offer -> SIP answer ---------------------------------------


def plan_codecs(browser: list[Codec], policy: CodecPolicy | None = None) -> CodecPlan:
    """The SIP offer for a browser's offer.

    First every codec the browser offered that ``codecs.sip`` and ``codecs.webrtc`` both list
    (in ``codecs.sip`` order, with the browser's payload types and fmtp, so relaying needs no
    renumbering), then — when transcoding is allowed and the browser brought a codec we can
    decode — the other ``codecs.sip`` codecs the media layer can transcode; telephone-event
    at every clock rate offered.  Whatever the SIP side picks can then be bridged.

    Raises CallError (``Codes.NO_CODECS``): ``Transcoding required, but disabled`` when only
    transcoding could bridge the call; ``No common codecs`` when nothing could."""
    policy = policy or default_policy()
    usable = _browser_usable(browser, policy)
    relay: list[Codec] = []
    for entry in policy.sip:
        codec = next((c for c in usable if entry.matches(c)), None)
        if codec is not None:
            relay.append(codec)
    sources = _transcode_sources(usable, policy)
    targets = [e for e in policy.sip if policy.can_transcode(e)
               and not any(e.matches(c) for c in relay)] if sources else []
    if not relay:
        if not targets:
            raise _refuse(Info.NO_CODECS, f"the browser offers {_names(_primaries(browser))}; "
                          f"codecs.webrtc allows {', '.join(e.label for e in policy.webrtc)}")
        if not policy.transcoding:
            raise _refuse(Info.TRANSCODING_DISABLED,
                          f"the browser offers {_names(usable)}, the SIP side is offered "
                          f"{', '.join(e.label for e in policy.sip)}")
    if not policy.transcoding:
        targets = []
    taken = {c.payload_type for c in browser}
    offer = list(relay)
    for entry in targets:
        codec = entry.codec()
        if codec.payload_type in taken:  # a static number the browser used for something else
            codec = attr.evolve(codec, payload_type=None)
        offer.append(codec)
    rates: list[int] = []
    for codec in offer:
        if codec.clock_rate not in rates:
            rates.append(codec.clock_rate)
    events: list[Codec] = []
    for rate in rates:
        event = _event_at(browser, rate)
        if event is None:
            pt = _EVENT_PAYLOAD_TYPES.get(rate)
            taken_now = {c.payload_type for c in offer + events} | {c.payload_type for c in browser}
            event = Codec(TELEPHONE_EVENT, rate, 1, pt if pt not in taken_now else None, "0-16")
        events.append(event)
    return CodecPlan("relay", assign_payload_types(offer + events))


def settle_outbound(plan: CodecPlan, browser: Sequence[Codec], answer: Sequence[Codec],
                    policy: CodecPolicy | None = None, *, sip_ptime: int | None = None,
                    browser_ptime: int | None = None) -> None:
    """Complete ``plan`` from the SIP side's answer (its m-line codecs, in its order).

    The first answered codec the browser also has is relayed; failing that, the first
    answered codec we can transcode, with the browser side on the first codec of
    ``codecs.webrtc`` the browser offered that we can transcode (Opus by default).  Raises
    CallError with the info to fail the call with when neither is possible."""
    policy = policy or default_policy()
    usable = _browser_usable(browser, policy)
    answered = _primaries(answer)
    if not answered:
        raise _refuse(Info.NO_CODECS, "the SIP answer has no audio codec")
    sip_codec = browser_codec = None
    for codec in answered:
        browser_codec = next((b for b in usable if same_codec(b, codec)), None)
        if browser_codec is not None:
            sip_codec = codec
            break
    mode = "relay"
    if sip_codec is None:
        mode = "transcode"
        sip_codec = next((c for c in answered if (e := _entry(policy.sip, c)) is not None
                          and policy.can_transcode(e)), None)
        sources = _transcode_sources(usable, policy)
        if sip_codec is None or not sources:
            raise _refuse(Info.NO_CODECS, f"the SIP side answered {_names(answered)}")
        if not policy.transcoding:
            raise _refuse(Info.TRANSCODING_DISABLED, f"the SIP side answered {_names(answered)}")
        browser_codec = sources[0]
    assert browser_codec is not None  # the relay loop broke on a match, or sources[0] above
    plan.mode = mode
    plan.sip_codec = sip_codec
    plan.browser_codec = browser_codec
    plan.sip_dtmf = _event_for(list(answer), sip_codec.clock_rate)
    plan.browser_dtmf = _event_at(browser, browser_codec.clock_rate)
    plan.sip_ptime = sip_ptime
    plan.browser_ptime = browser_ptime


def browser_answer_codecs(plan: CodecPlan) -> list[Codec]:
    """Our answer's audio codecs for the browser once ``plan`` is settled: its codec, then
    its telephone-event.  Transcoded Opus asks for no more band than the SIP codec carries
    (:func:`~wcsgw.sdp.opusband.band_limited_opus`); a relayed codec keeps the browser's
    own fmtp."""
    assert plan.browser_codec is not None and plan.sip_codec is not None
    codec = plan.browser_codec
    if plan.mode == "transcode":
        codec = band_limited_opus(codec, plan.sip_codec)
    return [codec] + ([plan.browser_dtmf] if plan.browser_dtmf else [])


# -- inbound: SIP offer -> browser offer -> browser answer ------------------------------------


def browser_offer_codecs(sip_offer: list[Codec] | None,
                         policy: CodecPolicy | None = None) -> list[Codec]:
    """The audio codecs to offer the browser for a SIP offer (None: a late offer, we choose).

    The SIP offer's codecs that ``codecs.sip`` and ``codecs.webrtc`` both list come first
    (in ``codecs.webrtc`` order, so the browser, which answers with the first it supports,
    relays); then, when transcoding is allowed and the SIP side offered a codec we can
    transcode, the other ``codecs.webrtc`` codecs we can transcode, as a fallback.
    telephone-event at the browser codecs' rates when the SIP side offered it.  Dynamic
    payload types are dropped (the browser offer numbers its own).

    Raises CallError (``Codes.NO_CODECS``, 488 toward the SIP side) with
    ``Transcoding required, but disabled`` or ``No common codecs``."""
    policy = policy or default_policy()
    if sip_offer is None:
        return _late_offer_codecs(policy)
    accepted = [c for c in _primaries(sip_offer) if _entry(policy.sip, c) is not None]
    relay: list[Codec] = []
    for entry in policy.webrtc:
        codec = next((c for c in accepted if entry.matches(c)), None)
        if codec is not None:
            relay.append(codec.with_payload_type(None)  # type: ignore[arg-type]
                         if codec.payload_type is not None and codec.payload_type >= 96 else codec)
    targets = [c for c in accepted if policy.can_transcode(_entry(policy.sip, c))]
    # Opus here can only be transcoded, to targets[0] (settle_inbound's choice): ask for its band
    fallback = [band_limited_opus(e.codec(), targets[0]) for e in policy.webrtc
                if policy.can_transcode(e, browser_side=True)
                and not any(e.matches(c) for c in relay)] if targets else []
    if not relay:
        if not fallback:
            raise _refuse(Info.NO_CODECS, f"the SIP side offers {_names(_primaries(sip_offer))}")
        if not policy.transcoding:
            raise _refuse(Info.TRANSCODING_DISABLED,
                          f"the SIP side offers {_names(_primaries(sip_offer))}")
    out = relay + (fallback if policy.transcoding else [])
    if any(c.key == TELEPHONE_EVENT for c in sip_offer):
        rates = {c.clock_rate for c in out}
        out += [te for te in (TELEPHONE_EVENT_48K, TELEPHONE_EVENT_8K) if te.clock_rate in rates]
    return out


def _late_offer_codecs(policy: CodecPolicy) -> list[Codec]:
    """A SIP INVITE without SDP: we offer the browser the ``codecs.webrtc`` codecs our 200
    can then offer the SIP side — the same codec (``codecs.sip`` lists it) or, transcoding,
    one we can convert to a ``codecs.sip`` codec."""
    sip_target = policy.transcoding and any(policy.can_transcode(e) for e in policy.sip)
    out = [e.codec() for e in policy.webrtc
           if e in policy.sip or (sip_target and policy.can_transcode(e, browser_side=True))]
    if not out:
        raise _refuse(Info.NO_CODECS, "no codecs.webrtc codec can reach a codecs.sip codec")
    rates = {c.clock_rate for c in out}
    return out + [te for te in (TELEPHONE_EVENT_48K, TELEPHONE_EVENT_8K) if te.clock_rate in rates]


def settle_inbound(plan: CodecPlan, chosen: Codec, browser_dtmf: Codec | None,
                   sip_offer: Sequence[Codec] | None, policy: CodecPolicy | None = None, *,
                   sip_ptime: int | None = None) -> None:
    """Complete ``plan`` from the browser's answer (``chosen``, its first codec).

    With a SIP offer: relay with the offered codec that is the browser's, else transcode to
    the first codec of the SIP offer (its order of preference) that we can transcode.
    Without one (late offer): ``plan.sip_offer`` becomes the offer for our 200 — the
    browser's codec first when ``codecs.sip`` lists it, then what we can transcode to, as
    :func:`plan_codecs` makes it — and the plan is provisional (its first codec) until
    :func:`settle_outbound` reads the ACK's answer."""
    policy = policy or default_policy()
    plan.browser_codec = chosen
    plan.browser_dtmf = browser_dtmf
    plan.sip_ptime = sip_ptime
    if sip_offer is not None:
        accepted = [c for c in _primaries(sip_offer) if _entry(policy.sip, c) is not None]
        relay = next((c for c in accepted if same_codec(c, chosen)), None)
        if relay is not None:
            plan.mode, plan.sip_codec = "relay", relay
        else:
            target = next((c for c in accepted
                           if policy.can_transcode(_entry(policy.sip, c))), None)
            source = _entry(policy.webrtc, chosen)
            if target is None or not policy.can_transcode(source, browser_side=True):
                raise _refuse(Info.NO_CODECS, f"the browser chose {chosen.rtpmap}")
            if not policy.transcoding:
                raise _refuse(Info.TRANSCODING_DISABLED, f"the browser chose {chosen.rtpmap}")
            plan.mode, plan.sip_codec = "transcode", target
        plan.sip_dtmf = _event_for(list(sip_offer), plan.sip_codec.clock_rate)
        return
    # Late offer: the SIP offer is made as for a browser that offered only its choice; the
    # first codec is the provisional plan until the ACK's answer settles it (settle_outbound).
    chosen_list = [chosen] + ([browser_dtmf] if browser_dtmf is not None else [])
    plan.sip_offer = plan_codecs(chosen_list, policy).sip_offer
    first = _primaries(plan.sip_offer)[0]
    plan.mode = "relay" if same_codec(first, chosen) else "transcode"
    plan.sip_codec, plan.sip_dtmf = first, _event_for(plan.sip_offer, first.clock_rate)
