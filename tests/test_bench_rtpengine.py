"""rtpengine side by side in ``make bench`` (bench/rtpengine_front.py, rtpengine_peer.py,
rtpengine_compare.py): the ng front's offer/answer shaping and the side-by-side arithmetic as
pure functions, and one short smoke run — rtpengine with the bench front carrying ONE bench
call to the echo far end — so a bench that cannot reach rtpengine fails here, not in a
half-hour ``make bench``.  The load runs themselves are ``make bench``'s, not the suite's."""

from __future__ import annotations

import argparse
import os
import tempfile

from twisted.internet.threads import deferToThread
from twisted.trial import unittest

from bench.rtpengine_compare import busy_reason, fit, others_cpu_pct, summarise, tables
from bench.rtpengine_front import (
    NgError,
    answer_command,
    bdecode,
    bencode,
    check_plain_offer,
    check_webrtc_answer,
    delete_command,
    offer_command,
    parse_reply,
    reply_sdp,
    request,
)

#: what rtpengine 10.5 gave the bench for a load_caller offer (ports aside)
PLAIN_OFFER = ("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 21000 RTP/AVP 0 126\r\n"
               "c=IN IP4 127.0.0.1\r\na=mid:0\r\na=rtpmap:0 PCMU/8000\r\n"
               "a=rtpmap:126 telephone-event/8000\r\na=sendrecv\r\na=rtcp:21001\r\na=ptime:20\r\n")
WEBRTC_ANSWER = ("v=0\r\no=- 5 0 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                 "m=audio 21010 UDP/TLS/RTP/SAVPF 0 126\r\na=mid:0\r\na=rtpmap:0 PCMU/8000\r\n"
                 "a=sendrecv\r\na=rtcp:21010\r\na=rtcp-mux\r\na=setup:active\r\n"
                 "a=fingerprint:sha-256 2D:ED:EF\r\na=ice-ufrag:cUN1\r\na=ice-pwd:rEfxbuRIhvgS\r\n"
                 "a=candidate:x 1 UDP 2130706431 127.0.0.1 21010 typ host\r\n")


class BencodeTests(unittest.TestCase):
    def test_round_trip_of_an_ng_command(self) -> None:
        command = offer_command("c1", "ft", "v=0\r\n")
        self.assertEqual(bdecode(bencode(command)), command)

    def test_known_encoding_sorts_keys(self) -> None:
        self.assertEqual(bencode({"sdp": "x", "command": "ping", "n": 3, "l": ["a"]}),
                         b"d7:command4:ping1:ll1:ae1:ni3e3:sdp1:xe")

    def test_bad_input_is_a_clear_error(self) -> None:
        self.assertRaises(ValueError, bdecode, b"d7:command4:pin")
        self.assertRaises(ValueError, bdecode, b"i1ei2e")
        self.assertRaises(ValueError, bdecode, b"x")
        self.assertRaises(TypeError, bencode, 1.5)
        self.assertRaises(TypeError, bencode, True)

    def test_request_and_reply_carry_the_cookie(self) -> None:
        self.assertTrue(request("abc", {"command": "ping"}).startswith(b"abc d"))
        cookie, reply = parse_reply(b"abc d6:result4:ponge")
        self.assertEqual((cookie, reply), ("abc", {"result": "pong"}))
        self.assertRaises(ValueError, parse_reply, b"nocookie")
        self.assertRaises(ValueError, parse_reply, b"abc l1:ae")


