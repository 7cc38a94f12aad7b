"""The fuzz targets: one function per network-facing entry point, bytes in, and a raised
exception when — and only when — the gateway broke its contract with that input.

Why these functions and not the parsers alone: a parser that accepts a message is only half
of the story; what faces the network is the entry point that takes the parsed message on
(the SIP endpoint's front door, dialogs and timers; the JSON-RPC methods on a real
:class:`~wcsgw.calls.gateway.CallGateway`; the REST resource with its routing and field
checks).  A target therefore runs what the gateway runs, with the SIP side and the sockets
faked (``tests/call_fakes.py``), and checks what the documents promise:

* ``sip``: bytes through :meth:`SipEndpoint.receive_bytes` (datagrams) and through the
  TCP framer: never an exception out; a message that does not parse is counted malformed
  (answered 400 or dropped, and logged); everything the endpoint sends parses again.
* ``sdp``: the SDP parser and serializer, and the call layer's checks of a browser's offer
  and answer and of a SIP side's offer and answer: a refusal is an ``SdpError`` or a
  ``CallError`` naming ``sdp``, nothing else.
* ``jsonrpc``: frames (one per line) through ``parse_frame`` and ``SessionMethods.handle``
  on one session: every request answered with a JSON-RPC response, never -32603 (an
  exception inside the gateway), a notification never answered.
* ``rest``: the first line is the path under ``/rest-api/``, the rest the body of a POST,
  through the whole twisted.web resource: never a 500; a 4xx has an ``error``, and a 400
  about a field names it.
* ``stun``: datagrams through the ICE-lite responder: never an exception out.
* ``rtp``: packets through the RTP and RTCP parsers and the RTCP feedback readers: an
  ``RtpError``/``RtcpError`` (ValueError) or a parse, nothing else.

Each target builds what it needs per input (a fresh endpoint, gateway, clock), so one input
cannot leave state behind for the next and a kept crashing input replays alone
(``tests/test_fuzz_replay.py``).  Inputs may hold several messages: ``SPLIT`` (SIP) or a
newline (JSON-RPC) between them, so the fuzzer reaches dialogs and calls, not only first
messages.
"""

from __future__ import annotations

import atexit
import binascii
import functools
import hashlib
import hmac
import json
import os
import random
import shutil
import struct
import tempfile
import wave
from io import BytesIO
from pathlib import Path
from typing import Any, Callable

from twisted.internet import task
from twisted.web.server import NOT_DONE_YET
from twisted.web.test.requesthelper import DummyRequest

from tests.call_fakes import FakeInvite, FakeLeg, FakePortAllocator, FakeRtpSocket
from wcsgw.api import jsonrpc
from wcsgw.api.methods import SessionMethods
from wcsgw.api.rest import RestResource
from wcsgw.api.restcalls import RestApi
from wcsgw.calls.browserleg import check_browser_offer
from wcsgw.calls.environment import CallEnvironment
from wcsgw.calls.errors import CallError
from wcsgw.calls.filecall import FileCall
from wcsgw.calls.gateway import CallGateway
from wcsgw.calls.handed import HandedCall
from wcsgw.calls.outbound import OutboundCall
from wcsgw.calls.plan import plan_codecs
from wcsgw.calls.policy import Policy
from wcsgw.calls.testcall import first_g711
from wcsgw.media.rtcp import Feedback, RtcpError, parse_rtcp
from wcsgw.media.rtcpfb import fir_entries, parse_remb, parse_tmmb, wants_keyframe
from wcsgw.media.rtp import RtpError, is_rtcp, parse_rtp
from wcsgw.sdp.codecs import PCMU, TELEPHONE_EVENT_8000
from wcsgw.sdp.crypto import CryptoError, parse_crypto
from wcsgw.sdp.errors import SdpError
from wcsgw.sdp.negotiate import audio_answer, select_codecs
from wcsgw.sdp.parser import parse_sdp, serialize_sdp
from wcsgw.sip.account import SipAccount
from wcsgw.sip.endpoint import EndpointConfig, SipEndpoint
from wcsgw.sip.errors import SipParseError
from wcsgw.sip.framing import FramingError, StreamFramer
from wcsgw.sip.invite import Answered
from wcsgw.sip.message import Request
from wcsgw.sip.parser import parse_message
from wcsgw.sip.target import Target
from wcsgw.sip.transaction import ServerTransaction
from wcsgw.sip.uas import IncomingInvite
from wcsgw.webrtc.offer import offer_for_browser, parse_browser_answer, parse_browser_video
from wcsgw.webrtc.sdp import answer_for_browser
from wcsgw.webrtc.stun import IceCredentials, IceLiteResponder

