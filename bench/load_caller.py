"""A browserless WebRTC load caller: holds N calls through wcsgw from one process.

Per call it does what a browser does, and no more:

* JSON-RPC over one WebSocket (autobahn, asyncio): ``connect``, ``call`` with a complete
  non-trickle offer (ICE ufrag/pwd, the sha-256 fingerprint of a self-signed ECDSA
  certificate shared by all calls, PCMU — or Opus only with ``--codec opus`` —, rtcp-mux,
  BUNDLE, one host candidate on 127.0.0.1), then waits for the ``callStatus`` carrying the
  gateway's answer;
* ICE as the controlling agent toward the gateway's one (ICE-lite) candidate: STUN Binding
  requests with USE-CANDIDATE, retransmitted until answered, then a consent check every 2.5 s;
* DTLS client (aiortc's ``RTCDtlsTransport`` in the client role over a
  :class:`tests.dtlspeer.DatagramChannel`, the mirror of the gateway's server side),
  SRTP with the exported keys (pylibsrtp);
* media: one RTP packet per 20 ms per call, calls spread evenly over the 20 ms (a shared
  4 ms ticker, 5 slots), no decoding ever.  PCMU payloads carry the send time
  (``time.monotonic_ns``), the call index and the sequence number in their first 16 bytes; the
  far end (``echo``) sends the payload back untouched, so every echoed packet gives one
  round-trip sample: caller -> gateway -> echo -> gateway -> caller.  With Opus the gateway
  transcodes both ways, the payload does not survive, and the k-th packet received is paired
  with the k-th sent (exact while nothing is lost).  The Opus stream is a cycle of one second
  of pre-encoded 440 Hz frames, encoded as Chromium would for the gateway's answer: narrowband
  12 kbit/s when its fmtp says ``maxplaybackrate=8000``, and so on (:mod:`bench.browser_opus`;
  ``--opus-band fullband`` ignores the fmtp, as Firefox does).

Measurement: after every call is up, ``--settle`` seconds pass, then a window of
``--duration`` seconds; packets *sent* in the window are counted, and echoes of them are
counted (loss) and timed (latency) until ``--drain`` seconds after the window.  Stdout gets
``WINDOW_START <monotonic>`` and ``WINDOW_END <monotonic>`` lines when they happen (the
benchmark driver samples the gateway's /proc counters between them) and at the end one
``RESULT {json}`` line.

Signalling adapters: ``wcsgw`` (this gateway's WebSocket API), ``janus`` (Janus HTTP API +
SIP plugin, see :mod:`bench.janus_adapter`), ``rtpengine`` (rtpengine's ng protocol and a
minimal SIP UAC, see :mod:`bench.rtpengine_front`) and ``direct`` (no gateway: a minimal SIP UAC and
plain RTP straight to the echo — the latency baseline); the media side is the same code.

Run: ``python bench/load_caller.py --ws ws://127.0.0.1:8080/ws --calls 50`` (built-in ``echo``
test line) or with ``--sip-domain 127.0.0.1 --sip-port PORT`` to call an external echo
(``bench/echo_uas.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import secrets
import struct
import sys
import time
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from aioice import stun
from aiortc.rtcdtlstransport import (
    RTCCertificate,
    RTCDtlsFingerprint,
    RTCDtlsParameters,
    RTCDtlsTransport,
)

from bench.browser_opus import OpusSend, encode_tone, opus_send_settings
from tests.dtlspeer import DatagramChannel
from wcsgw.webrtc.stun import make_ice_credentials

HOST = "127.0.0.1"
TICK = 0.004
SLOTS = 5  # TICK * SLOTS = 20 ms
CONSENT_INTERVAL = 2.5  # seconds between consent checks once media flows
PAYLOAD_HEAD = struct.Struct("!QII")  # send time ns, call index, sequence
PCMU_SILENCE = b"\xff" * 160


def make_offer(port: int, ufrag: str, pwd: str, fingerprint: str, codec: str, ssrc: int) -> str:
    if codec == "opus":
        m = f"m=audio {port} UDP/TLS/RTP/SAVPF 111 126"
        maps = ["a=rtpmap:111 opus/48000/2", "a=fmtp:111 minptime=10;useinbandfec=1",
                "a=rtpmap:126 telephone-event/48000"]
    else:
        m = f"m=audio {port} UDP/TLS/RTP/SAVPF 0 126"
        maps = ["a=rtpmap:0 PCMU/8000", "a=rtpmap:126 telephone-event/8000"]
    lines = [
        "v=0", f"o=- {secrets.randbits(62)} 2 IN IP4 {HOST}", "s=-", "t=0 0",
        "a=group:BUNDLE 0", "a=msid-semantic: WMS bench",
        m, f"c=IN IP4 {HOST}",
        f"a=candidate:1 1 udp 2130706431 {HOST} {port} typ host", "a=end-of-candidates",
        f"a=ice-ufrag:{ufrag}", f"a=ice-pwd:{pwd}", f"a=fingerprint:sha-256 {fingerprint}",
        "a=setup:actpass", "a=mid:0", "a=sendrecv", "a=rtcp-mux", *maps, "a=ptime:20",
        f"a=ssrc:{ssrc} cname:bench",
    ]
    return "\r\n".join(lines) + "\r\n"


def parse_answer(sdp: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for line in sdp.splitlines():
        if line.startswith("a=ice-ufrag:"):
            out["ufrag"] = line.split(":", 1)[1].strip()
        elif line.startswith("a=ice-pwd:"):
            out["pwd"] = line.split(":", 1)[1].strip()
        elif line.startswith("a=fingerprint:"):
            algo, value = line.split(":", 1)[1].split()
            out["fingerprint"] = (algo.lower(), value.upper())
        elif line.startswith("a=candidate:") and "candidate" not in out:
            f = line.split()
            if f[2].lower() == "udp":
                out["candidate"] = (f[4], int(f[5]))
        elif line.startswith("c=IN IP4 "):
            out["c"] = line.split()[2]
        elif line.startswith("m=audio "):
            out["m_port"] = int(line.split()[1])
        elif line.startswith("a=setup:"):
            out["setup"] = line.split(":", 1)[1].strip().lower()
        elif line.startswith("a=rtpmap:") and "pt" not in out:
            out["pt"] = int(line.split(":", 1)[1].split()[0])
        elif line.startswith("a=fmtp:"):
            pt, _, fmtp = line[7:].partition(" ")
            out.setdefault("fmtp", {}).setdefault(pt.strip(), fmtp.strip())
    if "c" in out and "m_port" in out:
        out["rtp"] = (out["c"], out["m_port"])
    return out


def rtp_payload_offset(packet: bytes) -> int:
    off = 12 + 4 * (packet[0] & 0x0F)
    if packet[0] & 0x10:
        (words,) = struct.unpack_from("!H", packet, off + 2)
        off += 4 + 4 * words
    return off


class Stats:
    """Window counters shared by every call."""

    def __init__(self) -> None:
        self.window: tuple[int, int] | None = None  # ns, [start, end)
        self.sent = 0
        self.received = 0
        self.late_or_foreign = 0
        self.latency_ns: list[int] = []
        self.tick_lateness: list[float] = []


class MediaLeg(asyncio.DatagramProtocol):
    """One call's UDP socket: STUN client (controlling), DTLS client, SRTP, RTP."""

    def __init__(self, index: int, cert: RTCCertificate, fingerprint: str, codec: str,
                 stats: Stats) -> None:
        self.index = index
        self.codec = codec
        self.stats = stats
        self.creds = make_ice_credentials()
        self.ssrc = secrets.randbits(32)
        self.seq = secrets.randbits(16)
        self.ts = secrets.randbits(32)
        self.pt = 111 if codec == "opus" else 0
        self.cert = cert
        self.fingerprint = fingerprint
        self.transport: Any = None
        self.remote: tuple[str, int] | None = None
        self.remote_ufrag = self.remote_pwd = ""
        self.channel = DatagramChannel(self._send_dtls)
        self.dtls = RTCDtlsTransport(self.channel, [cert])  # type: ignore[arg-type]
        self.dtls._set_role("client")
        self.tx: Any = None
        self.rx: Any = None
        self.checked: asyncio.Future[None] | None = None
        self.pending_tid: bytes | None = None
        self.sent_times: list[int] = []  # opus mode: send time of the k-th packet in window
        self.opus_rx = 0
        self.port = 0
        self.media_ready = False
        self.closed = False
        self.opus_frames: list[bytes] = []  # opus mode: the cycle of frames sent
        self.opus_send = ""  # opus mode: the encoder settings' label
        self.plain = False  # --adapter direct: plain RTP straight to the echo, no gateway
        self.consent: asyncio.Future[None] | None = None

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=(HOST, 0))
        self.port = self.transport.get_extra_info("sockname")[1]

    def offer(self) -> str:
        return make_offer(self.port, self.creds.ufrag, self.creds.pwd, self.fingerprint,
                          self.codec, self.ssrc)

    # -- datagrams --------------------------------------------------------------------------

    def _send_dtls(self, data: bytes) -> None:
        if self.remote is not None and not self.closed:
            self.transport.sendto(data, self.remote)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        first = data[0]
        if 127 < first < 192:
            rx = self.rx
            if 191 < data[1] < 224:
                return  # RTCP (none expected)
            if self.plain:
                packet = data
            elif rx is None:
                return  # before keys
            else:
                try:
                    packet = rx.unprotect(data)
                except Exception:  # noqa: BLE001 (forged or replayed: drop, as the gateway does)
                    return
            now = time.monotonic_ns()
            stats = self.stats
            window = stats.window
            if self.codec == "opus":
                k = self.opus_rx
                self.opus_rx += 1
                if window is not None and k < len(self.sent_times):
                    sent_at = self.sent_times[k]
                    if window[0] <= sent_at < window[1]:
                        stats.received += 1
                        stats.latency_ns.append(now - sent_at)
                return
            off = rtp_payload_offset(packet)
            if len(packet) < off + 16:
                return
            sent_at, index, _seq = PAYLOAD_HEAD.unpack_from(packet, off)
            if index != self.index:
                stats.late_or_foreign += 1
                return
            if window is not None and window[0] <= sent_at < window[1]:
                stats.received += 1
                stats.latency_ns.append(now - sent_at)
        elif first < 4:
            try:
                msg = stun.parse_message(data)
            except ValueError:
                return
            if msg.message_class == stun.Class.REQUEST and msg.message_method == stun.Method.BINDING:
                self._answer_check(msg, addr)  # a full ICE peer (Janus) checks us too
            elif (msg.message_class == stun.Class.RESPONSE and self.checked is not None
                    and msg.transaction_id == self.pending_tid and not self.checked.done()):
                self.checked.set_result(None)
        elif 19 < first < 64:
            self.channel.feed(data)

    def error_received(self, exc: Exception) -> None:  # ICMP port unreachable after hangup
        pass

    # -- ICE + DTLS -------------------------------------------------------------------------

    def _answer_check(self, request: stun.Message, addr: Any) -> None:
        username = request.attributes.get("USERNAME", "")
        if not isinstance(username, str) or not username.startswith(self.creds.ufrag + ":"):
            return
        key = self.creds.pwd.encode()
        if not request.check_message_integrity(key):
            return
        response = stun.Message(stun.Method.BINDING, stun.Class.RESPONSE,
                                transaction_id=request.transaction_id)
        response.attributes["XOR-MAPPED-ADDRESS"] = (addr[0], addr[1])
        response.add_message_integrity(key)
        if not self.closed:
            self.transport.sendto(bytes(response), addr)

    def send_check(self) -> None:
        msg = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
        msg.attributes["USERNAME"] = f"{self.remote_ufrag}:{self.creds.ufrag}"
        msg.attributes["PRIORITY"] = 1853817087
        msg.attributes["ICE-CONTROLLING"] = self.ssrc
        msg.attributes["USE-CANDIDATE"] = None
        msg.add_message_integrity(self.remote_pwd.encode())
        self.pending_tid = msg.transaction_id
        if not self.closed:
            self.transport.sendto(bytes(msg), self.remote)

    def plain_offer(self) -> str:
        return (f"v=0\r\no=- {secrets.randbits(62)} 1 IN IP4 {HOST}\r\ns=-\r\nc=IN IP4 {HOST}\r\n"
                f"t=0 0\r\nm=audio {self.port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
                "a=sendrecv\r\n")

    async def connect(self, answer: dict[str, Any], timeout: float = 10.0) -> None:
        if self.plain:
            self.remote = answer["rtp"]
            self.media_ready = True
            return
        self.remote = answer["candidate"]
        self.remote_ufrag, self.remote_pwd = answer["ufrag"], answer["pwd"]
        if answer.get("pt") is not None:
            self.pt = answer["pt"]
        self.checked = asyncio.get_running_loop().create_future()
        deadline = time.monotonic() + timeout
        while not self.checked.done():
            if time.monotonic() > deadline:
                raise TimeoutError("no answer to STUN checks")
            self.send_check()
            try:
                await asyncio.wait_for(asyncio.shield(self.checked), 0.1)
            except TimeoutError:
                pass
        algo, value = answer["fingerprint"]
        # We offered actpass: a passive answer (wcsgw) makes us the DTLS client, an active one
        # (Janus) the server.
        we_serve = answer.get("setup") == "active"
        if we_serve:
            self.dtls._set_role("server")
        params = RTCDtlsParameters(fingerprints=[RTCDtlsFingerprint(algo, value)],
                                   role="client" if we_serve else "server")
        await asyncio.wait_for(self.dtls.start(params), timeout)
        if self.dtls.state != "connected":
            raise ConnectionError(f"DTLS {self.dtls.state}")
        self.tx, self.rx = self.dtls._tx_srtp, self.dtls._rx_srtp
        self.media_ready = True
        self.consent = asyncio.ensure_future(self._keep_consent())

    async def _keep_consent(self) -> None:
        """RFC 7675: a browser re-checks the pair every few seconds; without it the gateway
        ends the call after its 30 s consent timeout ("Failed by ICE error")."""
        while not self.closed:
            await asyncio.sleep(CONSENT_INTERVAL)
            if not self.closed:
                self.send_check()

    # -- media ------------------------------------------------------------------------------

    def send_frame(self, now_ns: int) -> None:
        if not self.media_ready or self.closed:
            return
        self.seq = (self.seq + 1) & 0xFFFF
        self.ts = (self.ts + (960 if self.codec == "opus" else 160)) & 0xFFFFFFFF
        if self.codec == "opus":
            frames = self.opus_frames
            payload = frames[len(self.sent_times) % len(frames)]
            self.sent_times.append(now_ns)
        else:
            payload = PAYLOAD_HEAD.pack(now_ns, self.index, self.seq) + PCMU_SILENCE[16:]
        header = struct.pack("!BBHII", 0x80, self.pt, self.seq, self.ts, self.ssrc)
        window = self.stats.window
        if window is not None and window[0] <= now_ns < window[1]:
            self.stats.sent += 1
        try:
            packet = header + payload
            self.transport.sendto(packet if self.plain else self.tx.protect(packet), self.remote)
        except Exception:  # noqa: BLE001, S110 (a send that fails is counted as loss)
            pass

    async def close(self) -> None:
        self.media_ready = False
        if self.consent is not None:
            self.consent.cancel()
        self.channel.close()
        try:
            await asyncio.wait_for(self.dtls.stop(), 1.0)
        except Exception:  # noqa: BLE001, S110 (best effort at teardown)
            pass
        self.closed = True
        if self.transport is not None:
            self.transport.close()


