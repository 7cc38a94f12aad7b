"""The SIP ladder of each call: what went between the browser, the gateway and the SIP side.

Why: when a call fails, the question is what was said on the wire — who sent the BYE, whether
the 200 came, which 4xx the server answered.  Each call keeps its ladder here: every SIP
message of its dialogs (the endpoint's capture, :mod:`wcsgw.sip.capture`, redacted by
:mod:`wcsgw.sip.redact`) and the JSON-RPC arrows with its browser that matter to it (its
requests ``call``, ``answer``, ``hangup`` ... and the notifications ``callStatus``,
``incomingCall`` ...), as entries of the shape docs/websocket-api.md gives (``sipLadder``).

How a SIP message finds its call: by Call-ID.  A call's dialogs are looked up when it starts
and when the gateway sends a request on a Call-ID not known yet (the call's SIP session names
its Call-ID: the first INVITE, the new INVITE after a transfer, whose dialog becomes the call's
once answered — its ACK finds it); until then messages wait among a few pending Call-IDs (an
incoming INVITE arrives before its call exists).  REGISTER, OPTIONS, SUBSCRIBE, PUBLISH and
MESSAGE belong to no call and are not kept.

Bounds: a call keeps its first ``head`` entries and the latest ones up to ``per_call`` (the
entries' ``seq`` shows the gap), at most ``text_budget`` characters of message text; the
ladders of the last ``keep_ended`` ended calls are kept for an operator to look at after the
fact.  Each new entry goes live to the call's session as a ``sipLadder`` notification (not to
hooks; not while the session is detached: the resume queue is for what the page must not
miss).  Nothing here runs on the media path.
"""

from __future__ import annotations

import collections
import json
import time
from typing import Any, Callable

from twisted.logger import Logger

from wcsgw.calls.errors import CallError, Codes
from wcsgw.sip.capture import Heading, heading
from wcsgw.sip.redact import redact
from wcsgw.sip.target import Target

__all__ = ["BROWSER_METHODS", "Ladder", "Ladders", "install_ladders"]

log = Logger(namespace="wcsgw.calls")

#: the JSON-RPC requests drawn as arrows from the browser (others are not about a call)
BROWSER_METHODS = frozenset({"call", "answer", "hangup", "hold", "unhold", "transfer",
                             "answerTransfer", "sendDtmf", "restartIce"})
#: the notifications drawn as arrows to the browser
BROWSER_NOTICES = frozenset({"incomingCall", "transferStatus", "transferRequest", "dtmf"})
#: what of a browser arrow's params is shown (never an SDP, headers or DTMF digits)
_SHOWN_PARAMS = ("callId", "callee", "caller", "hasAudio", "hasVideo", "target", "accept",
                 "status", "sipStatus", "info", "type", "incoming")
#: SIP methods whose messages belong to no call
_NOT_CALLS = frozenset({"REGISTER", "OPTIONS", "SUBSCRIBE", "PUBLISH", "MESSAGE"})
#: how recent a message must be to be recognised as sent again (a hash of its bytes)
_RECENT = 64
#: messages of Call-IDs no call has yet (an incoming INVITE before its call starts, a
#: transfer's new dialog before it is answered): how many Call-IDs, messages, bytes of each
_PENDING_IDS, _PENDING_EACH, _PENDING_BYTES = 64, 16, 16384
#: how long a session's ``call`` request waits for the call it starts (a hook may decide)
_ASKED_SECONDS = 30.0
#: how many sessions' ``call`` requests are kept before those too old to start a call go
_ASKED_KEPT = 256


class Ladder:
    """One call's entries, bounded."""

    def __init__(self, call_id: str, session_id: str | None, *, hide_user: bool = False,
                 per_call: int = 300, head: int = 200, text_budget: int = 128 * 1024) -> None:
        self.call_id = call_id
        self.session_id = session_id
        #: the call runs on a server-held account: its Authorization username is hidden too
        self.hide_user = hide_user
        self.head: list[dict[str, Any]] = []
        self.tail: collections.deque[dict[str, Any]] = collections.deque(
            maxlen=max(1, per_call - head))
        self._head_size = head
        self.seq = 0
        self.text_left = text_budget
        self.recent: collections.OrderedDict[int, None] = collections.OrderedDict()
        #: the SIP Call-IDs of its dialogs
        self.sip_ids: list[str] = []
        #: where live entries go (the call's ``notify``, attached sessions only)
        self.send: Callable[[dict[str, Any]], None] | None = None

    def add(self, entry: dict[str, Any]) -> dict[str, Any]:
        entry["seq"] = self.seq
        self.seq += 1
        text = entry["message"]
        if len(text) > self.text_left:
            entry["message"] = "… [not kept: this call's ladder holds no more message text]"
        self.text_left -= len(entry["message"])
        if len(self.head) < self._head_size:
            self.head.append(entry)
        else:
            self.tail.append(entry)
        if self.send is not None:
            self.send(entry)
        return entry

    def sent_before(self, key: int) -> bool:
        """Whether a message with this hash was seen lately (a retransmission)."""
        if key in self.recent:
            return True
        self.recent[key] = None
        if len(self.recent) > _RECENT:
            self.recent.popitem(last=False)
        return False

    def entries(self) -> list[dict[str, Any]]:
        return [dict(entry) for entry in (*self.head, *self.tail)]


