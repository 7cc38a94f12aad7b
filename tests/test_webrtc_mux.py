"""The shared browser port's demultiplexer (wcsgw.webrtc.mux), sans-IO: STUN goes by the
ufrag in its USERNAME, everything else only by an address a leg proved; a leg that goes away
takes its addresses with it; ICE-TCP addresses never equal UDP ones."""

from __future__ import annotations

from typing import Optional

from aioice import stun
from twisted.trial import unittest

from wcsgw.webrtc.mux import Demux, TcpAddress, stun_username

BROWSER = ("192.0.2.7", 50000)
OTHER = ("198.51.100.9", 40000)
DTLS = bytes([22, 0xFE, 0xFD]) + bytes(30)
SRTP = bytes([0x80, 0x6F]) + bytes(40)
SRTCP = bytes([0x80, 0xC8]) + bytes(40)


def binding(username: Optional[str], key: bytes = b"k" * 24,
            method: stun.Method = stun.Method.BINDING,
            klass: stun.Class = stun.Class.REQUEST) -> bytes:
    msg = stun.Message(method, klass)
    if username is not None:
        msg.attributes["USERNAME"] = username
    msg.attributes["PRIORITY"] = 100
    msg.add_message_integrity(key)
    return bytes(msg)


class StunUsernameTests(unittest.TestCase):
    def test_username_is_read(self) -> None:
        self.assertEqual(stun_username(binding("ours:theirs")), "ours:theirs")

    def test_no_username(self) -> None:
        self.assertIsNone(stun_username(binding(None)))

    def test_truncated_attributes_give_none(self) -> None:
        data = binding("ours:theirs")
        self.assertIsNone(stun_username(data[:24]))  # the length field says more follows
        # an attribute whose length runs past the message
        broken = bytearray(data)
        broken[22:24] = (4000).to_bytes(2, "big")
        self.assertIsNone(stun_username(bytes(broken)))

    def test_undecodable_username_gives_none(self) -> None:
        data = bytearray(binding("abcd:efgh"))
        data[24] = 0xFF
        self.assertIsNone(stun_username(bytes(data)))


class TcpAddressTests(unittest.TestCase):
    def test_never_equal_to_the_udp_address_with_the_same_numbers(self) -> None:
        tcp = TcpAddress("192.0.2.7", 50000)
        self.assertNotEqual(tcp, BROWSER)
        self.assertNotEqual(BROWSER, tcp)
        self.assertEqual(len({tcp, BROWSER}), 2)
        self.assertEqual(tcp, TcpAddress("192.0.2.7", 50000))
        self.assertEqual((tcp[0], tcp[1]), BROWSER)  # still a (host, port) for STUN's codec


