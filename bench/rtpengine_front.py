"""The bench's own small SIP/WebRTC front for rtpengine: the load caller's signalling adapter.

rtpengine is only a media plane; a SIP proxy (Kamailio's ``rtpengine`` module, say) normally
asks it to rewrite each SDP.  The bench has no proxy, so this adapter, inside the load caller,
plays that part for one call:

1. ng ``offer`` with the caller's WebRTC offer (ICE, DTLS-SRTP, rtcp-mux, AVPF) and the flags
   that turn it into plain RTP/AVP toward the far end (:func:`offer_command`);
2. the INVITE to the echo with rtpengine's plain offer, ACK on 200 — the baseline's minimal
   UAC (``load_caller.DirectSignalling``, handed in, so this module does not import the caller);
3. ng ``answer`` with the echo's 200 SDP, flags that make rtpengine answer the caller with ICE,
   DTLS (active, like Janus: the caller is the DTLS server) and rtcp-mux
   (:func:`answer_command`); rtpengine's answer goes back to the caller;
4. at hang-up, BYE to the echo and ng ``delete``.

Only the signalling runs here (in the caller's process), so the CPU the bench charges to
rtpengine is its media plane alone.  Set-up times: ``call`` = before the ng offer,
``established`` = after the ng answer, so the two ng round trips count as rtpengine's share of
the set-up, as the WebSocket/HTTP steps count as wcsgw's and Janus's.

The ng protocol: ``<cookie> <bencoded dict>`` over UDP, the reply echoes the cookie.  The
encoding, the commands and the checks on rtpengine's SDP are pure functions (unit-tested in
``tests/test_bench_rtpengine.py``); :class:`NgClient` and :class:`RtpengineSignalling` are
the asyncio shell.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

__all__ = ["NgClient", "NgError", "RtpengineSignalling", "answer_command", "bdecode",
           "bencode", "check_plain_offer", "check_webrtc_answer", "delete_command",
           "offer_command", "parse_reply", "reply_sdp", "request"]


class NgError(RuntimeError):
    """rtpengine refused a command, or its SDP is not what the bench asked for."""


# ------------------------------------------------------------------ bencode


def bencode(value: Any) -> bytes:
    """bencode of str/bytes/int/list/dict (dict keys sorted, as the format requires)."""
    if isinstance(value, bool):
        raise TypeError("bencode has no booleans")
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return b"%d:%s" % (len(value), value)
    if isinstance(value, list | tuple):
        return b"l" + b"".join(bencode(v) for v in value) + b"e"
    if isinstance(value, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, v) for k, v in value.items())
        return b"d" + b"".join(bencode(k) + bencode(v) for k, v in items) + b"e"
    raise TypeError(f"cannot bencode {type(value).__name__}")


def bdecode(data: bytes) -> Any:
    """The inverse of :func:`bencode`; strings come back as ``str`` (UTF-8, replaced)."""
    value, end = _decode(data, 0)
    if end != len(data):
        raise ValueError(f"bencode: {len(data) - end} trailing bytes")
    return value


def _decode(data: bytes, i: int) -> tuple[Any, int]:
    if i >= len(data):
        raise ValueError("bencode: truncated")
    kind = data[i:i + 1]
    if kind == b"i":
        end = data.index(b"e", i)
        return int(data[i + 1:end]), end + 1
    if kind in (b"l", b"d"):
        items: list[Any] = []
        i += 1
        while data[i:i + 1] != b"e":
            if i >= len(data):
                raise ValueError("bencode: truncated")
            item, i = _decode(data, i)
            items.append(item)
        if kind == b"l":
            return items, i + 1
        return dict(zip(items[::2], items[1::2])), i + 1
    if kind.isdigit():
        colon = data.index(b":", i)
        size = int(data[i:colon])
        start = colon + 1
        if start + size > len(data):
            raise ValueError("bencode: truncated string")
        return data[start:start + size].decode("utf-8", "replace"), start + size
    raise ValueError(f"bencode: unexpected {kind!r} at {i}")


# ------------------------------------------------------------------ ng commands


def request(cookie: str, command: dict[str, Any]) -> bytes:
    return cookie.encode() + b" " + bencode(command)


def parse_reply(data: bytes) -> tuple[str, dict[str, Any]]:
    """(cookie, reply dict) of one ng datagram."""
    cookie, sep, body = data.partition(b" ")
    if not sep:
        raise ValueError("ng reply without a cookie")
    reply = bdecode(body)
    if not isinstance(reply, dict):
        raise ValueError("ng reply is not a dictionary")
    return cookie.decode("ascii", "replace"), reply


def offer_command(call_id: str, from_tag: str, sdp: str) -> dict[str, Any]:
    """The caller's WebRTC offer -> a plain RTP/AVP offer toward the far end: no ICE, no
    DTLS/SRTP, RTP and RTCP on separate ports (rtcp-mux demuxed), rtpengine's own address in
    the SDP."""
    return {"command": "offer", "call-id": call_id, "from-tag": from_tag, "sdp": sdp,
            "transport-protocol": "RTP/AVP", "ICE": "remove", "DTLS": "off",
            "rtcp-mux": ["demux"], "replace": ["origin", "session-connection"]}


def answer_command(call_id: str, from_tag: str, to_tag: str, sdp: str) -> dict[str, Any]:
    """The far end's plain answer -> the WebRTC answer for the caller: ICE candidates
    (rtpengine's own), DTLS active (the caller offered actpass and becomes the server, as
    toward Janus: rtpengine completes ICE with the caller while the INVITE is out and starts
    its DTLS handshake as the client at once, so a passive answer would cross a ClientHello
    already sent), rtcp-mux kept, the caller's own profile (UDP/TLS/RTP/SAVPF) restored by
    rtpengine from the offer."""
    return {"command": "answer", "call-id": call_id, "from-tag": from_tag, "to-tag": to_tag,
            "sdp": sdp, "ICE": "force", "DTLS": "active", "rtcp-mux": ["require"],
            "replace": ["origin", "session-connection"]}


def delete_command(call_id: str, from_tag: str) -> dict[str, Any]:
    return {"command": "delete", "call-id": call_id, "from-tag": from_tag}


def reply_sdp(reply: dict[str, Any], what: str) -> str:
    """The SDP of an ``offer``/``answer`` reply; an error reply raises :class:`NgError` with
    rtpengine's reason."""
    if reply.get("result") != "ok":
        raise NgError(f"rtpengine {what}: {reply.get('result')}: "
                      f"{reply.get('error-reason') or reply.get('warning') or '?'}")
    sdp = reply.get("sdp")
    if not isinstance(sdp, str) or not sdp.startswith("v=0"):
        raise NgError(f"rtpengine {what}: reply without an SDP")
    return sdp


