"""Parse + serialize throughput of the SIP grammar over a realistic signalling mix.

Run: ``python bench/sip_parse.py [seconds-per-message]``.  Prints, per message kind, the
messages per second and the p50/p99 time of one parse+serialize, then the whole mix.
Not a test: numbers depend on the machine; compare runs on the same one.
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from wcsgw.sip.parser import parse_message, serialize  # noqa: E402

SDP = (
    "v=0\r\n"
    "o=- 4611731400430051336 2 IN IP4 198.51.100.7\r\n"
    "s=-\r\n"
    "c=IN IP4 198.51.100.7\r\n"
    "t=0 0\r\n"
    "m=audio 40000 RTP/AVP 111 0 8 101\r\n"
    "a=rtpmap:111 opus/48000/2\r\n"
    "a=fmtp:111 minptime=10;useinbandfec=1\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-16\r\n"
    "a=ptime:20\r\n"
    "a=sendrecv\r\n"
)


def _msg(start: str, headers: list[str], body: str = "") -> bytes:
    lines = [start, *headers, f"Content-Length: {len(body.encode())}", "", ""]
    return "\r\n".join(lines).encode() + body.encode()


COMMON = [
    'From: "Alice Example" <sip:alice@example.com>;tag=1928301774',
    "To: <sip:+15551234567@pstn.example.net>",
    "Call-ID: a84b4c76e66710@pc33.example.com",
]
VIA = "Via: SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bK776asdhds;rport"
VIA2 = "Via: SIP/2.0/TCP proxy.example.net:5060;branch=z9hG4bK4b43c2ff8.1;received=192.0.2.4"
TO_TAGGED = "To: <sip:+15551234567@pstn.example.net>;tag=a6c85cf"

MESSAGES: dict[str, bytes] = {
    "INVITE+SDP": _msg(
        "INVITE sip:+15551234567@pstn.example.net;user=phone SIP/2.0",
        [
            VIA,
            "Max-Forwards: 70",
            *COMMON,
            "CSeq: 314159 INVITE",
            "Contact: <sip:alice@203.0.113.10:5060;transport=udp>",
            "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REFER, NOTIFY",
            "Supported: replaces, timer",
            "User-Agent: wcsgw/0.1",
            "Content-Type: application/sdp",
        ],
        SDP,
    ),
    "200 OK RR+Contact": _msg(
        "SIP/2.0 200 OK",
        [
            VIA2,
            VIA,
            "Record-Route: <sip:proxy2.example.net;lr>, <sip:proxy.example.net;lr;r2=on>",
            'From: "Alice Example" <sip:alice@example.com>;tag=1928301774',
            TO_TAGGED,
            "Call-ID: a84b4c76e66710@pc33.example.com",
            "CSeq: 314159 INVITE",
            "Contact: <sip:+15551234567@198.51.100.7:5060>",
            "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS",
            "Content-Type: application/sdp",
        ],
        SDP,
    ),
    "REGISTER+Auth": _msg(
        "REGISTER sip:example.com SIP/2.0",
        [
            VIA,
            "Max-Forwards: 70",
            "From: <sip:alice@example.com>;tag=456248",
            "To: <sip:alice@example.com>",
            "Call-ID: 843817637684230@998sdasdh09",
            "CSeq: 1826 REGISTER",
            "Contact: <sip:alice@203.0.113.10:5060;transport=udp>;expires=3600",
            'Authorization: Digest username="alice", realm="example.com", '
            'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="sip:example.com", '
            'response="6629fae49393a05397450978507c4ef1", algorithm=MD5, '
            'cnonce="0a4f113b", qop=auth, nc=00000001, opaque="5ccc069c403ebaf9f0171e9517f40e41"',
            "Expires: 3600",
        ],
    ),
    "OPTIONS": _msg(
        "OPTIONS sip:pstn.example.net SIP/2.0",
        [VIA, "Max-Forwards: 70", *COMMON, "CSeq: 63104 OPTIONS", "Accept: application/sdp"],
    ),
    "100 Trying": _msg(
        "SIP/2.0 100 Trying",
        [VIA, *COMMON, "CSeq: 314159 INVITE"],
    ),
    "180 Ringing": _msg(
        "SIP/2.0 180 Ringing",
        [
            VIA,
            'From: "Alice Example" <sip:alice@example.com>;tag=1928301774',
            TO_TAGGED,
            "Call-ID: a84b4c76e66710@pc33.example.com",
            "CSeq: 314159 INVITE",
            "Contact: <sip:+15551234567@198.51.100.7:5060>",
        ],
    ),
    "BYE": _msg(
        "BYE sip:+15551234567@198.51.100.7:5060 SIP/2.0",
        [
            VIA,
            "Max-Forwards: 70",
            "Route: <sip:proxy.example.net;lr;r2=on>",
            'From: "Alice Example" <sip:alice@example.com>;tag=1928301774',
            TO_TAGGED,
            "Call-ID: a84b4c76e66710@pc33.example.com",
            "CSeq: 314160 BYE",
        ],
    ),
    "ACK": _msg(
        "ACK sip:+15551234567@198.51.100.7:5060 SIP/2.0",
        [
            "Via: SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bK776asdhdt;rport",
            "Max-Forwards: 70",
            'From: "Alice Example" <sip:alice@example.com>;tag=1928301774',
            TO_TAGGED,
            "Call-ID: a84b4c76e66710@pc33.example.com",
            "CSeq: 314159 ACK",
        ],
    ),
}


def _time_one(data: bytes, seconds: float) -> list[float]:
    """Per-iteration times (seconds) of parse+serialize, for about ``seconds``."""
    timer = time.perf_counter
    samples: list[float] = []
    deadline = timer() + seconds
    while timer() < deadline:
        for _ in range(100):
            t0 = timer()
            serialize(parse_message(data))
            samples.append(timer() - t0)
    return samples


def _row(name: str, size: int | str, samples: list[float]) -> str:
    samples = sorted(samples)
    p50 = samples[len(samples) // 2] * 1e6
    p99 = samples[int(len(samples) * 0.99)] * 1e6
    rate = len(samples) / sum(samples)
    return f"{name:<20} {size:>6} {rate:>12,.0f} {p50:>9.1f} {p99:>9.1f}"


def _time_mix(seconds: float) -> list[float]:
    """The mix as one stream: every kind in turn, so each weighs the same."""
    timer = time.perf_counter
    datas = list(MESSAGES.values())
    samples: list[float] = []
    deadline = timer() + seconds
    while timer() < deadline:
        for _ in range(20):
            for data in datas:
                t0 = timer()
                serialize(parse_message(data))
                samples.append(timer() - t0)
    return samples


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    for data in MESSAGES.values():  # sanity + warm-up: every message must round-trip
        assert parse_message(serialize(parse_message(data))).headers == parse_message(data).headers
    print(f"{'message':<20} {'bytes':>6} {'msgs/s':>12} {'p50 µs':>9} {'p99 µs':>9}")
    print("-" * 60)
    for name, data in MESSAGES.items():
        print(_row(name, len(data), _time_one(data, seconds)))
    print("-" * 60)
    print(_row("mix (round robin)", "", _time_mix(seconds * 2)))


if __name__ == "__main__":
    main()