class DemuxTests(unittest.TestCase):
    def setUp(self) -> None:
        self.demux: Demux[str] = Demux()
        self.demux.register("aaaa", "leg A")
        self.demux.register("bbbb", "leg B")

    def test_stun_goes_by_our_ufrag(self) -> None:
        self.assertEqual(self.demux.route(binding("aaaa:x"), BROWSER), "leg A")
        self.assertEqual(self.demux.route(binding("bbbb:x"), BROWSER), "leg B")

    def test_stun_naming_no_registered_leg_is_dropped(self) -> None:
        self.assertIsNone(self.demux.route(binding("zzzz:x"), BROWSER))
        self.assertIsNone(self.demux.route(binding("nocolon"), BROWSER))
        self.assertEqual(self.demux.dropped, 2)

    def test_stun_by_name_even_from_an_address_another_leg_proved(self) -> None:
        """The leg named decides (it checks MESSAGE-INTEGRITY); the mux never answers."""
        self.demux.prove(BROWSER, "aaaa")
        self.assertEqual(self.demux.route(binding("bbbb:x"), BROWSER), "leg B")
        self.assertEqual(self.demux.owner(BROWSER), "aaaa")  # routing alone moves nothing

    def test_media_and_dtls_from_an_unproven_address_are_dropped(self) -> None:
        for packet in (DTLS, SRTP, SRTCP, binding(None)):
            self.assertIsNone(self.demux.route(packet, BROWSER))
        self.assertEqual(self.demux.dropped, 4)

    def test_media_and_dtls_go_to_the_leg_that_proved_the_address(self) -> None:
        self.demux.prove(BROWSER, "aaaa")
        self.demux.prove(OTHER, "bbbb")
        for packet in (DTLS, SRTP, SRTCP, binding(None)):
            self.assertEqual(self.demux.route(packet, BROWSER), "leg A")
            self.assertEqual(self.demux.route(packet, OTHER), "leg B")
        self.assertIsNone(self.demux.route(SRTP, ("192.0.2.7", 50001)))

    def test_other_first_bytes_are_dropped_even_from_a_proven_address(self) -> None:
        self.demux.prove(BROWSER, "aaaa")
        for packet in (b"", bytes([5]) * 30, bytes([100]) * 30, bytes([200]) * 30,
                       bytes([1]) * 30):  # 1..3 without the STUN magic cookie
            self.assertIsNone(self.demux.route(packet, BROWSER))

    def test_a_tcp_address_is_proven_apart_from_the_udp_one(self) -> None:
        tcp = TcpAddress(*BROWSER)
        self.demux.prove(tcp, "aaaa")
        self.assertEqual(self.demux.route(SRTP, tcp), "leg A")
        self.assertIsNone(self.demux.route(SRTP, BROWSER))

    def test_an_address_belongs_to_the_latest_leg_that_proved_it(self) -> None:
        self.demux.prove(BROWSER, "aaaa")
        self.demux.prove(BROWSER, "bbbb")
        self.assertEqual(self.demux.route(SRTP, BROWSER), "leg B")
        self.assertEqual(self.demux.unregister("aaaa"), set())

    def test_proving_for_an_unknown_ufrag_does_nothing(self) -> None:
        self.demux.prove(BROWSER, "zzzz")
        self.assertIsNone(self.demux.owner(BROWSER))

    def test_unregister_forgets_the_leg_and_its_addresses(self) -> None:
        tcp = TcpAddress(*OTHER)
        self.demux.prove(BROWSER, "aaaa")
        self.demux.prove(tcp, "aaaa")
        self.assertEqual(self.demux.unregister("aaaa"), {BROWSER, tcp})
        self.assertNotIn("aaaa", self.demux)
        self.assertEqual(len(self.demux), 1)
        self.assertIsNone(self.demux.route(SRTP, BROWSER))
        self.assertIsNone(self.demux.route(binding("aaaa:x"), BROWSER))
        self.assertIsNone(self.demux.owner(tcp))
        self.assertEqual(self.demux.unregister("aaaa"), set())  # twice is harmless
        self.demux.unregister("bbbb")
        self.assertEqual((len(self.demux), self.demux._proven, self.demux._addresses), (0, {}, {}))

    def test_forget_drops_one_address(self) -> None:
        tcp = TcpAddress(*BROWSER)
        self.demux.prove(tcp, "aaaa")
        self.demux.forget(tcp)
        self.assertIsNone(self.demux.route(SRTP, tcp))
        self.assertEqual(self.demux.unregister("aaaa"), set())

    def test_a_ufrag_is_registered_once(self) -> None:
        self.assertRaises(ValueError, self.demux.register, "aaaa", "leg C")
        self.assertEqual(self.demux.route(binding("aaaa:x"), BROWSER), "leg A")


class CandidateTests(unittest.TestCase):
    """SDP toward the browser: the UDP host candidate, plus ICE-TCP passive on the shared port."""

    class Leg:
        host = "203.0.113.5"
        port = 3478
        tcp_port = 0

    def test_per_call_leg_has_udp_only(self) -> None:
        from wcsgw.webrtc.sdp import leg_candidates

        [udp] = leg_candidates(self.Leg())  # type: ignore[arg-type]
        self.assertTrue(udp.startswith("1 1 udp "))
        self.assertTrue(udp.endswith(" 203.0.113.5 3478 typ host"))

    def test_shared_port_leg_adds_tcp_passive_below_udp(self) -> None:
        from wcsgw.webrtc.sdp import leg_candidates

        leg = self.Leg()
        leg.tcp_port = 3478
        udp, tcp = leg_candidates(leg)  # type: ignore[arg-type]
        fields = tcp.split()
        self.assertEqual(fields[:3], ["2", "1", "tcp"])
        self.assertEqual(fields[4:], ["203.0.113.5", "3478", "typ", "host", "tcptype", "passive"])
        self.assertLess(int(fields[3]), int(udp.split()[3]))

    def test_offer_and_answer_carry_the_tcp_candidate_of_a_shared_port_leg(self) -> None:
        """Both ways of SDP toward the browser (the gateway's offer, its answer) list it."""
        from tests.test_webrtc_offer import offer
        from tests.test_webrtc_sdp import CHROME_OFFER, FakeLeg, answer
        from wcsgw.sdp.parser import serialize_sdp

        leg = FakeLeg()
        leg.tcp_port = 40000  # type: ignore[attr-defined]
        for sdp in (offer(leg=leg), answer(CHROME_OFFER, leg=leg)):
            text = serialize_sdp(sdp)
            self.assertIn(" 1 udp ", text)
            self.assertIn(" 127.0.0.1 40000 typ host tcptype passive\r\n", text)
        self.assertNotIn("tcptype", serialize_sdp(answer(CHROME_OFFER)))