# ------------------------------------------------------------------ signalling: wcsgw


class WcsgwSignalling:
    """One WebSocket (one gateway session) per call, JSON-RPC 2.0 as in docs/websocket-api.md."""

    def __init__(self, url: str, sip_domain: str, sip_port: int, callee: str) -> None:
        self.url = url
        self.sip_domain = sip_domain
        self.sip_port = sip_port
        self.callee = callee

    async def open_call(self, call_id: str, offer: str) -> tuple[str, float, float, Any]:
        """Returns (answer sdp, t_call_sent, t_established, handle)."""
        from autobahn.asyncio.websocket import (
            WebSocketClientFactory,
            WebSocketClientProtocol,
        )

        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        opened = loop.create_future()

        class Proto(WebSocketClientProtocol):
            def onOpen(self) -> None:
                if not opened.done():
                    opened.set_result(self)

            def onMessage(self, payload: bytes, is_binary: bool) -> None:
                inbox.put_nowait(json.loads(payload))

            def onClose(self, was_clean: bool, code: Any, reason: Any) -> None:
                inbox.put_nowait({"closed": True})
                if not opened.done():
                    opened.set_exception(ConnectionError(f"WebSocket closed: {reason}"))

        factory = WebSocketClientFactory(self.url)
        factory.protocol = Proto
        host, port = self.url.split("//", 1)[1].split("/", 1)[0].split(":")
        await loop.create_connection(factory, host, int(port))
        proto = await asyncio.wait_for(opened, 10)
        ids = itertools.count(1)

        def send(method: str, params: dict[str, Any]) -> int:
            rid = next(ids)
            proto.sendMessage(json.dumps({"jsonrpc": "2.0", "id": rid, "method": method,
                                          "params": params}).encode())
            return rid

        async def response(rid: int) -> dict[str, Any]:
            while True:
                msg = await asyncio.wait_for(inbox.get(), 15)
                if msg.get("closed"):
                    raise ConnectionError("WebSocket closed")
                if msg.get("id") == rid:
                    if "error" in msg:
                        raise RuntimeError(f"JSON-RPC error {msg['error']}")
                    return msg

        if self.sip_domain:
            params = {"sipLogin": "bench", "sipDomain": self.sip_domain, "sipPort": self.sip_port,
                      "sipRegisterRequired": False}
        else:
            params = {}
        await response(send("connect", params))
        t_call = time.monotonic()
        rid = send("call", {"callId": call_id, "callee": self.callee, "sdp": offer,
                            "hasAudio": True, "hasVideo": False,
                            "sipHeaders": {"X-Bench-Id": call_id}})
        await response(rid)
        answer = None
        while True:
            msg = await asyncio.wait_for(inbox.get(), 15)
            if msg.get("closed"):
                raise ConnectionError("WebSocket closed during call set-up")
            params = msg.get("params") or {}
            if msg.get("method") != "callStatus":
                continue
            if params.get("sdp"):
                answer = params["sdp"]
            status = params.get("status")
            if status == "ESTABLISHED":
                t_est = time.monotonic()
                break
            if status in ("FAILED", "FINISH", "BUSY"):
                raise RuntimeError(f"call {status}: {params.get('info')}")
        if answer is None:
            raise RuntimeError("ESTABLISHED without an SDP answer")
        return answer, t_call, t_est, (proto, send, inbox)

    async def close_call(self, call_id: str, handle: Any) -> None:
        proto, send, inbox = handle
        try:
            send("hangup", {"callId": call_id})
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                msg = await asyncio.wait_for(inbox.get(), max(0.01, deadline - time.monotonic()))
                if msg.get("closed") or (msg.get("method") == "callStatus" and
                                         (msg.get("params") or {}).get("status") in ("FINISH", "FAILED")):
                    break
        except Exception:  # noqa: BLE001, S110 (best effort at teardown)
            pass
        proto.sendClose(1000)


