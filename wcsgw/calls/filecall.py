"""Calls with server-side media (REST ``call/startup`` with ``playFile`` / ``record``).

No browser is involved: a :class:`FileLeg` is the call's near leg, where the browser's would
be, behind the same leg interface (wcsgw.calls.leg); its media end, a
:class:`~wcsgw.media.filemedia.FileMedia`, has the browser media end's small interface
(``on_rtp``, ``send_rtp``, ``start``, ``close`` ...).  Everything else — statuses, hold, DTMF,
transfer, the RTP timeout, hang-up — is the ordinary :class:`~wcsgw.calls.call.Call`.

**Codecs.**  The INVITE offers every ``[codecs] sip`` codec (in that order) this machine can
encode — its native library loads (:func:`wcsgw.media.codeclibs.available`) — with
telephone-event at each of their clock rates.  Whatever the SIP side picks, the leg speaks it
itself: the WAV is encoded once, in the chosen codec, at the codec's sample rate and the
answer's ``a=ptime``; what the SIP side sends is decoded once into the recording (concealing
lost packets).  The bridge between the leg and the SIP socket therefore always *relays* (a
header rewrite): there is no second codec to transcode to, which is why ``[codecs]
transcoding = false`` does not limit file calls — encoding a file is not transcoding a call.
A G.729-only or an Opus/G.722 PBX gets the file as well as a G.711 one.

The recording is a mono 16-bit WAV at the codec's own rate (8 kHz for G.711/G.729/Speex NB,
16 kHz for G.722/Speex WB, 48 kHz for Opus): see :mod:`wcsgw.media.wavfile`.  Its name is the
gateway's (UTC time + random hex, :func:`wcsgw.calls.ids.recording_name`), given to the
operator as the call object's ``recording``; it is created exclusively, inside the recordings
folder, when media starts — a call that never connects leaves no file.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from twisted.logger import Logger

from wcsgw.calls.call import Call
from wcsgw.calls.errors import CallError, Codes
from wcsgw.calls.leg import Leg
from wcsgw.calls.plan import CodecPlan, CodecPolicy
from wcsgw.calls.status import Info
from wcsgw.sdp.codecs import Codec, assign_payload_types, is_auxiliary, same_codec

if TYPE_CHECKING:  # numpy, the codecs and the WAV code: a file call's, not every start's
    from wcsgw.media.filemedia import FileMedia

log = Logger(namespace="wcsgw.calls")

__all__ = ["FileCall", "FileLeg", "file_call_offer", "settle_file_answer"]

TELEPHONE_EVENT = "telephone-event"
#: telephone-event's usual number at 8 kHz (the other rates get a dynamic one)
_EVENT_PAYLOAD_TYPES = {8000: 101}


def encodable() -> frozenset[str]:
    """Codec keys whose native library loads here."""
    from wcsgw.media.codeclibs import available

    return frozenset(available())


def file_call_offer(policy: CodecPolicy, loaded: Iterable[str]) -> list[Codec]:
    """The SDP offer of a file call: the ``codecs.sip`` codecs whose key is in ``loaded``, in
    that order, then telephone-event at each of their clock rates; payload types assigned.
    Empty when none is loadable (the caller refuses the call)."""
    keys = frozenset(loaded)
    offer = [e.codec() for e in policy.sip if e.key in keys]
    rates: list[int] = []
    for codec in offer:
        if codec.clock_rate not in rates:
            rates.append(codec.clock_rate)
    taken = {c.payload_type for c in offer}
    events = []
    for rate in rates:
        pt = _EVENT_PAYLOAD_TYPES.get(rate)
        events.append(Codec(TELEPHONE_EVENT, rate, 1, pt if pt not in taken else None, "0-16"))
    return assign_payload_types(offer + events) if offer else []


def settle_file_answer(offer: Sequence[Codec], answer: Sequence[Codec]) -> tuple[Codec, Codec | None]:
    """(the codec, telephone-event or None) a file call uses, from the SIP side's answer: its
    first audio codec that we offered (with the answer's payload type and fmtp: what the far
    end wants to receive), and its telephone-event at that codec's rate, else at any rate.
    ValueError when the answer holds nothing we offered."""
    offered = [c for c in offer if not is_auxiliary(c)]
    chosen = next((c for c in answer if not is_auxiliary(c)
                   and any(same_codec(c, o) for o in offered)), None)
    if chosen is None:
        raise ValueError("the answer has none of the offered codecs: "
                         + (", ".join(c.rtpmap for c in answer) or "none"))
    events = [c for c in answer if c.key == TELEPHONE_EVENT]
    dtmf = next((c for c in events if c.clock_rate == chosen.clock_rate), None)
    return chosen, dtmf or (events[0] if events else None)


class FileLeg(Leg):
    """A file call's near leg: its media end is a :class:`~wcsgw.media.filemedia.FileMedia`
    (the WAV played, the recording made), which begins once the SIP side chose a codec."""

    def __init__(self, media: FileMedia) -> None:
        self.media = media
        #: the SSRC of what the bridge sends on the file's behalf (nobody reads our SDP)
        self.ssrc = secrets.randbits(32)

    def start(self, now: float) -> None:
        """Open the file and the recording and play: raises CodecError (the codec's library is
        missing), OSError or WavError (the file went away)."""
        self.media.start()

    def hangup(self, now: float) -> None:
        self.media.close()


class FileCall(Call):
    """A call the operator started over REST, with file media instead of a browser."""

    def __init__(self, *, play_file: Path | None, record_file: Path | None, **kwargs: Any) -> None:
        """``record_file``: where the recording goes — the recordings folder joined with a name
        the gateway chose (:func:`wcsgw.calls.ids.recording_name`), never a client's id; the
        file is created when media starts, with ``O_EXCL|O_NOFOLLOW``
        (:func:`~wcsgw.media.wavfile.create_new`)."""
        super().__init__(browser_offer="", **kwargs)
        self.play_file = play_file
        self.record_file = record_file
        #: the recording's file name within the recordings folder (docs/contract.md), or None
        self.recording = record_file.name if record_file is not None else None

    def describe(self, with_sdp: bool = False) -> dict[str, Any]:
        out = super().describe(with_sdp=False)
        out["playFile"] = self.play_file.name if self.play_file else None
        # A file name, never the server's path: the operator knows the folder.
        out["record"] = self.record_file is not None
        out["recording"] = self.recording
        return out

    def start(self) -> None:
        env = self.env
        if self.account is None:
            raise CallError(Codes.FORBIDDEN, Info.FORBIDDEN, "callee")
        offer = file_call_offer(env.codecs, encodable())
        if not offer:
            raise CallError(Codes.NO_CODECS, f"{Info.NO_CODECS}: no codecs.sip codec can be "
                            "encoded on this machine", "playFile")
        self.plan = CodecPlan("relay", offer)
        log.info("call {call_id}: file call, SIP offer {offer}", call_id=self.call_id,
                 session_id=self.session_id, offer=", ".join(c.rtpmap for c in offer))
        from wcsgw.media.filemedia import FileMedia

        self.rtp = env.make_rtp_socket(env.reactor, env.allocator, env.media_host)
        self._take_near(FileLeg(FileMedia(env.reactor, self.play_file, self.record_file)))
        self._place_invite()

    def _connect_media(self, sip_sdp: bytes) -> None:
        """The SIP side answered: play and record in its codec; the bridge relays."""
        from wcsgw.media.filemedia import FileMedia

        plan, leg = self.plan, self.leg
        assert plan is not None and isinstance(leg, FileMedia)
        answer = self._parse_sip_answer(sip_sdp)
        if answer is None:
            return
        audio = answer.first_audio()
        try:
            if audio is None:
                raise ValueError("the answer has no audio")
            chosen, dtmf = settle_file_answer(plan.sip_offer, audio.codecs())
        except ValueError as exc:
            log.info("call {call_id}: {reason}", call_id=self.call_id, reason=str(exc))
            self._fail_sip(Info.NO_CODECS)
            return
        assert audio is not None
        plan.sip_codec = plan.browser_codec = chosen
        plan.sip_dtmf = plan.browser_dtmf = dtmf
        plan.sip_ptime = plan.browser_ptime = audio.ptime
        leg.use_codec(chosen, audio.ptime)
        self._retarget(sip_sdp, parsed=answer)
        try:
            self._start_media()
        except (OSError, ValueError) as exc:  # the file or a library went away (CodecError)
            log.warn("call {call_id}: server-side media failed: {error}", call_id=self.call_id,
                     error=str(exc))
            self._fail_sip(f"server-side media failed: {exc}")