__all__ = ["OUR_TAG", "SPLIT", "TARGETS", "Broken", "FuzzTarget"]


class Broken(AssertionError):
    """The gateway broke its contract with this input (what a replay test asserts never
    happens); any other exception out of a target is a crash as well."""


def expect(condition: bool, why: str) -> None:
    if not condition:
        raise Broken(why)


# -- SIP -------------------------------------------------------------------------------------

#: between the messages of one SIP input (never inside a message: SIP has no NUL bytes)
SPLIT = b"\x00NEXT\x00"
#: in a later message of an input, stands for the To tag of the dialog its INVITE made
OUR_TAG = b"@@TAG@@"
PEER = Target("UDP", "192.0.2.7", 5070)
SIP_CONFIG = EndpointConfig(host="127.0.0.1", port=5060, user_agent="wcsgw-fuzz")


class _Answerer:
    """What the call layer does with a new INVITE, in small: a session made from it (or 400),
    ringing, its offer answered with G.711 (or 488/400).  Later messages of the same input
    then reach the dialog (ACK, BYE, re-INVITE, INFO, REFER, CANCEL)."""

    def __init__(self, endpoint: SipEndpoint) -> None:
        self.endpoint = endpoint
        self.sessions: list[IncomingInvite] = []

    def handle_request(self, request: Request, txn: ServerTransaction | None, source: Target,
                       now: float) -> bool:
        if request.method != "INVITE" or txn is None:
            return False
        from wcsgw.sip.responses import make_response

        try:
            session = IncomingInvite(self.endpoint, request, txn, listener=lambda e: None)
        except ValueError as exc:
            self.endpoint.respond(make_response(request, 400, str(exc)[:100]), now)
            return True
        self.sessions.append(session)
        session.ring(now)
        if session.offer_sdp is None:
            session.reject(488, None, now)
            return True
        try:
            offer = parse_sdp(session.offer_sdp)
        except SdpError as exc:
            session.reject(400, f"Malformed SDP: {exc}"[:100], now)
            return True
        codec = first_g711(offer)
        if codec is None:
            session.reject(488, None, now)
            return True
        answer = audio_answer(offer, "127.0.0.1", 40000, [codec, TELEPHONE_EVENT_8000],
                              session_id=1)
        session.answer(serialize_sdp(answer).encode(), now)
        return True


def _sent_parses(endpoint: SipEndpoint, strict: bool = True) -> None:
    """What the endpoint sends must parse — except its answer to a malformed request
    (``strict`` False), which copies the sender's own Via/From/To/Call-ID/CSeq (RFC 3261
    §8.2.6.2), broken or missing (RFC 4475 insuf wants that 400): there the status line must
    still be one line, so nothing of the peer's can split it."""
    for data, _target in endpoint.take_outgoing():
        first = data.split(b"\r\n", 1)[0]
        expect(b"\n" not in first and b"\r" not in first and b"\x00" not in first,
               f"a sent start line carries a line break: {first[:200]!r}")
        if not strict and data.startswith(b"SIP/2.0 "):
            continue
        try:
            parse_message(data)
        except SipParseError as exc:
            raise Broken(f"the endpoint sent a message that does not parse ({exc}): "
                         f"{data[:300]!r}") from None


def _fresh_endpoint() -> SipEndpoint:
    endpoint = SipEndpoint(SIP_CONFIG, rng=random.Random(0))
    endpoint.handlers.append(_Answerer(endpoint))
    return endpoint