# ------------------------------------------------------------------ baseline: no gateway


class DirectSignalling:
    """``--adapter direct``: a minimal SIP UAC over UDP straight to the echo (INVITE with a
    plain RTP/AVP PCMU offer, ACK, BYE), so the same caller measures the round trip *without*
    a gateway; the difference to a gateway run is the latency the gateway adds."""

    def __init__(self, host: str, port: int, callee: str) -> None:
        self.target = (host, port)
        self.uri = f"sip:{callee}@{host}:{port}"

    async def open_call(self, call_id: str, offer: str) -> tuple[str, float, float, Any]:
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[bytes] = asyncio.Queue()

        class Proto(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: Any) -> None:
                inbox.put_nowait(data)

        transport, _ = await loop.create_datagram_endpoint(Proto, local_addr=(HOST, 0))
        lport = transport.get_extra_info("sockname")[1]
        tag, cid = secrets.token_hex(4), f"{call_id}-{secrets.token_hex(6)}"
        base = {"from": f"<sip:bench@{HOST}>;tag={tag}", "call_id": cid, "lport": lport}

        def request(method: str, uri: str, cseq: int, to: str, body: str = "") -> bytes:
            lines = [f"{method} {uri} SIP/2.0",
                     f"Via: SIP/2.0/UDP {HOST}:{lport};branch=z9hG4bK{secrets.token_hex(6)};rport",
                     "Max-Forwards: 70", f"From: {base['from']}", f"To: {to}",
                     f"Call-ID: {cid}", f"CSeq: {cseq} {method}",
                     f"Contact: <sip:bench@{HOST}:{lport}>", f"X-Bench-Id: {call_id}"]
            if body:
                lines.append("Content-Type: application/sdp")
            lines.append(f"Content-Length: {len(body.encode())}")
            return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()

        t_call = time.monotonic()
        transport.sendto(request("INVITE", self.uri, 1, f"<{self.uri}>", offer), self.target)
        while True:
            data = (await asyncio.wait_for(inbox.get(), 10)).decode("utf-8", "replace")
            status = int(data.split(" ", 2)[1])
            if status >= 200:
                break
        head, _, body = data.partition("\r\n\r\n")
        headers = {}
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), value.strip())
        to = headers.get("to") or headers.get("t", "")
        if status >= 300:
            transport.sendto(request("ACK", self.uri, 1, to), self.target)
            transport.close()
            raise RuntimeError(f"INVITE answered {status}")
        contact = (headers.get("contact") or headers.get("m") or f"<{self.uri}>")
        remote_uri = contact[contact.find("<") + 1: contact.find(">")] if "<" in contact else contact
        transport.sendto(request("ACK", remote_uri, 1, to), self.target)
        t_est = time.monotonic()
        return body, t_call, t_est, (transport, request, remote_uri, to)

    async def close_call(self, call_id: str, handle: Any) -> None:
        transport, request, remote_uri, to = handle
        transport.sendto(request("BYE", remote_uri, 2, to), self.target)
        await asyncio.sleep(0.2)
        transport.close()


