"""Where each fuzz target starts from: real messages, not random bytes.

A coverage-guided fuzzer finds the deep paths far sooner from inputs that already reach them:
the RFC 4475 torture messages (tests/data/rfc4475) and a dialog's worth of messages for SIP;
the browsers' and phones' SDP that the tests already hold (Chromium's offer in tests/data, the
Firefox, baresip and phone SDP of the parser and call tests) for SDP; a whole browser session
for JSON-RPC; every REST method for REST; real STUN checks; RTP and every RTCP packet the
gateway builds.  Seeds are made here, at run time, so they follow the tests; the replay test
runs them too (so it is never empty).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"

__all__ = ["seeds"]


def _constants(module: str, *names: str) -> Iterator[bytes]:
    """SDP and messages the tests hold as module constants (skipped when renamed)."""
    try:
        mod = importlib.import_module(module)
    except Exception:  # noqa: BLE001 - a test module that fails to import: fewer seeds
        return
    for name in names:
        value = getattr(mod, name, None)
        if isinstance(value, str):
            yield value.encode()
        elif isinstance(value, bytes):
            yield value


# -- SIP -------------------------------------------------------------------------------------

def _sip_request(method: str, *, cseq: int = 1, to_tag: str = "", body: str = "",
                 content_type: str = "application/sdp", branch: str = "z9hG4bKf1",
                 extra: str = "") -> bytes:
    tag = f";tag={to_tag}" if to_tag else ""
    head = (
        f"{method} sip:gw@127.0.0.1:5060 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 192.0.2.7:5070;branch={branch};rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: \"Alice\" <sip:alice@example.com>;tag=a1\r\n"
        f"To: <sip:gw@127.0.0.1>{tag}\r\n"
        "Call-ID: fuzz-1@example.com\r\n"
        f"CSeq: {cseq} {method}\r\n"
        "Contact: <sip:alice@192.0.2.7:5070>\r\n"
        f"{extra}"
    )
    if body:
        head += f"Content-Type: {content_type}\r\n"
    return (head + f"Content-Length: {len(body.encode())}\r\n\r\n" + body).encode()


_PHONE_OFFER = ("v=0\r\no=- 5 1 IN IP4 192.0.2.7\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\n"
                "m=audio 30000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\n"
                "a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
                "a=fmtp:101 0-15\r\na=sendrecv\r\n")


def _sip_dialogs() -> Iterator[bytes]:
    from bench.fuzz.targets import OUR_TAG, SPLIT

    tag = OUR_TAG.decode()
    invite = _sip_request("INVITE", body=_PHONE_OFFER)
    ack = _sip_request("ACK", to_tag=tag, branch="z9hG4bKf2")
    bye = _sip_request("BYE", cseq=2, to_tag=tag, branch="z9hG4bKf3")
    yield SPLIT.join([invite, ack, bye])
    hold = _PHONE_OFFER.replace("sendrecv", "sendonly")
    yield SPLIT.join([invite, ack,
                      _sip_request("INVITE", cseq=2, to_tag=tag, body=hold, branch="z9hG4bKf4"),
                      _sip_request("ACK", cseq=2, to_tag=tag, branch="z9hG4bKf5"),
                      _sip_request("INFO", cseq=3, to_tag=tag, branch="z9hG4bKf6",
                                   body="Signal=5\r\nDuration=160\r\n",
                                   content_type="application/dtmf-relay"),
                      _sip_request("REFER", cseq=4, to_tag=tag, branch="z9hG4bKf7",
                                   extra="Refer-To: <sip:bob@example.com>\r\n"),
                      _sip_request("UPDATE", cseq=5, to_tag=tag, branch="z9hG4bKf8",
                                   extra="Session-Expires: 1800;refresher=uac\r\n"),
                      bye])
    yield SPLIT.join([invite, _sip_request("CANCEL")])
    yield SPLIT.join([_sip_request("INVITE", extra="Supported: timer, 100rel\r\n"
                                   "Session-Expires: 90\r\n", body=_PHONE_OFFER),
                      _sip_request("PRACK", cseq=2, to_tag=tag, branch="z9hG4bKf9",
                                   extra="RAck: 1 1 INVITE\r\n")])
    yield _sip_request("INVITE")  # a late offer
    yield _sip_request("OPTIONS")
    yield _sip_request("NOTIFY", to_tag="x", extra="Event: refer\r\nSubscription-State: active\r\n",
                       body="SIP/2.0 200 OK\r\n", content_type="message/sipfrag")
    yield (b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx\r\n"
           b"From: <sip:gw@127.0.0.1>;tag=g\r\nTo: <sip:a@b>;tag=t\r\nCall-ID: r\r\n"
           b"CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n")
    yield b"\r\n\r\n"


def _sip() -> Iterator[bytes]:
    for path in sorted((DATA / "rfc4475").glob("*.dat")):
        yield path.read_bytes()
    yield from _sip_dialogs()


# -- SDP -------------------------------------------------------------------------------------

def _sdp() -> Iterator[bytes]:
    yield (DATA / "chromium_offer_av.sdp").read_bytes()
    for path in sorted((DATA / "rfc4475").glob("*.dat")):
        head, sep, body = path.read_bytes().partition(b"\r\n\r\n")
        if sep and body.startswith(b"v=0"):
            yield body
    yield _PHONE_OFFER.encode()
    yield from _constants("tests.test_sdp_parser", "CHROME_OFFER", "BARESIP_OFFER",
                          "FIREFOX_OFFER")
    yield from _constants("tests.test_webrtc_offer", "CHROME_ANSWER", "FIREFOX_ANSWER",
                          "EXPECTED_OFFER")
    yield from _constants("tests.test_sip_invite", "SDP_OFFER", "SDP_ANSWER")
    yield from _constants("tests.test_calls_video", "CALLER_OFFER")
    yield from _constants("tests.test_calls_plan", "BROWSER_OFFER")
    yield (_PHONE_OFFER.replace("RTP/AVP", "RTP/SAVP")
           + "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"
           "|2^20|1:4\r\n").encode()


# -- JSON-RPC --------------------------------------------------------------------------------

def _frames(*requests: tuple[str, dict[str, object]]) -> bytes:
    lines = [json.dumps({"jsonrpc": "2.0", "id": n, "method": method, "params": params})
             for n, (method, params) in enumerate(requests, 1)]
    return "\n".join(lines).encode()


def _jsonrpc() -> Iterator[bytes]:
    offer = (DATA / "chromium_offer_av.sdp").read_text()
    account = {"sipLogin": "1001", "sipPassword": "pw", "sipDomain": "pbx.example",
               "sipPort": 5060, "sipTransport": "udp", "sipRegisterRequired": True,
               "sipSrtp": "off", "appKey": "defaultApp", "custom": {"a": 1}}
    yield _frames(("connect", {}), ("call", {"callId": "c1", "callee": "echo", "sdp": offer,
                                              "hasAudio": True, "hasVideo": True}),
                  ("hold", {"callId": "c1"}), ("unhold", {"callId": "c1"}),
                  ("sendDtmf", {"callId": "c1", "dtmf": "12#", "type": "INFO"}),
                  ("transfer", {"callId": "c1", "target": "tone"}),
                  ("answerTransfer", {"callId": "c1", "accept": False}),
                  ("hangup", {"callId": "c1"}), ("disconnect", {}))
    yield _frames(("connect", account),
                  ("call", {"callee": "1002", "visibleName": "Alice", "sdp": offer,
                            "sipHeaders": {"X-Account": "42"}}),
                  ("answer", {"callId": "c2", "sdp": offer}))
    yield _frames(("connect", {"sipDomain": "pbx.example", "sipLogin": "a\r\nVia: x"}))
    yield b'{"jsonrpc":"2.0","method":"hangup","params":{"callId":"x"}}'
    yield b'[{"jsonrpc":"2.0","id":1,"method":"connect"}]'
    yield b'{"jsonrpc":"2.0","id":1,"method":"call","params":[1,2]}'
    yield b'{"jsonrpc":"2.0","id":NaN,"method":"x"}'


# -- REST ------------------------------------------------------------------------------------

def _rest() -> Iterator[bytes]:
    def req(path: str, body: dict[str, object]) -> bytes:
        return path.encode() + b"\n" + json.dumps(body).encode()

    yield b"\x00".join([
        req("call/startup", {"callId": "r1", "callee": "echo", "playFile": "tone.wav"}),
        req("call/hold", {"callId": "r1"}), req("call/unhold", {"callId": "r1"}),
        req("call/send_dtmf", {"callId": "r1", "dtmf": "123", "type": "RFC2833"}),
        req("call/find", {"callId": "r1", "status": "ESTABLISHED"}),
        req("call/terminate", {"callId": "r1"})])
    yield b"\x00".join([
        req("call/startup", {"callee": "tone", "sessionId": "s1", "hasVideo": True}),
        req("call/find_all", {}), req("call/transfer", {"callId": "r2", "target": "echo"})])
    yield req("call/startup", {
        "callee": "1002", "sipLogin": "1001", "sipPassword": "pw", "sipDomain": "pbx.example",
        "sipOutboundProxy": "127.0.0.1", "sipPort": "5060", "sipTransport": "TCP",
        "sipRegisterRequired": "false", "sipSrtp": "optional", "visibleName": "Alice",
        "record": False})
    yield req("call/startup", {"callee": "1", "account": "trunk"})
    yield b"openapi.json\n"
    yield b"call/startup\n{\"callee\": 5"
    yield b"call/nothing\n{}"


# -- STUN ------------------------------------------------------------------------------------

def _stun() -> Iterator[bytes]:
    from aioice import stun

    for username, priority, use in (("lite:brws", 1845501695, True), ("lite:brws", 1, False),
                                    ("other:brws", 2, True)):
        message = stun.Message(message_method=stun.Method.BINDING,
                               message_class=stun.Class.REQUEST)
        message.attributes["USERNAME"] = username
        message.attributes["PRIORITY"] = priority
        message.attributes["ICE-CONTROLLING"] = 0x1234567890
        if use:
            message.attributes["USE-CANDIDATE"] = None
        message.add_message_integrity(("p" * 24).encode())
        message.add_fingerprint()
        yield bytes(message)
    indication = stun.Message(message_method=stun.Method.BINDING,
                              message_class=stun.Class.INDICATION)
    indication.add_fingerprint()
    yield bytes(indication)


# -- RTP, RTCP -------------------------------------------------------------------------------

def _rtp() -> Iterator[bytes]:
    from wcsgw.media import rtcp, rtcpfb
    from wcsgw.media.rtp import build_rtp

    yield build_rtp(payload_type=0, sequence=1, timestamp=160, ssrc=0x5EED, payload=bytes(160))
    yield build_rtp(payload_type=111, sequence=65535, timestamp=2**32 - 1, ssrc=1,
                    payload=b"\x01" * 40, marker=True)
    yield build_rtp(payload_type=96, sequence=7, timestamp=9, ssrc=2, payload=b"\x90\x80",
                    csrcs=[3, 4], extension=(0xBEDE, b"\x10\xff\x00\x00"), padding=4)
    block = rtcp.ReportBlock(ssrc=7, fraction_lost=3, cumulative_lost=9, highest_sequence=100,
                             jitter=5, lsr=1, dlsr=2)
    yield rtcp.build_sr(1, 2**40, 160, 10, 1600, [block])
    yield rtcp.build_rr(1, [block]) + rtcp.build_sdes(1, "cname@x") + rtcp.build_bye(1, "done")
    yield rtcpfb.build_pli(1, 2)
    yield rtcpfb.build_fir(1, 2, 3)
    yield rtcpfb.build_remb(1, 500_000, [2, 3])
    yield rtcpfb.build_tmmbr(1, 2, 300_000)
    yield rtcpfb.build_tmmbn(1, [(2, 300_000, 40)])


_MAKERS = {"sip": _sip, "sdp": _sdp, "jsonrpc": _jsonrpc, "rest": _rest, "stun": _stun,
           "rtp": _rtp}


def seeds(target: str) -> list[bytes]:
    """The seed inputs of ``target``, each once, in a stable order."""
    out: list[bytes] = []
    for seed in _MAKERS[target]():
        if seed not in out:
            out.append(seed)
    return out