def sip(data: bytes) -> None:
    """Datagrams (``SPLIT`` between them) into one endpoint, then its timers; the same
    bytes as a TCP stream through the framer into another."""
    endpoint = _fresh_endpoint()
    answerer = endpoint.handlers[-1]
    assert isinstance(answerer, _Answerer)
    now = 1000.0
    for part in data.split(SPLIT)[:8]:
        if answerer.sessions:  # our To tag: a later message may be in the dialog
            part = part.replace(OUR_TAG, answerer.sessions[-1].local_tag.encode())
        before = endpoint.stats.malformed
        endpoint.receive_bytes(part, PEER, now)
        if part.strip(b"\r\n"):
            try:
                parse_message(part)
            except SipParseError:
                expect(endpoint.stats.malformed == before + 1,
                       "a message that does not parse was not counted malformed")
        _sent_parses(endpoint, strict=endpoint.stats.malformed == before)
        now += 0.05
    for later in (0.5, 4.0, 32.0, 64.0, 200.0):
        endpoint.handle_timer(now + later)
        _sent_parses(endpoint)
    stream = _fresh_endpoint()
    taker = stream.handlers[-1]
    assert isinstance(taker, _Answerer)
    framer = StreamFramer(max_message_size=8192, max_header_size=4096)
    tcp = Target("TCP", "192.0.2.7", 5070)
    whole = data.replace(SPLIT, b"")
    try:
        for chunk in (whole[: len(whole) // 2], whole[len(whole) // 2:]):
            for message in framer.feed(chunk):
                expect(len(message) <= 8192, "the framer passed a message over its limit")
                if taker.sessions:
                    message = message.replace(OUR_TAG, taker.sessions[-1].local_tag.encode())
                before = stream.stats.malformed
                stream.receive_bytes(message, tcp, now)
                _sent_parses(stream, strict=stream.stats.malformed == before)
    except FramingError:
        pass  # the connection is closed: what the transport does


# -- SDP -------------------------------------------------------------------------------------

class _Leg:
    """What the answer and offer builders read of a WebRtcLeg."""

    host = "198.51.100.1"
    port = 40000
    ice_ufrag = "ufrg"
    ice_pwd = "p" * 24
    fingerprint = ("sha-256", "AB:" * 31 + "CD")


def _sdp_refused(exc: Exception) -> bool:
    """A refusal the call layer turns into an answer (400/488, a CallError naming sdp)."""
    if isinstance(exc, CallError):
        return exc.field == "sdp"
    return isinstance(exc, (SdpError, CryptoError))


def sdp(data: bytes) -> None:
    """The SDP as what a browser offers and answers and what a SIP side offers and answers."""
    try:
        parsed = parse_sdp(data)
    except SdpError:
        return
    text = serialize_sdp(parsed)
    try:
        again = parse_sdp(text)
    except SdpError as exc:
        raise Broken(f"our own serialization of a parsed SDP does not parse: {exc}") from None
    expect(serialize_sdp(again) == text, "serialize(parse(serialize(x))) differs")
    for m in parsed.media:
        for value in m.get_all("crypto"):
            try:
                parse_crypto(value)
            except CryptoError:
                pass
    _browser_offer(data.decode("utf-8", "replace"))
    _browser_answer(parsed)
    _sip_offer(parsed)


def _browser_offer(text: str) -> None:
    try:
        offer = check_browser_offer(text)
        audio = offer.first_audio()
        assert audio is not None
        plan = plan_codecs(audio.codecs())
        codecs = [c for c in (plan.browser_codec, plan.browser_dtmf) if c is not None]
        codecs = codecs or audio.codecs()[:1]
        answer = answer_for_browser(offer, _Leg(), codecs, 0x1234ABCD, "cname")
        parse_sdp(serialize_sdp(answer))
    except Exception as exc:  # noqa: BLE001 - sorted by _sdp_refused
        if not _sdp_refused(exc):
            raise


def _browser_answer(answer: Any) -> None:
    offer = offer_for_browser(_Leg(), [PCMU, TELEPHONE_EVENT_8000], 0x1234ABCD, "cname")
    try:
        parse_browser_answer(offer, answer)
        parse_browser_video(offer, answer)
    except (SdpError, ValueError):
        pass  # AnsweringBrowser.take_answer: a CallError naming sdp


def _sip_offer(offer: Any) -> None:
    for m in offer.media:
        select_codecs(m.codecs(), [PCMU, TELEPHONE_EVENT_8000])
    if first_g711(offer) is not None:
        try:
            audio_answer(offer, "127.0.0.1", 40000, [PCMU, TELEPHONE_EVENT_8000], session_id=1)
        except SdpError:
            pass


# -- the call layer's world: a real CallGateway, SIP and sockets faked -----------------------

class _FakeSip:
    """The SIP service as the gateway and the calls use it: registrations recorded, no
    endpoint (the calls' INVITEs are :class:`FakeInvite`\\s)."""

    endpoint = None
    accounts: list[Any] = []

    def register(self, account: Any, listener: Any = None, contact_user: Any = None) -> Any:
        return (account, listener)

    def unregister(self, handle: Any) -> None:
        pass


class _Invite(FakeInvite):
    """The fake SIP dialog, with the transfers a browser may start on it."""

    def refer(self, target_uri: str, now: float, replaces: str | None = None) -> None:
        self.referred = (target_uri, replaces)


class _Listener:
    def session_status(self, *args: Any) -> None:
        pass

    def call_status(self, *args: Any) -> None:
        pass

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


_MEDIA = tempfile.mkdtemp(prefix="wcsgw-fuzz-media-")  # playFile's folder: one short WAV
atexit.register(shutil.rmtree, _MEDIA, True)
with wave.open(os.path.join(_MEDIA, "tone.wav"), "wb") as _w:
    _w.setnchannels(1)
    _w.setsampwidth(2)
    _w.setframerate(8000)
    _w.writeframes(bytes(1600))


_PHONE_ANSWER = (b"v=0\r\no=- 5 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                 b"m=audio 30000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
                 b"a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
                 b"m=video 30002 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n"
                 b"a=rtcp-fb:96 nack pli\r\na=sendrecv\r\n")


class World:
    """One gateway as the service builds it, on a task.Clock, with one session ``s1``."""

    def __init__(self, connected: bool = True) -> None:
        self.clock = task.Clock()
        self.clock.advance(1_700_000_000)
        allocator = FakePortAllocator("127.0.0.1", 20000, 20200)
        sip_ = _FakeSip()
        policy = Policy(["pbx.example", "127.0.0.1"], "sip:{user}@127.0.0.1:5999")
        env = CallEnvironment(reactor=self.clock, sip=sip_, allocator=allocator,
                              media_host="127.0.0.1", browser_address="127.0.0.1",
                              sip_address="127.0.0.1", make_invite=_Invite,
                              make_browser_leg=FakeLeg, make_rtp_socket=FakeRtpSocket)
        env.policy = policy
        env.testlines_account = lambda: SipAccount(login="wcsgw", domain="127.0.0.1", port=5999)
        self.gateway = CallGateway(sip_, policy, functools.partial(OutboundCall, env=env),
                                   clock=self.clock.seconds)
        self.gateway.file_call_factory = functools.partial(FileCall, env=env)
        self.gateway.handed_call_factory = functools.partial(HandedCall, env=env)
        self.gateway.open_session("s1", _Listener())  # type: ignore[arg-type]
        if connected:  # on the test lines: REST may hand it calls
            self.gateway.connect("s1", None, False)

    def answer_calls(self) -> None:
        """The SIP side answers every call still waiting (PCMU, and VP8 for video), so
        later frames reach established calls: hold, DTMF, transfer."""
        for call in list(self.gateway.calls.values()):
            invite = getattr(call, "invite", None)
            if isinstance(invite, FakeInvite) and not getattr(invite, "fuzz_answered", False):
                invite.fuzz_answered = True  # type: ignore[attr-defined]
                call.sip.heard(Answered(_PHONE_ANSWER))

    def end(self) -> None:
        self.gateway.close_session("s1")
        self.gateway.hangup_all()
        self.clock.advance(120)
        self.clock.advance(120)


# -- JSON-RPC --------------------------------------------------------------------------------

def jsonrpc_session(data: bytes) -> None:
    """Frames, one per line, from one browser session."""
    world = World(connected=False)
    methods = SessionMethods(world.gateway, "s1")
    for frame in data.split(b"\n")[:12]:
        parsed = jsonrpc.parse_frame(frame)
        if isinstance(parsed, jsonrpc.BadFrame):
            reply = parsed.response()
            expect(parsed.code in (jsonrpc.PARSE_ERROR, jsonrpc.INVALID_REQUEST,
                                   jsonrpc.INVALID_PARAMS), f"a bad frame answered {parsed.code}")
            notification = parsed.notification
        else:
            reply = methods.handle(parsed)
            notification = parsed.notification
        if notification:
            expect(reply is None, "a client notification was answered")
        else:
            expect(reply is not None, "a request was not answered")
            assert reply is not None
            message = json.loads(reply)
            expect(message.get("jsonrpc") == "2.0", "a response without jsonrpc 2.0")
            expect(("result" in message) != ("error" in message), "neither result nor error")
            error = message.get("error")
            if error is not None:
                expect(error.get("code") != jsonrpc.INTERNAL_ERROR,
                       f"-32603: an exception inside the gateway ({error})")
                expect(isinstance(error.get("message"), str) and bool(error["message"]),
                       "an error without a message")
        world.answer_calls()
        world.clock.advance(0.5)
    world.end()


# -- REST ------------------------------------------------------------------------------------

def rest(data: bytes) -> None:
    """Requests (a NUL between them), each ``path\\nbody``: a POST to ``/rest-api/<path>``
    with a JSON content type, on one gateway."""
    world = World()
    resource = _rest_resource()
    resource.api = RestApi(world.gateway, media_folder=Path(_MEDIA))
    for one in data.split(b"\x00")[:6]:
        _rest_request(resource, one)
        world.answer_calls()
        world.clock.advance(0.5)
    world.end()


@functools.lru_cache(maxsize=1)
def _rest_resource() -> RestResource:
    """One resource, its api replaced per input: building it renders the OpenAPI document,
    nine tenths of an input's time otherwise."""
    return RestResource(RestApi(None), tokens=[])


def _rest_request(resource: RestResource, data: bytes) -> None:
    head, _, body = data.partition(b"\n")
    request = DummyRequest([p for p in head.split(b"/")])
    request.method = b"POST"
    request.requestHeaders.setRawHeaders(b"content-type", [b"application/json"])
    request.content = BytesIO(body)
    out = resource.render(request)
    expect(out is not NOT_DONE_YET or request.finished == 1,
           "a REST reply waits on nothing that will fire")
    status = request.responseCode or 200
    expect(status < 500 or status in (501, 503), f"REST answered {status}")
    written = out if isinstance(out, bytes) else b"".join(request.written)
    if status >= 400:
        reply = json.loads(written)
        expect(isinstance(reply.get("error"), str) and bool(reply["error"]),
               "an error reply without an error")
        if "field" in reply:
            expect(str(reply["field"]) in reply["error"], "a field error that does not name it")


# -- STUN, RTP, RTCP -------------------------------------------------------------------------

_ICE = IceCredentials("lite", "p" * 24)


def _signed(data: bytes) -> bytes:
    """``data`` with its MESSAGE-INTEGRITY and FINGERPRINT made right again (and the
    header's length with them), so that mutations reach what lies behind the HMAC check —
    the checks of a browser that knows the password."""
    out = bytearray(data)
    offset = 20
    while offset + 4 <= len(out):
        kind, length = struct.unpack_from("!HH", out, offset)
        if kind == 0x0008 and length == 20 and offset + 24 <= len(out):
            struct.pack_into("!H", out, 2, offset + 24 - 20)
            digest = hmac.new(_ICE.pwd.encode(), bytes(out[:offset]), hashlib.sha1).digest()
            out[offset + 4:offset + 24] = digest
        elif kind == 0x8028 and length == 4 and offset + 8 <= len(out):
            struct.pack_into("!H", out, 2, offset + 8 - 20)
            crc = binascii.crc32(bytes(out[:offset])) ^ 0x5354554E
            struct.pack_into("!I", out, offset + 4, crc)
            return bytes(out[:offset + 8])
        offset += 4 + length + (-length % 4)
    return bytes(out)


def stun(data: bytes) -> None:
    """A check as it comes, and the same made right (HMAC, CRC) for our password."""
    responder = IceLiteResponder(_ICE, remote_ufrag="brws")
    responder.start(0.0)
    responder.receive(data, ("198.51.100.7", 50000), 1.0)
    responder.receive(_signed(data), ("198.51.100.7", 50000), 2.0)
    responder.receive(_signed(data), ("198.51.100.8", 50001), 3.0)
    responder.consent_deadline(30.0)


def rtp(data: bytes) -> None:
    if is_rtcp(data):
        try:
            packets = parse_rtcp(data)
        except RtcpError:
            return
        wants_keyframe(packets)
        for packet in packets:
            if isinstance(packet, Feedback):
                fir_entries(packet)
                parse_remb(packet)
                parse_tmmb(packet)
        return
    try:
        header = parse_rtp(data)
    except RtpError:
        return
    header.payload(data)


class FuzzTarget:
    """A fuzz target: its function and where its seeds come from (``bench/fuzz/seeds.py``)."""

    def __init__(self, name: str, run: Callable[[bytes], None], max_len: int) -> None:
        self.name = name
        self.run = run
        self.max_len = max_len


TARGETS: dict[str, FuzzTarget] = {t.name: t for t in (
    FuzzTarget("sip", sip, 8192),
    FuzzTarget("sdp", sdp, 8192),
    FuzzTarget("jsonrpc", jsonrpc_session, 8192),
    FuzzTarget("rest", rest, 4096),
    FuzzTarget("stun", stun, 1500),
    FuzzTarget("rtp", rtp, 1500),
)}