class ShapingTests(unittest.TestCase):
    def test_offer_turns_webrtc_into_plain_rtp(self) -> None:
        c = offer_command("call", "from", "SDP")
        self.assertEqual(c["command"], "offer")
        self.assertEqual((c["call-id"], c["from-tag"], c["sdp"]), ("call", "from", "SDP"))
        self.assertEqual(c["transport-protocol"], "RTP/AVP")
        self.assertEqual(c["ICE"], "remove")
        self.assertEqual(c["DTLS"], "off")
        self.assertEqual(c["rtcp-mux"], ["demux"])

    def test_answer_gives_the_caller_ice_dtls_and_rtcp_mux(self) -> None:
        c = answer_command("call", "from", "to", "SDP")
        self.assertEqual((c["command"], c["to-tag"], c["from-tag"]), ("answer", "to", "from"))
        self.assertEqual(c["ICE"], "force")
        self.assertEqual(c["DTLS"], "active")
        self.assertEqual(c["rtcp-mux"], ["require"])
        self.assertNotIn("transport-protocol", c)  # rtpengine restores the caller's own profile
        self.assertEqual(delete_command("call", "from"),
                         {"command": "delete", "call-id": "call", "from-tag": "from"})

    def test_reply_sdp_and_errors(self) -> None:
        self.assertEqual(reply_sdp({"result": "ok", "sdp": PLAIN_OFFER}, "offer"), PLAIN_OFFER)
        with self.assertRaises(NgError) as caught:
            reply_sdp({"result": "error", "error-reason": "Unknown call-id"}, "answer")
        self.assertIn("Unknown call-id", str(caught.exception))
        self.assertRaises(NgError, reply_sdp, {"result": "ok"}, "offer")

    def test_checks_of_rtpengines_sdp(self) -> None:
        self.assertEqual(check_plain_offer(PLAIN_OFFER), PLAIN_OFFER)
        self.assertEqual(check_webrtc_answer(WEBRTC_ANSWER), WEBRTC_ANSWER)
        self.assertRaises(NgError, check_plain_offer, WEBRTC_ANSWER)
        self.assertRaises(NgError, check_plain_offer,
                          PLAIN_OFFER + "a=candidate:x 1 UDP 1 127.0.0.1 1 typ host\r\n")
        self.assertRaises(NgError, check_webrtc_answer, PLAIN_OFFER)
        self.assertRaises(NgError, check_webrtc_answer,
                          WEBRTC_ANSWER.replace("a=fingerprint", "a=x-fingerprint"))


def run(gateway: str, calls: int | str, rep: int, cpu: float, busy: str | None = None,
        up: int | None = None) -> dict[str, object]:
    n = calls if isinstance(calls, int) else 10
    got = n if up is None else up
    return {"gateway": gateway, "calls": calls, "rep": rep, "load_1m": 0.1, "busy": busy,
            "complete": got == n, "calls_up": got, "gw_cpu_pct": cpu * got,
            "cpu_per_call_pct": cpu, "rss_per_call_kib": 200.0, "idle_rss_kib": 40960,
            "rtt_p50_ms": 0.5, "rtt_p99_ms": 1.0, "loss_pct": 0.0,
            "call_to_invite_p50": 2.0, "ok_to_established_p50": 1.0}


