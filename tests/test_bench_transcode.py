"""The transcoding bench's caller sends Opus as Chromium would for the gateway's answer
(bench/browser_opus.py, bench/load_caller.py): the answer's fmtp -> the encoder's settings,
and the frames those settings give (the TOC byte's config says band and mode, RFC 6716 §3.1).
The load runs themselves are ``bench/relay_capacity.py``'s, not the suite's."""

from __future__ import annotations

from twisted.trial import unittest

from bench.browser_opus import (
    FRAMES_PER_CYCLE,
    UNLIMITED,
    OpusSend,
    encode_tone,
    opus_send_settings,
)
from wcsgw.sdp.codecs import Codec
from wcsgw.sdp.opusband import band_limited_opus


class SettingsFromFmtp(unittest.TestCase):
    def test_narrowband_answer_gives_chromiums_narrowband_encoder(self) -> None:
        send = opus_send_settings("minptime=10;useinbandfec=1;maxplaybackrate=8000;"
                                  "sprop-maxcapturerate=8000")
        self.assertEqual(send, OpusSend(rate=8000, bitrate=12000, complexity=9,
                                        max_bandwidth="narrowband"))

    def test_wideband_answer(self) -> None:
        send = opus_send_settings("maxplaybackrate=16000;sprop-maxcapturerate=16000")
        self.assertEqual(send, OpusSend(16000, 20000, 9, "wideband"))

    def test_the_other_bands(self) -> None:
        self.assertEqual(opus_send_settings("maxplaybackrate=12000").max_bandwidth, "mediumband")
        self.assertEqual(opus_send_settings("maxplaybackrate=11025"),
                         OpusSend(12000, 20000, 9, "mediumband"))
        self.assertEqual(opus_send_settings("maxplaybackrate=24000"),
                         OpusSend(24000, 32000, 9, "superwideband"))
        self.assertEqual(opus_send_settings("maxplaybackrate=48000"),
                         OpusSend(48000, 32000, 9, "fullband"))

    def test_names_are_case_insensitive_and_spaces_ignored(self) -> None:
        self.assertEqual(opus_send_settings(" MaxPlaybackRate = 8000 ; useinbandfec=1").max_bandwidth,
                         "narrowband")

    def test_maxaveragebitrate_wins_over_the_default_and_is_clamped(self) -> None:
        self.assertEqual(opus_send_settings("maxplaybackrate=8000;maxaveragebitrate=9000").bitrate,
                         9000)
        self.assertEqual(opus_send_settings("maxplaybackrate=8000;maxaveragebitrate=10").bitrate,
                         6000)

    def test_no_limit_keeps_the_earlier_fullband_settings(self) -> None:
        for fmtp in (None, "", "minptime=10;useinbandfec=1", "sprop-maxcapturerate=8000",
                     "maxplaybackrate=abc", "maxplaybackrate=0", "maxplaybackrate="):
            self.assertEqual(opus_send_settings(fmtp), UNLIMITED, fmtp)
        self.assertEqual(UNLIMITED, OpusSend(48000, 32000, 5, None))

    def test_not_honouring_ignores_the_limit(self) -> None:
        self.assertEqual(opus_send_settings("maxplaybackrate=8000", honour=False), UNLIMITED)

    def test_what_the_gateway_writes_is_understood(self) -> None:
        """The fmtp wcsgw/sdp/opusband.py writes toward the browser against PCMU and G.722."""
        browser = Codec("opus", 48000, 2, 111, "minptime=10;useinbandfec=1")
        pcmu = Codec("PCMU", 8000, 1, 0)
        g722 = Codec("G722", 8000, 1, 9)
        self.assertEqual(opus_send_settings(band_limited_opus(browser, pcmu).fmtp).max_bandwidth,
                         "narrowband")
        self.assertEqual(opus_send_settings(band_limited_opus(browser, g722).fmtp).max_bandwidth,
                         "wideband")


class Frames(unittest.TestCase):
    def _configs(self, send: OpusSend) -> set[int]:
        frames = encode_tone(send)
        self.assertEqual(len(frames), FRAMES_PER_CYCLE)
        return {frame[0] >> 3 for frame in frames}

    def test_narrowband_frames_are_silk_nb_20ms_and_small(self) -> None:
        send = opus_send_settings("maxplaybackrate=8000")
        self.assertEqual(self._configs(send), {1})  # SILK-only, NB, 20 ms
        frames = encode_tone(send)
        self.assertLess(sum(map(len, frames)) / len(frames), 40)  # 12 kbit/s: 30 bytes a frame

    def test_wideband_frames_are_silk_wb_20ms(self) -> None:
        self.assertEqual(self._configs(opus_send_settings("maxplaybackrate=16000")), {9})

    def test_unlimited_frames_are_fullband(self) -> None:
        configs = self._configs(UNLIMITED)
        self.assertTrue(configs <= {15, 31}, configs)  # hybrid FB or CELT FB, 20 ms


class AnswerParsing(unittest.TestCase):
    def test_the_answers_fmtp_is_kept_by_payload_type(self) -> None:
        from bench.load_caller import parse_answer

        answer = parse_answer("v=0\r\nm=audio 4000 UDP/TLS/RTP/SAVPF 111 126\r\n"
                              "c=IN IP4 127.0.0.1\r\na=rtpmap:111 opus/48000/2\r\n"
                              "a=fmtp:111 minptime=10;maxplaybackrate=8000\r\n"
                              "a=rtpmap:126 telephone-event/48000\r\na=fmtp:126 0-15\r\n")
        self.assertEqual(answer["pt"], 111)
        self.assertEqual(answer["fmtp"], {"111": "minptime=10;maxplaybackrate=8000", "126": "0-15"})
        self.assertEqual(opus_send_settings(answer["fmtp"][str(answer["pt"])]).max_bandwidth,
                         "narrowband")