# ------------------------------------------------------------------ the run


def failure_reasons(failures: list[str]) -> dict[str, int]:
    """Failures counted by what they say, call ids and numbers left out (``overload.py`` tells
    the gateway's "Gateway overloaded" refusals from everything else by them)."""
    counts: dict[str, int] = {}
    for text in failures:
        reason = re.sub(r"\d+(\.\d+)?", "N", text.split(": ", 1)[-1])[:160]
        counts[reason] = counts.get(reason, 0) + 1
    return counts


def opus_summary(legs: list[MediaLeg]) -> dict[str, Any] | None:
    """Calls by the Opus settings they sent with, and the mean payload of each stream: the
    record that the caller did what the gateway's answer asked."""
    if not legs or not legs[0].opus_frames:
        return None
    calls: dict[str, int] = {}
    size: dict[str, float] = {}
    for leg in legs:
        calls[leg.opus_send] = calls.get(leg.opus_send, 0) + 1
        size[leg.opus_send] = round(sum(map(len, leg.opus_frames)) / len(leg.opus_frames), 1)
    return {"calls": calls, "payload_bytes": size}


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))
    return s[k]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    cert = RTCCertificate.generateCertificate()
    fingerprint = next(f.value for f in cert.getFingerprints() if f.algorithm == "sha-256")
    stats = Stats()
    opus_streams: dict[OpusSend, list[bytes]] = {}  # encoded once per settings, not per call

    def opus_for(answer: dict[str, Any]) -> tuple[OpusSend, list[bytes]]:
        fmtp = (answer.get("fmtp") or {}).get(str(answer.get("pt")))
        send = opus_send_settings(fmtp, honour=args.opus_band == "answer")
        if send not in opus_streams:
            opus_streams[send] = encode_tone(send)
        return send, opus_streams[send]

    if args.codec == "opus":
        opus_for({})  # the unlimited stream's encoder loads libopus and numpy before any call

    if args.adapter == "direct":
        signalling: Any = DirectSignalling(args.sip_domain or HOST, args.sip_port, args.callee)
    elif args.adapter == "rtpengine":
        from bench.rtpengine_front import RtpengineSignalling

        signalling = RtpengineSignalling(
            args.ng, DirectSignalling(args.sip_domain or HOST, args.sip_port, args.callee))
    elif args.adapter == "janus":
        from bench.janus_adapter import JanusSignalling

        signalling = JanusSignalling(args.janus_url, args.sip_domain, args.sip_port,
                                          args.callee)
    else:
        signalling = WcsgwSignalling(args.ws, args.sip_domain, args.sip_port, args.callee)

    legs: list[MediaLeg] = []
    slots: list[list[MediaLeg]] = [[] for _ in range(SLOTS)]
    handles: dict[int, Any] = {}
    setup: list[dict[str, Any]] = []
    failures: list[str] = []
    stop = asyncio.Event()
    tick_task: asyncio.Task[None] | None = None
    sem = asyncio.Semaphore(args.concurrency)
    run_id = secrets.token_hex(3)

    async def one(i: int) -> None:
        async with sem:
            leg = MediaLeg(i, cert, fingerprint, args.codec, stats)
            leg.plain = args.adapter == "direct"
            await leg.open()
            call_id = f"b{run_id}-{i}"
            try:
                answer_sdp, t_call, t_est, handle = await signalling.open_call(
                    call_id, leg.plain_offer() if leg.plain else leg.offer())
                handles[i] = (call_id, handle)
                answer = parse_answer(answer_sdp)
                if args.codec == "opus":
                    send, leg.opus_frames = opus_for(answer)
                    leg.opus_send = send.label
                await leg.connect(answer)
                t_media = time.monotonic()
            except Exception as exc:  # noqa: BLE001
                failures.append(f"{call_id}: {exc!r}")
                await leg.close()
                return
            setup.append({"id": call_id, "call": t_call, "established": t_est, "media": t_media})
            legs.append(leg)
            slots[i % SLOTS].append(leg)

    t0 = time.monotonic()
    try:
        pending = [asyncio.ensure_future(one(i)) for i in range(args.calls)]
        # media starts for each call as soon as it is up (the ticker reads the list)
        tick_task = asyncio.ensure_future(ticker_dynamic(slots, stats, stop))
        await asyncio.gather(*pending)
        ramp = time.monotonic() - t0
        await asyncio.sleep(args.settle)
        start_ns = time.monotonic_ns()
        stats.window = (start_ns, start_ns + int(args.duration * 1e9))
        stats.tick_lateness.clear()
        print(f"WINDOW_START {start_ns / 1e9:.6f}", flush=True)
        await asyncio.sleep(args.duration)
        print(f"WINDOW_END {time.monotonic():.6f}", flush=True)
        await asyncio.sleep(args.drain)
    finally:
        stop.set()
        if tick_task is not None:
            await tick_task
        await asyncio.gather(*(signalling.close_call(cid, h) for cid, h in handles.values()),
                             return_exceptions=True)
        await asyncio.gather(*(leg.close() for leg in legs), return_exceptions=True)
        if hasattr(signalling, "aclose"):
            await signalling.aclose()

    lat_ms = [v / 1e6 for v in stats.latency_ns]
    est = [1000 * (s["established"] - s["call"]) for s in setup]
    own = os.times()
    return {
        "adapter": args.adapter, "codec": args.codec, "calls_asked": args.calls,
        "calls_up": len(legs), "failures": failures[:5], "failed": len(failures),
        "failure_reasons": failure_reasons(failures),
        "ramp_s": round(ramp, 3), "window_s": args.duration,
        "sent": stats.sent, "received": stats.received,
        "loss_pct": round(100 * (1 - stats.received / stats.sent), 3) if stats.sent else None,
        "pps_each_way": round(stats.sent / args.duration, 1),
        "rtt_p50_ms": percentile(lat_ms, 50), "rtt_p99_ms": percentile(lat_ms, 99),
        "rtt_max_ms": max(lat_ms) if lat_ms else None,
        "setup_call_to_established_p50_ms": percentile(est, 50),
        "setup_call_to_established_p99_ms": percentile(est, 99),
        "tick_late_p99_ms": 1000 * (percentile(stats.tick_lateness, 99) or 0.0),
        "tick_late_count": len(stats.tick_lateness),
        "caller_cpu_s": round(own.user + own.system, 3),
        "opus_send": opus_summary(legs),
        "setup": setup if args.dump_setup else None,
    }