class SideBySideTests(unittest.TestCase):
    def test_busy(self) -> None:
        self.assertIsNone(busy_reason(1.0, 2, 10.0, 0.7, 25.0))
        self.assertIn("load average", busy_reason(1.5, 2, 0.0, 0.7, 25.0) or "")
        self.assertIn("other processes", busy_reason(0.1, 2, 40.0, 0.7, 25.0) or "")
        self.assertIsNone(busy_reason(0.1, 2, None, 0.7, 25.0))

    def test_others_cpu_is_the_box_minus_the_bench(self) -> None:
        self.assertAlmostEqual(others_cpu_pct({"box_cpu_pct": 50.0, "gw_cpu_pct": 10.0,
                                               "caller_cpu_pct": 5.0, "echo_cpu_pct": 5.0}) or 0,
                               30.0)
        self.assertEqual(others_cpu_pct({"box_cpu_pct": 5.0, "gw_cpu_pct": 10.0}), 0.0)
        self.assertIsNone(others_cpu_pct({}))

    def test_fit(self) -> None:
        fixed, per_call = fit([(10.0, 5.0), (50.0, 13.0), (100.0, 23.0)]) or (0.0, 0.0)
        self.assertAlmostEqual(fixed, 3.0)
        self.assertAlmostEqual(per_call, 0.2)
        self.assertIsNone(fit([(10.0, 1.0), (10.0, 2.0)]))
        self.assertIsNone(fit([]))

    def test_busy_and_failed_runs_are_left_out_unless_allowed(self) -> None:
        runs = [run("wcsgw", 10, 1, 0.5), run("wcsgw", 10, 2, 0.7),
                run("wcsgw", 10, 3, 9.0, busy="load average 3"),
                run("wcsgw", 10, 4, 8.0, up=7)]
        s = summarise(runs, allow_busy=False)[("wcsgw", 10)]
        self.assertEqual((s["runs"], s["used"], s["busy"], s["failed"]), (4, 2, 1, 1))
        self.assertEqual(s["cpu_per_call_pct"], (0.6, 0.5, 0.7))
        kept = summarise(runs, allow_busy=True)[("wcsgw", 10)]
        self.assertEqual((kept["used"], kept["busy_used"]), (3, 1))
        self.assertEqual(kept["cpu_per_call_pct"], (0.7, 0.5, 9.0))

    def test_tables_show_every_gateway_at_every_count(self) -> None:
        gateways = ["wcsgw", "janus", "rtpengine"]
        runs = [run(g, n, rep, cpu) for rep in (1, 2, 3) for n in (10, 50)
                for g, cpu in zip(gateways, (0.6, 0.5, 0.3))]
        runs += [run(g, "setup", 1, 0.0) for g in gateways]
        runs.append(run("rtpengine", 50, 4, 0.9, busy="load average 3.00 > 0.7 x 2 cores"))
        text = tables(runs, gateways, [10, 50], allow_busy=False)
        self.assertIn("| 10 | 0.600 [0.600–0.600] | 0.500 [0.500–0.500] | 0.300 [0.300–0.300] "
                      "| 2.00 |", text)
        self.assertIn("rtpengine 3/4 (1 busy, left out)", text)
        self.assertIn("no: load average 3.00", text)
        self.assertIn("| rtpengine | 2.00 [2.00–2.00] | 1.00 [1.00–1.00] | 40.0 [40.0–40.0] |",
                      text)
        self.assertNotIn("KEPT", text)
        self.assertIn("KEPT", tables(runs, gateways, [10, 50], allow_busy=True))


class SmokeTests(unittest.TestCase):
    """rtpengine (userspace) + the bench front + the echo far end, ONE load_caller call for
    2 s: the echoed packets come back through rtpengine (SRTP toward the caller, plain RTP
    toward the echo — the caller cannot reach the echo any other way)."""

    timeout = 120

    def setUp(self) -> None:
        import shutil

        if shutil.which("rtpengine", path=os.environ.get("PATH", "") + ":/usr/sbin:/usr/bin") is None:
            raise unittest.SkipTest("rtpengine not installed (Debian rtpengine-daemon)")

    def _one_call(self) -> tuple[dict[str, object], str]:
        from bench.harness import EchoUas
        from bench.relay_capacity import run_point
        from bench.rtpengine_peer import Rtpengine
        from tests.peers.ports import free_port

        workdir = tempfile.mkdtemp(prefix="wcsgw-bench-rtpe-")
        echo_first = free_port("udp", span=8)
        rtpe_first = free_port("udp", span=24)
        echo = EchoUas(workdir, f"{echo_first}-{echo_first + 7}")
        relay = None
        try:
            relay = Rtpengine(workdir, f"{rtpe_first}-{rtpe_first + 23}", start_timeout=60.0)
            args = argparse.Namespace(duration=2.0, settle=0.5, concurrency=1)
            result = run_point(relay, echo, 1, "pcmu", args, workdir, extra=["--drain", "3"])
        finally:
            if relay is not None:
                relay.stop()
            echo.stop()
        with open(relay.log_path) as f:
            return result, f.read()

    async def test_one_call_through_rtpengine_is_echoed(self) -> None:
        result, log = await deferToThread(self._one_call)
        self.assertEqual(result.get("calls_up"), 1, f"failures: {result.get('failures')}")
        sent, received = int(result["sent"]), int(result["received"])  # type: ignore[call-overload]
        self.assertGreater(sent, 10)
        self.assertGreater(received, 0)
        self.assertGreaterEqual(received, sent // 2, result)
        self.assertIn("Received command 'offer'", log)
        self.assertIn("Received command 'answer'", log)
