"""A call leg's listening quality as a MOS, from what RTCP and our receivers measure (sans-IO).

Why an E-model and not a listening test: the gateway never decodes relayed audio, so the only
thing it can score is the transport — which codec, how much is lost, how late it arrives. The
E-model (ITU-T G.107) is the planning tool built for exactly that: it turns impairments into a
rating R (0-100) and R into an estimated MOS (1.0-4.5). We use it in the reduced form common in
VoIP monitoring (Cole & Rosenbluth, "Voice over IP performance monitoring", ACM CCR 2001; the
same inputs as RFC 3611's VoIP metrics block): every default of G.107 left as it is, so

    R = 93.2 - Id(d) - Ie,eff(codec, loss) (+ A = 0)

- ``Id``, the delay impairment, with Cole & Rosenbluth's fit of G.107's Idd for a one-way
  delay ``d`` in ms: ``0.024 d + 0.11 (d - 177.3) H(d - 177.3)`` (H: the step function);
  echo is taken as cancelled.
- ``Ie,eff`` = ``Ie + (95 - Ie) * Ppl / (Ppl / BurstR + Bpl)`` (G.107 §3.8), loss ``Ppl`` in %,
  ``BurstR`` = 1 (random loss: RTCP says how much is lost, not how bursty).
- MOS from R by G.107 Annex B: ``1 + 0.035 R + R (R - 60)(100 - R) 7e-6``, clipped to 1.0-4.5.

The one-way delay we cannot measure; we estimate it as half the RTCP round trip plus what the
receiver adds: a packet time of packetisation and a jitter buffer of twice the interarrival
jitter (at least one packet time) — see :func:`one_way_delay_ms`.

Codec values (``Ie`` equipment impairment, ``Bpl`` packet-loss robustness), all on G.107's
narrowband scale:

- G.711 (PCMU/PCMA): Ie 0, Bpl 25.1 — ITU-T G.113 (11/2007) Appendix I, G.711 with packet loss
  concealment (G.711 Appendix I), which every browser and current phone applies.
- G.729(A): Ie 11, Bpl 19.0 — ITU-T G.113 Appendix I (G.729A + VAD).
- G.722: Ie 0, Bpl 25.1 — *our assumption*: G.107 has no narrowband value for a wideband codec
  (G.107.1 scores wideband on another scale); we score it as G.711 with concealment, its
  narrowband equivalent, so the MOS never claims wideband's better sound.
- Opus: Ie 0, Bpl 30 — *our assumption* (no ITU-T value exists): transparent at WebRTC's voice
  bit rates, and more robust to loss than G.711 with concealment thanks to its own concealment
  and in-band FEC.
- Speex (narrowband, ~8-15 kbit/s): Ie 11, Bpl 17 — *our assumption* (no ITU-T value): scored
  like G.729A, the codec of its rate, a little less robust.
- anything else: G.711's values.
"""

from __future__ import annotations

import attr

__all__ = ["CODEC_IMPAIRMENTS", "Impairment", "Quality", "codec_impairment", "mos_from_r",
           "one_way_delay_ms", "score"]


@attr.s(auto_attribs=True, frozen=True)
class Impairment:
    """One codec's E-model inputs: equipment impairment and packet-loss robustness."""

    ie: float
    bpl: float


@attr.s(auto_attribs=True, frozen=True)
class Quality:
    """The rating R (0-100) and the MOS it means (1.0-4.5)."""

    r: float
    mos: float


#: by lower-case codec name (wcsgw.sdp.codecs.Codec.key); sources in the module docstring
CODEC_IMPAIRMENTS: dict[str, Impairment] = {
    "pcmu": Impairment(0.0, 25.1),
    "pcma": Impairment(0.0, 25.1),
    "g722": Impairment(0.0, 25.1),
    "g729": Impairment(11.0, 19.0),
    "opus": Impairment(0.0, 30.0),
    "speex": Impairment(11.0, 17.0),
}

#: R with every G.107 default and no impairment (R0 - Is - Id(0) - Ie(0), A = 0)
R_DEFAULT = 93.2


def codec_impairment(codec: str | None) -> Impairment:
    """The codec's values by name (any case); G.711's for an unknown or missing one."""
    return CODEC_IMPAIRMENTS.get((codec or "").lower(), CODEC_IMPAIRMENTS["pcmu"])


def one_way_delay_ms(rtt_ms: float | None, jitter_ms: float | None, ptime_ms: float = 20.0) -> float:
    """The mouth-to-ear delay we estimate: half the round trip (0 if not measured yet), one
    packet time of packetisation, and a jitter buffer of twice the jitter (at least a packet)."""
    network = max(0.0, rtt_ms or 0.0) / 2.0
    buffer = max(ptime_ms, 2.0 * max(0.0, jitter_ms or 0.0))
    return network + ptime_ms + buffer


def delay_impairment(delay_ms: float) -> float:
    """G.107's Id for a one-way delay, Cole & Rosenbluth's fit (echo cancelled)."""
    d = max(0.0, delay_ms)
    return 0.024 * d + (0.11 * (d - 177.3) if d > 177.3 else 0.0)


def loss_impairment(impairment: Impairment, loss_fraction: float, burst_ratio: float = 1.0) -> float:
    """G.107's Ie,eff for a loss fraction (0..1)."""
    ppl = 100.0 * min(1.0, max(0.0, loss_fraction))
    ie = impairment.ie
    return ie + (95.0 - ie) * ppl / (ppl / burst_ratio + impairment.bpl)


def mos_from_r(r: float) -> float:
    """G.107 Annex B's R -> MOS, 1.0 below R 0 and 4.5 above R 100."""
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    return min(4.5, max(1.0, 1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6))


def score(codec: str | None, loss_fraction: float | None, delay_ms: float) -> Quality:
    """R and MOS for a leg carrying ``codec`` with ``loss_fraction`` (0..1, None as 0) lost and a
    one-way ``delay_ms`` (see :func:`one_way_delay_ms`)."""
    r = R_DEFAULT - delay_impairment(delay_ms) - loss_impairment(codec_impairment(codec), loss_fraction or 0.0)
    r = min(100.0, max(0.0, r))
    return Quality(r=r, mos=mos_from_r(r))
