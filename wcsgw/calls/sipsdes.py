"""One call's SDES (RFC 4568) toward the SIP side: its policy, its keys, what its SDP says.

Why an object of its own: the account's (or route's) ``srtp`` policy decides, per SDP, the
audio m-line's proto and ``a=crypto`` lines, and the answers we get and give decide the keys
the SIP side's socket wrapper (:class:`~wcsgw.media.srtpsip.SrtpSipSocket`) protects with.
:class:`~wcsgw.calls.sipsdp.SipSdp` asks this for each SDP it writes or reads.

The policy table (docs/call-control.md, SRTP toward the SIP side):

=========== ============================== ==========================================
policy      our offer                      their offer we accept
=========== ============================== ==========================================
off         ``RTP/AVP``, no crypto         ``RTP/AVP`` (its crypto lines ignored)
optional    ``RTP/AVP`` with ``a=crypto``  ``RTP/AVP`` (keyed if it has a line we take)
            (best effort: a peer that      or ``RTP/SAVP`` with a line we take
            knows SDES keys, one that does
            not answers plain RTP)
mandatory   ``RTP/SAVP`` with ``a=crypto`` ``RTP/SAVP`` with a line we take; else 488
=========== ============================== ==========================================

An answer to our offer that takes none of our lines leaves the media plain (optional) or
fails the call (mandatory, :meth:`Sdes.refuses_answer`).  Keys come fresh from ``keys``
(``os.urandom``) for each offer and each answer we make, per call and direction.
"""

from __future__ import annotations

import os
from typing import Any

import attr

from wcsgw.sdp.crypto import (
    AVP,
    SAVP,
    Crypto,
    KeySource,
    accepted_crypto,
    answer_crypto,
    offer_cryptos,
)
from wcsgw.sdp.model import Attribute, MediaDescription, SessionDescription

__all__ = ["Sdes", "POLICIES"]

POLICIES = ("off", "optional", "mandatory")


def _lines(media: MediaDescription) -> list[str]:
    return media.get_all("crypto")


class Sdes:
    """One call's SDES state (see the module docstring)."""

    def __init__(self, policy: str = "off", keys: KeySource = os.urandom) -> None:
        self.policy = policy
        self.keys = keys
        #: our offer's lines, until its answer comes
        self.offered: list[Crypto] = []
        #: the lines in use (ours protects what we send, theirs unprotects what comes)
        self.mine: Crypto | None = None
        self.theirs: Crypto | None = None
        self.proto = AVP

    def decorate(self, media: MediaDescription | None, fresh: bool) -> None:
        """Our audio m-line as the policy wants it: a ``fresh`` offer (a new INVITE's) gets
        new lines; any later SDP of the session repeats the line in use."""
        if media is None or self.policy == "off":
            return
        if fresh:
            self.mine = self.theirs = None
            self.offered = offer_cryptos(self.keys)
            self.proto = SAVP if self.policy == "mandatory" else AVP
            lines = self.offered
        elif self.mine is not None:
            lines = [self.mine]
        else:
            return
        media.proto = self.proto
        media.attributes += [Attribute("crypto", c.value()) for c in lines]

    def refuses_answer(self, answer: SessionDescription | None) -> bool:
        """A mandatory policy and an answer to our offer that takes none of our lines."""
        audio = answer.first_audio() if answer is not None else None
        return (self.policy == "mandatory" and bool(self.offered)
                and (audio is None or accepted_crypto(self.offered, _lines(audio)) is None))

    def take_answer(self, answer: SessionDescription, media: Any) -> None:
        """The SIP side answered our offer: key ``media`` (a CallMedia) with the line it took;
        none taken: plain RTP (what :meth:`refuses_answer` stops when mandatory)."""
        if self.policy == "mandatory" and media is not None:
            media.require_srtp()
        audio = answer.first_audio()
        if audio is None:
            return
        if not self.offered:
            self._new_key_in_answer(audio, media)
            return
        taken = accepted_crypto(self.offered, _lines(audio))
        self.offered = []
        if taken is not None:
            self.mine, self.theirs = taken
            self.proto = audio.proto.upper()
            if media is not None:
                media.key_sip(self.mine.suite, self.mine.key, self.theirs.key)

    def _new_key_in_answer(self, audio: MediaDescription, media: Any) -> None:
        """An answer to a re-offer of ours (a hold) may bring the SIP side a new key for the
        line in use (RFC 4568 lets any new offer or answer re-key): what it sends from then
        on unprotects with it."""
        if self.mine is None or self.theirs is None:
            return
        taken = accepted_crypto([self.mine], _lines(audio))
        if taken is not None and taken[1].key != self.theirs.key:
            self.theirs = taken[1]
            if media is not None:
                media.rekey_sip(self.theirs.key)

    def refusal(self, offer: SessionDescription) -> str | None:
        """Why we refuse the SIP side's offer (488), or None: the policy table's right column."""
        audio = offer.first_audio()
        if audio is None:
            return None
        savp = audio.proto.upper() == SAVP
        if self.policy == "off":
            return "SRTP offered but srtp is off" if savp else None
        if self.policy == "mandatory" and not savp:
            return "srtp is mandatory and the offer is RTP/AVP"
        if savp and answer_crypto(_lines(audio), self.keys) is None:
            return "no a=crypto line we support"
        return None

    @staticmethod
    def as_plain(offer: SessionDescription) -> SessionDescription:
        """``offer`` with its audio m-line's ``RTP/SAVP`` read as ``RTP/AVP``: what the codec
        answer (wcsgw.sdp.negotiate, plain RTP only) works on; :meth:`answer` puts the proto
        back in our answer."""
        audio = offer.first_audio()
        if audio is None or audio.proto.upper() != SAVP:
            return offer
        plain = attr.evolve(offer, media=list(offer.media))
        plain.media[offer.media.index(audio)] = attr.evolve(audio, proto=AVP)
        return plain

    def answer(self, offer: SessionDescription, ours: MediaDescription | None,
               media: Any) -> bool:
        """Answering the SIP side's offer (a new INVITE's, or a re-offer): our m-line gets
        its proto and our line, ``media`` is keyed (re-keyed inbound only when the SIP side's
        key changed).  False: a keyed call's re-offer without a line we take (488)."""
        if self.policy == "mandatory" and media is not None:
            media.require_srtp()
        audio = offer.first_audio()
        if audio is None or ours is None or self.policy == "off":
            return True
        chosen = answer_crypto(_lines(audio), self.keys)
        if chosen is None:
            return self.mine is None and audio.proto.upper() != SAVP
        theirs, mine = chosen
        if self.mine is not None and self.theirs is not None:
            if theirs.suite != self.mine.suite:
                return False
            mine = Crypto(theirs.tag, theirs.suite, self.mine.key)  # our key stays
            if media is not None and theirs.key != self.theirs.key:
                media.rekey_sip(theirs.key)
        elif media is not None:
            media.key_sip(mine.suite, mine.key, theirs.key)
        self.mine, self.theirs, self.proto = mine, theirs, audio.proto.upper()
        ours.proto = self.proto
        ours.attributes.append(Attribute("crypto", mine.value()))
        return True