async def ticker_dynamic(slots: list[list[MediaLeg]], stats: Stats, stop: asyncio.Event) -> None:
    """One packet per call per 20 ms, calls spread over SLOTS ticks of TICK (slot = index %
    SLOTS); the slot lists grow while calls come up."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    n = 0
    while not stop.is_set():
        target = start + n * TICK
        delay = target - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        elif stats.window is not None:
            stats.tick_lateness.append(-delay)
            if -delay > 1.0:  # hopelessly behind: restart the schedule rather than burst
                start = loop.time() - n * TICK
        now_ns = time.monotonic_ns()
        for leg in slots[n % SLOTS]:
            leg.send_frame(now_ns)
        n += 1


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--adapter", choices=("wcsgw", "janus", "direct", "rtpengine"), default="wcsgw")
    p.add_argument("--ng", default="127.0.0.1:2223", help="rtpengine's ng control (UDP host:port)")
    p.add_argument("--ws", default="ws://127.0.0.1:8080/ws")
    p.add_argument("--janus-url", default="http://127.0.0.1:8088/janus")
    p.add_argument("--sip-domain", default="", help="empty: the gateway's built-in test lines")
    p.add_argument("--sip-port", type=int, default=5060)
    p.add_argument("--callee", default="echo")
    p.add_argument("--codec", choices=("pcmu", "opus"), default="pcmu")
    p.add_argument("--opus-band", choices=("answer", "fullband"), default="answer",
                   help="Opus sent: as Chromium encodes for the answer's fmtp (maxplaybackrate), "
                        "or fullband 32 kbit/s whatever it says (as Firefox)")
    p.add_argument("--calls", type=int, default=10)
    p.add_argument("--concurrency", type=int, default=10, help="call set-ups in flight")
    p.add_argument("--settle", type=float, default=2.0)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--drain", type=float, default=0.5)
    p.add_argument("--dump-setup", action="store_true", help="per-call set-up times in RESULT")
    return p


def main() -> None:
    args = parser().parse_args()
    result = asyncio.run(run(args))
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