def _browser_entry(now: float, incoming: bool, label: str,
                   params: Any) -> dict[str, Any]:
    shown = {}
    if isinstance(params, dict):
        shown = {key: params[key] for key in _SHOWN_PARAMS if key in params}
    return {"time": int(now * 1000), "from": "browser" if incoming else "gateway",
            "to": "gateway" if incoming else "browser", "label": label,
            "summary": label, "message": json.dumps(shown, sort_keys=True),
            "retransmission": False}


class Ladders:
    """Every call's ladder, live and recently ended (``gateway.ladders``).

    A registry watcher (``call_started``/``call_ended``), the SIP endpoint's capture observer
    (:meth:`capture`) and the session methods' tap (:meth:`browser_request`).  ``held(call)``
    says whether a call runs on a server-held account; ``attached(session_id)`` whether the
    session's WebSocket is there to take live entries."""

    def __init__(self, *, held: Callable[[Any], bool] = lambda call: False,
                 attached: Callable[[str], bool] = lambda session_id: True,
                 clock: Callable[[], float] = time.time, per_call: int = 300,
                 head: int = 200, keep_ended: int = 200) -> None:
        self.held = held
        self.attached = attached
        self.clock = clock
        self._sizes = {"per_call": per_call, "head": min(head, per_call)}
        self.keep_ended = keep_ended
        self._live: dict[Any, Ladder] = {}  # by call object
        self._ended: collections.OrderedDict[str, Ladder] = collections.OrderedDict()
        self._by_sip: dict[str, Ladder] = {}
        self._pending: collections.OrderedDict[str, list[tuple[str, bytes, float, Heading]]] = \
            collections.OrderedDict()
        self._asked: dict[str, tuple[float, Any, dict[str, Any]]] = {}

    # -- the registry's watcher ---------------------------------------------------------------

    def call_started(self, call: Any) -> None:
        ladder = Ladder(call.call_id, call.session_id, hide_user=bool(self.held(call)),
                        **self._sizes)
        self._live[call] = ladder
        if call.session_id is None:  # a REST call with server-side media: no browser lane
            self._find(_sip_call_id(call))
            return
        self._wrap(call, ladder)
        asked = self._asked.pop(call.session_id, None)
        if asked is not None and not call.incoming and asked[1] in (None, call.call_id) \
                and self.clock() - asked[0] <= _ASKED_SECONDS:
            ladder.add(asked[2])
        self._find(_sip_call_id(call))

    def call_ended(self, call: Any) -> None:
        ladder = self._live.pop(call, None)
        if ladder is None:
            return
        self._ended.pop(ladder.call_id, None)
        self._ended[ladder.call_id] = ladder
        while len(self._ended) > self.keep_ended:
            _call_id, old = self._ended.popitem(last=False)
            for sip_id in old.sip_ids:
                if self._by_sip.get(sip_id) is old:
                    del self._by_sip[sip_id]

    def _wrap(self, call: Any, ladder: Ladder) -> None:
        """The call's arrows toward its browser, seen where the call sends them; its live
        entries sent through its own ``notify`` (taken before the wrap: no arrow for them)."""
        on_status, notify = call.on_status, call.notify
        session_id = call.session_id

        def status_arrow(described: dict[str, Any]) -> None:
            self._browser(ladder, False, f"callStatus {described.get('status')}", described)
            on_status(described)

        def notice_arrow(method: str, params: dict[str, Any]) -> None:
            if method in BROWSER_NOTICES:
                self._browser(ladder, False, method, params)
            notify(method, params)

        def send(entry: dict[str, Any]) -> None:
            if session_id is not None and self.attached(session_id):
                notify("sipLadder", {"callId": ladder.call_id, "entry": entry})

        call.on_status, call.notify, ladder.send = status_arrow, notice_arrow, send

    # -- the browser's requests ---------------------------------------------------------------

    def browser_request(self, session_id: str, method: str, params: Any) -> None:
        """A JSON-RPC request of ``session_id``, before it runs (the methods' tap)."""
        if method not in BROWSER_METHODS:
            return
        now = self.clock()
        call_id = params.get("callId") if isinstance(params, dict) else None
        if method == "call":  # its call starts while it runs (or later, after a hook)
            self._asked[session_id] = (now, call_id, _browser_entry(now, True, method, params))
            if len(self._asked) > _ASKED_KEPT:  # calls refused before they started
                self._asked = {sid: asked for sid, asked in self._asked.items()
                               if now - asked[0] <= _ASKED_SECONDS}
            return
        for call, ladder in self._live.items():
            if ladder.call_id == call_id and call.session_id == session_id:
                self._browser(ladder, True, method, params)
                return

    def _browser(self, ladder: Ladder, incoming: bool, label: str, params: Any) -> None:
        ladder.add(_browser_entry(self.clock(), incoming, label, params))

    # -- the SIP endpoint's capture -----------------------------------------------------------

    def capture(self, direction: str, data: bytes, peer: Target, now: float) -> None:
        """The endpoint's observer (:mod:`wcsgw.sip.capture`); never raises into SIP."""
        try:
            self._capture(direction, data, now)
        except Exception:  # noqa: BLE001 - a ladder's bug must not disturb a call's SIP
            log.failure("SIP ladder: a {direction} message was not kept", direction=direction)

    def _capture(self, direction: str, data: bytes, now: float) -> None:
        head = heading(data)
        if not head.call_id or head.cseq_method in _NOT_CALLS:
            return
        ladder = self._by_sip.get(head.call_id)
        if ladder is None and direction == "sent" and head.request:
            # only a request of our own makes us look among the calls: what strangers send,
            # and our answers to it, cost one dictionary look-up each (no scan to amplify)
            ladder = self._find(head.call_id)
        if ladder is not None:
            self._add_sip(ladder, direction, data, now, head)
            return
        waiting = self._pending.setdefault(head.call_id, [])
        if len(waiting) < _PENDING_EACH:
            waiting.append((direction, data[:_PENDING_BYTES], now, head))
        while len(self._pending) > _PENDING_IDS:
            self._pending.popitem(last=False)

    def _find(self, sip_id: str | None) -> Ladder | None:
        """The live call whose SIP session has Call-ID ``sip_id``, mapped from now on; the
        messages that waited for it are filed first."""
        if not sip_id:
            return None
        for call, ladder in self._live.items():
            if _sip_call_id(call) == sip_id:
                self._by_sip[sip_id] = ladder
                ladder.sip_ids.append(sip_id)
                for direction, data, now, head in self._pending.pop(sip_id, []):
                    self._add_sip(ladder, direction, data, now, head)
                return ladder
        return None

    def _add_sip(self, ladder: Ladder, direction: str, data: bytes, now: float,
                 head: Heading) -> None:
        sent = direction == "sent"
        ladder.add({
            "time": int(now * 1000), "from": "gateway" if sent else "sip",
            "to": "sip" if sent else "gateway", "label": head.label, "summary": head.summary,
            "message": redact(data, hide_user=ladder.hide_user),
            "retransmission": ladder.sent_before(hash((direction, data))),
        })

    # -- what the APIs read -------------------------------------------------------------------

    def entries(self, session_id: str | None, call_id: str) -> list[dict[str, Any]]:
        """The ladder of ``call_id`` (live, or one of the recently ended) as ``session_id``
        may see it (None: the operator, any call); CallError UNKNOWN_CALL naming ``callId``."""
        ladder = next((x for x in self._live.values() if x.call_id == call_id), None)
        if ladder is None:
            ladder = self._ended.get(call_id)
        if ladder is None or (session_id is not None and ladder.session_id != session_id):
            where = "" if session_id is None else " in this session"
            raise CallError(Codes.UNKNOWN_CALL, f"no SIP ladder for call {call_id}{where}",
                            "callId")
        return ladder.entries()


def _sip_call_id(call: Any) -> str | None:
    """The Call-ID of the call's current SIP dialog (None before it has a SIP leg)."""
    invite = getattr(call, "invite", None)
    value = getattr(invite, "call_id", None)
    return value if isinstance(value, str) else None


def install_ladders(gateway: Any, sip: Any) -> Ladders:
    """``gateway.ladders`` for the service: a registry watcher and ``sip``'s capture observer;
    a call on a server-held account hides its Authorization username, live entries go to
    sessions whose socket is there."""

    def attached(session_id: str) -> bool:
        session = gateway.sessions.get(session_id)
        relay = session.relay if session is not None else None
        return session is not None and (relay is None or relay.socket is not None)

    ladders = Ladders(held=lambda call: gateway.accounts.name_of(call.account) is not None,
                      attached=attached)
    gateway.ladders = ladders
    gateway.registry.watchers.append(ladders)
    sip.capture = ladders.capture
    return ladders