def _media_lines(sdp: str) -> list[str]:
    return [line for line in sdp.splitlines() if line.startswith("m=")]


def check_plain_offer(sdp: str) -> str:
    """rtpengine's offer toward the echo must be what a plain SIP phone expects: one RTP/AVP
    audio stream, no ICE, no DTLS fingerprint, no rtcp-mux.  Returns the SDP."""
    media = _media_lines(sdp)
    if len(media) != 1 or media[0].split()[2] != "RTP/AVP":
        raise NgError(f"rtpengine offer toward the far end is not plain RTP/AVP: {media}")
    for marker in ("a=ice-ufrag", "a=candidate", "a=fingerprint", "a=rtcp-mux"):
        if marker in sdp:
            raise NgError(f"rtpengine offer toward the far end still carries {marker}")
    return sdp


def check_webrtc_answer(sdp: str) -> str:
    """rtpengine's answer to the caller must be WebRTC: SAVPF over DTLS, ICE credentials and a
    candidate, a fingerprint, rtcp-mux.  Returns the SDP."""
    media = _media_lines(sdp)
    if len(media) != 1 or media[0].split()[2] != "UDP/TLS/RTP/SAVPF":
        raise NgError(f"rtpengine answer to the caller is not UDP/TLS/RTP/SAVPF: {media}")
    for marker in ("a=ice-ufrag", "a=ice-pwd", "a=candidate", "a=fingerprint", "a=rtcp-mux"):
        if marker not in sdp:
            raise NgError(f"rtpengine answer to the caller lacks {marker}")
    return sdp


# ------------------------------------------------------------------ asyncio shell


class NgClient(asyncio.DatagramProtocol):
    """ng over UDP: one socket, replies matched by cookie, a request re-sent every 0.5 s until
    answered (UDP may drop it; rtpengine answers a repeated cookie from its cache)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.transport: Any = None
        self.waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(lambda: self,
                                                                local_addr=("127.0.0.1", 0))

    def datagram_received(self, data: bytes, addr: Any) -> None:
        try:
            cookie, reply = parse_reply(data)
        except ValueError:
            return
        future = self.waiting.pop(cookie, None)
        if future is not None and not future.done():
            future.set_result(reply)

    async def command(self, command: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
        cookie = secrets.token_hex(8)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiting[cookie] = future
        data = request(cookie, command)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            while True:
                self.transport.sendto(data, self.target)
                try:
                    return await asyncio.wait_for(asyncio.shield(future), 0.5)
                except TimeoutError:
                    if loop.time() > deadline:
                        raise TimeoutError(f"rtpengine did not answer {command['command']}") from None
        finally:
            self.waiting.pop(cookie, None)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class RtpengineSignalling:
    """``load_caller.py --adapter rtpengine``: the caller's ``open_call``/``close_call``
    through rtpengine (ng) and a minimal SIP UAC (``uac``: a ``DirectSignalling``)."""

    def __init__(self, ng_address: str, uac: Any) -> None:
        host, _, port = ng_address.rpartition(":")
        self.ng = NgClient((host or "127.0.0.1", int(port)))
        self.uac = uac
        self.opened: asyncio.Task[None] | None = None

    async def open_call(self, call_id: str, offer: str) -> tuple[str, float, float, Any]:
        if self.opened is None:  # the first of the concurrent set-ups opens the socket
            self.opened = asyncio.ensure_future(self.ng.open())
        await asyncio.shield(self.opened)
        from_tag, to_tag = secrets.token_hex(4), secrets.token_hex(4)
        t_call = time.monotonic()  # the clock of load_caller and echo_uas
        plain = check_plain_offer(reply_sdp(
            await self.ng.command(offer_command(call_id, from_tag, offer)), "offer"))
        far_answer, _, _, sip = await self.uac.open_call(call_id, plain)
        answer = check_webrtc_answer(reply_sdp(
            await self.ng.command(answer_command(call_id, from_tag, to_tag, far_answer)),
            "answer"))
        t_est = time.monotonic()
        return answer, t_call, t_est, (sip, from_tag)

    async def close_call(self, call_id: str, handle: Any) -> None:
        sip, from_tag = handle
        try:
            await self.uac.close_call(call_id, sip)
        finally:
            await self.ng.command(delete_command(call_id, from_tag), timeout=5.0)

    async def aclose(self) -> None:
        self.ng.close()
