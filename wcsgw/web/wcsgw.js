/**
 * wcsgw Web SDK — call SIP phones from a browser through the wcsgw gateway.
 *
 * An ES module served at `/sdk/wcsgw.js`.  Its shape follows the Flashphoner WCS Web SDK
 * (`createSession`, `session.createCall`, `call.on(CALL_STATUS.X, ...)`) so WCS front-ends
 * port with few changes; the wire protocol underneath is JSON-RPC 2.0 over WebSocket
 * (docs/websocket-api.md).  Reference and an example page: docs/web-sdk.md.
 *
 * ```js
 * import * as wcsgw from "/sdk/wcsgw.js";
 * const session = wcsgw.createSession({urlServer: "ws://gw:8080/ws", sipOptions: {domain: ""}});
 * session.on(wcsgw.SESSION_STATUS.ESTABLISHED, () => {
 *   const call = session.createCall({callee: "echo"});
 *   call.on(wcsgw.CALL_STATUS.ESTABLISHED, c => console.log("talking", c.id()));
 *   call.call();
 * });
 * ```
 *
 * Media: the gateway is ICE-lite and takes the whole offer at once, so `call()` waits for ICE
 * gathering to complete before sending (no trickle ICE).  STUN/TURN servers are the ones the
 * gateway hands out in the `connect` result (`iceServers`, `[webrtc] ice_servers`: TURN
 * credentials minted for this session), unless the session's `mediaOptions` names its own;
 * `iceTransportPolicy: "relay"` sends media only through a TURN server.
 *
 * @module wcsgw
 */

/**
 * Session statuses.  ESTABLISHED..FAILED are the gateway's `sessionStatus` values
 * (docs/contract.md); PENDING and CONNECTED are local (before the gateway answered); WARN fires for
 * errors the gateway sends that belong to no request; INCOMING_CALL is the event name for
 * incoming calls (its handler receives the {@link Call}).  RECONNECTING is local too: the
 * socket was lost unexpectedly and the SDK is resuming the session on a new one (the calls'
 * media goes on meanwhile; requests wait for the new socket).  It fires once per loss; the
 * status the gateway re-announces follows the resume, or FAILED when the session is lost.
 * @readonly
 * @enum {string}
 */
export const SESSION_STATUS = Object.freeze({
  PENDING: "PENDING",
  CONNECTED: "CONNECTED",
  ESTABLISHED: "ESTABLISHED",
  REGISTERED: "REGISTERED",
  UNREGISTERED: "UNREGISTERED",
  AUTHENTICATION_FAIL: "AUTHENTICATION_FAIL",
  DISCONNECTED: "DISCONNECTED",
  FAILED: "FAILED",
  RECONNECTING: "RECONNECTING",
  WARN: "WARN",
  INCOMING_CALL: "INCOMING_CALL",
});

/**
 * Call statuses, exactly as the gateway sends them.  BUSY, FINISH and FAILED are terminal.
 * @readonly
 * @enum {string}
 */
export const CALL_STATUS = Object.freeze({
  NEW: "NEW",
  PENDING: "PENDING",
  TRYING: "TRYING",
  RING: "RING",
  RING_MEDIA: "RING_MEDIA",
  SESSION_PROGRESS: "SESSION_PROGRESS",
  ESTABLISHED: "ESTABLISHED",
  HOLD: "HOLD",
  BUSY: "BUSY",
  FINISH: "FINISH",
  FAILED: "FAILED",
});

/**
 * Call events that are not statuses: `call.on(CALL_EVENT.TRANSFER_STATUS, (call, e) => ...)`
 * with `e` = `{callId, status, sipStatus}` (status: a {@link TRANSFER_STATUS}),
 * `call.on(CALL_EVENT.DTMF, (call, e) => ...)` with `e` = `{callId, dtmf, type}` for digits
 * the SIP side sent, and `call.on(CALL_EVENT.TRANSFER_REQUEST, (call, request) => ...)` when
 * the far end asks to transfer the call elsewhere (a SIP REFER the gateway's policy let
 * through): `request` is a {@link TransferRequest} — show `request.target` and call
 * `request.accept()` or `request.refuse()`.  `call.on(CALL_EVENT.STATS, (call, stats) => ...)`
 * every 5 s while the call has media: `stats` = `{callId, browser, sip}`, each leg's
 * `{packetsLost, fractionLost, fractionLostIn, fractionLostOut, jitterMs, rttMs, mos}` as the
 * gateway measures them since the last one (docs/websocket-api.md, callStats).  The values are
 * the gateway's notification names.
 * @readonly
 * @enum {string}
 */
export const CALL_EVENT = Object.freeze({
  TRANSFER_STATUS: "transferStatus",
  TRANSFER_REQUEST: "transferRequest",
  DTMF: "dtmf",
  /** `call.on(CALL_EVENT.LADDER, (call, entry) => ...)`: each entry of the call's SIP ladder
   * as it happens (docs/websocket-api.md, sipLadder); `call.ladder()` returns all so far */
  LADDER: "sipLadder",
  STATS: "callStats",
});

/**
 * Session events that are not statuses: `session.on(SESSION_EVENT.MESSAGE, (session, message)
 * => ...)` for each SIP MESSAGE to this session, `message` = `{from, to, body, contentType}`
 * (docs/websocket-api.md, message).  `body` comes from anyone who can reach the PBX: show it as
 * text (`textContent`), never as HTML.  The values are the gateway's notification names.
 * @readonly
 * @enum {string}
 */
export const SESSION_EVENT = Object.freeze({
  MESSAGE: "message",
});

/** The body types {@link Session#sendMessage} may send (the gateway's allow-list). */
const MESSAGE_TYPES = ["text/plain", "application/json"];

/**
 * Progress of a transfer, in the `status` of a {@link CALL_EVENT}.TRANSFER_STATUS event
 * (the REFER accepted, the target being called, the transfer done, or not).  One event name
 * with a status — not one event per status as for calls — because `FAILED` is a call status
 * too: a failed transfer does not fail the call.
 * @readonly
 * @enum {string}
 */
export const TRANSFER_STATUS = Object.freeze({
  ACCEPTED: "ACCEPTED",
  TRYING: "TRYING",
  COMPLETED: "COMPLETED",
  FAILED: "FAILED",
});

/**
 * How {@link Call#sendDTMF} sends digits on the SIP side: RFC 4733 (ex-2833) telephone-event
 * packets in the media, or SIP INFO (`application/dtmf-relay`).
 * @readonly
 * @enum {string}
 */
export const DTMF_TYPE = Object.freeze({
  RFC2833: "RFC2833",
  INFO: "INFO",
});

/** Terminal call statuses: the call is over and its media is released. */
export const TERMINAL_CALL_STATUSES = Object.freeze([CALL_STATUS.BUSY, CALL_STATUS.FINISH, CALL_STATUS.FAILED]);

/** Session statuses in which the WebSocket session is gone. */
const SESSION_ENDED = [SESSION_STATUS.DISCONNECTED, SESSION_STATUS.FAILED];

/** How long `call()` waits for ICE gathering before sending what it has (ms). */
const DEFAULT_ICE_GATHERING_TIMEOUT = 5000;
/** How long `hangup()` waits for the gateway's FINISH before finishing locally (ms). */
const HANGUP_TIMEOUT = 5000;
/** Ended calls still given their late `transferStatus`/`dtmf` (a NOTIFY after the BYE). */
const ENDED_CALLS_KEPT = 16;
/** Keep-alive: a `ping` request this often (ms) while the session is up ... */
const PING_INTERVAL = 15000;
/** ... and a socket that has not answered it within this (ms) is dead. */
const PING_TIMEOUT = 10000;
/** Reconnection delays (ms): each attempt waits a random time below a ceiling that starts
 * here and doubles per attempt up to RECONNECT_MAX_DELAY (exponential backoff, full jitter). */
const RECONNECT_FIRST_DELAY = 500;
const RECONNECT_MAX_DELAY = 8000;
/** A reconnection attempt whose socket has not opened and resumed within this (ms) is
 * abandoned for the next one (a TCP connect to a vanished network can hang for minutes). */
const RESUME_ATTEMPT_TIMEOUT = 10000;
/** How long a call's ICE may stay `disconnected` before the SDK restarts it (ms): long enough
 * for a brief loss to heal by itself (consent checks resume), short enough that a network
 * change is repaired before the person hangs up. */
const ICE_DISCONNECTED_GRACE = 2000;
/** Automatic ICE restarts in a row without ICE connecting in between: past this the SDK stops
 * trying (the gateway's RTP timeout ends the call), so a dead network is not hammered. */
const AUTO_ICE_RESTARTS = 5;
/** Wait before the next automatic ICE restart when one did not help, times the attempt (ms). */
const ICE_RETRY_DELAY = 2000;

/**
 * The far end of a call asks the gateway to transfer it to `target` (a SIP REFER that passed
 * the gateway's destination policy), and the gateway asks the user (`policy.incoming_transfers
 * = "ask"`, the default).  Given to {@link CALL_EVENT}.TRANSFER_REQUEST handlers.  Answer once
 * with {@link TransferRequest#accept} or {@link TransferRequest#refuse} within `timeout`
 * seconds; no answer counts as a refusal (the far end hears 603 Decline).  After an accepted
 * transfer the call stays up with the new far end (ESTABLISHED, info `Transferred`).
 */
export class TransferRequest {
  #answer;
  #settle;
  #timer;
  #state = "pending";

  /**
   * @param {{callId: string, target: string, timeout?: number}} params the notification's
   * @param {(accept: boolean) => Promise<void>} answer sends `answerTransfer`
   */
  constructor(params, answer) {
    /** @type {string} */
    this.callId = params.callId;
    /** @type {string} the SIP URI the gateway would call */
    this.target = params.target ?? "";
    /** @type {number} seconds the gateway waits for the answer */
    this.timeout = Number(params.timeout ?? 15);
    this.#answer = answer;
    /**
     * Settles once the request is over: `"accepted"`, `"refused"`, `"expired"` (no answer in
     * time) or `"ended"` (the call ended first).  UIs hide their question when it settles.
     * @type {Promise<string>}
     */
    this.settled = new Promise((resolve) => (this.#settle = resolve));
    this.#timer = setTimeout(() => this._end("expired"), this.timeout * 1000);
  }

  /** @returns {string} `pending` until answered, then what {@link TransferRequest#settled} says */
  state() {
    return this.#state;
  }

  /**
   * Let the transfer go ahead (the gateway answers the REFER 202 and calls the target).
   * @returns {Promise<void>} rejects with RpcError when the gateway no longer waits for an answer
   */
  accept() {
    return this.#reply(true);
  }

  /**
   * Refuse the transfer (the far end hears 603 Decline); the call goes on as it was.
   * @returns {Promise<void>}
   */
  refuse() {
    return this.#reply(false);
  }

  #reply(accept) {
    if (this.#state !== "pending") {
      return Promise.reject(new Error(`the transfer request is ${this.#state}`));
    }
    this._end(accept ? "accepted" : "refused");
    return this.#answer(accept);
  }

  /** @package the request is over (answered, timed out, or its call ended) */
  _end(state) {
    if (this.#state !== "pending") return;
    this.#state = state;
    clearTimeout(this.#timer);
    this.#settle(state);
  }
}

/**
 * An error answer from the gateway (JSON-RPC error object).
 * `code` < 0: protocol errors (-32602 invalid params: `data.field` names the param);
 * `code` >= 1000: application errors (docs/websocket-api.md lists them; `data.field` when one param is at fault).
 */
export class RpcError extends Error {
  /**
   * @param {number} code
   * @param {string} message
   * @param {any} [data]
   */
  constructor(code, message, data) {
    super(message);
    this.name = "RpcError";
    /** @type {number} */
    this.code = code;
    /** @type {any} */
    this.data = data;
  }
}

/**
 * @typedef {object} SipOptions
 * @property {string} [login]               SIP user (`sipLogin`); required when `domain` is set
 * @property {string} [authenticationName]  digest user name, default: login
 * @property {string} [password]
 * @property {string} [domain]              SIP domain; empty = the gateway's built-in test lines
 * @property {string} [outboundProxy]       host to send SIP to, default: the domain
 * @property {number|string} [port]         port of the proxy/domain, default 5060
 * @property {"udp"|"tcp"|"tls"} [transport]
 * @property {boolean} [registerRequired]   REGISTER the account (default true)
 * @property {string} [visibleName]         display name of the account's calls (`sipVisibleName`,
 *                                          the INVITE's From); a call's own visibleName wins
 */

/**
 * @typedef {object} SessionOptions
 * @property {string} urlServer         `ws://host:8080/ws` (or `wss://`); a URL without a path gets `/ws`
 * @property {SipOptions} [sipOptions]
 * @property {string} [appKey]          forwarded as `appKey`
 * @property {object} [custom]          forwarded as `custom`
 * @property {RTCConfiguration} [mediaOptions]  RTCPeerConnection configuration; its `iceServers`,
 *                                             if given, replace the ones the gateway hands out
 * @property {"all"|"relay"} [iceTransportPolicy]  "relay": media only through the TURN servers
 *                                             (the gateway's `iceServers`); default "all"
 * @property {number} [iceGatheringTimeout]     ms to wait for ICE gathering (default 5000)
 */

/**
 * @typedef {object} CallOptions
 * @property {string} callee                   user part (`1002`) or `sip:`/`tel:` URI
 * @property {string} [visibleName]            caller display name (default: sipOptions.visibleName, else none)
 * @property {HTMLElement} [localVideoDisplay]  container (or video element) for the local video
 * @property {HTMLElement} [remoteVideoDisplay] container, or an audio/video element, for remote media;
 *                                             without it the SDK plays remote audio through its own <audio>
 * @property {MediaStreamConstraints} [constraints]  default `{audio: true, video: false}`;
 *                                             `video: true` (or video constraints) makes a video
 *                                             call: camera sent, far end's video received.  For
 *                                             answer(), video is sent only when the offer has it
 * @property {boolean} [receiveVideo]          receive the far end's video without sending a
 *                                             camera (default: as `constraints.video`); false
 *                                             declines an offered video stream (audio only)
 * @property {Object<string,string>|string[]} [sipHeaders]    extra headers for the INVITE (`X-...`):
 *                                             `{name: value}`, or WCS's `["Name: value", ...]`
 * @property {string[]} [codecs]               force codecs, in order of preference, by name
 *                                             (`["opus"]`, `["PCMU", "telephone-event"]`) via
 *                                             RTCRtpTransceiver.setCodecPreferences; per media kind,
 *                                             a kind with no listed codec keeps the browser default
 * @property {"all"|"relay"} [iceTransportPolicy]  this call only: as the session option
 * @property {string} [callId]                 default: a random UUID
 */

/**
 * A status handler: `(subject, event)` where `subject` is the Session (session statuses) or
 * the Call (call statuses and INCOMING_CALL), and `event` the notification params.
 * @callback StatusHandler
 * @param {any} subject
 * @param {object} [event]
 */

/** A small event emitter keyed by status name; handlers that throw do not stop the others. */
class Emitter {
  /** @type {Map<string, StatusHandler[]>} */
  #handlers = new Map();

  /**
   * @param {string} event
   * @param {StatusHandler} handler
   * @returns {this}
   */
  on(event, handler) {
    if (typeof handler !== "function") throw new TypeError("handler must be a function");
    const list = this.#handlers.get(event) ?? [];
    list.push(handler);
    this.#handlers.set(event, list);
    return this;
  }

  /**
   * @param {string} event
   * @param {StatusHandler} handler
   * @returns {this}
   */
  off(event, handler) {
    const list = this.#handlers.get(event);
    if (list) this.#handlers.set(event, list.filter((h) => h !== handler));
    return this;
  }

  /** @protected */
  _emit(event, ...args) {
    for (const handler of [...(this.#handlers.get(event) ?? [])]) {
      try {
        handler(...args);
      } catch (err) {
        console.error(`wcsgw: a ${event} handler threw`, err);
      }
    }
  }
}

function uuid() {
  if (globalThis.crypto?.randomUUID) return globalThis.crypto.randomUUID();
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** `ws://host:8080` -> `ws://host:8080/ws`; http(s) URLs become ws(s). */
function normaliseUrl(urlServer) {
  const url = new URL(urlServer, globalThis.location?.href);
  if (url.protocol === "http:") url.protocol = "ws:";
  if (url.protocol === "https:") url.protocol = "wss:";
  if (url.protocol !== "ws:" && url.protocol !== "wss:") {
    throw new TypeError(`urlServer must be a ws:// or wss:// URL, got ${urlServer}`);
  }
  if (url.pathname === "/" || url.pathname === "") url.pathname = "/ws";
  return url.href;
}

/** Resolves when ICE gathering is complete, or after `timeoutMs` with what was gathered. */
function iceGatheringComplete(pc, timeoutMs) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", onState);
      pc.removeEventListener("icecandidate", onCandidate);
      resolve();
    };
    const onState = () => {
      if (pc.iceGatheringState === "complete") done();
    };
    const onCandidate = (e) => {
      if (!e.candidate) done(); // the end-of-candidates event
    };
    const timer = setTimeout(done, timeoutMs);
    pc.addEventListener("icegatheringstatechange", onState);
    pc.addEventListener("icecandidate", onCandidate);
  });
}

/**
 * Resolves when the ICE gathering that the next setLocalDescription starts is over (an ICE
 * restart's new candidates), or after `timeoutMs`.  Armed before setLocalDescription because
 * iceGatheringState may still say "complete" from the previous round right after it.
 * @returns {{done: Promise<void>, cancel: () => void}}
 */
function nextGathering(pc, timeoutMs) {
  let cancel = () => {};
  const done = new Promise((resolve) => {
    let gathering = false;
    const finish = () => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", onState);
      pc.removeEventListener("icecandidate", onCandidate);
      resolve();
    };
    const onState = () => {
      if (pc.iceGatheringState === "gathering") gathering = true;
      else if (pc.iceGatheringState === "complete" && gathering) finish();
    };
    const onCandidate = (e) => {
      if (!e.candidate) finish(); // end of candidates ("" in Firefox, null everywhere)
    };
    const timer = setTimeout(finish, timeoutMs);
    pc.addEventListener("icegatheringstatechange", onState);
    pc.addEventListener("icecandidate", onCandidate);
    cancel = finish;
  });
  return { done, cancel };
}

/**
 * Safari, told by its user agent (Safari/ without Chrome, Chromium, CriOS, FxiOS, Edg, OPR or
 * Android).  Why the user agent: Chrome, Edge and Firefox on iOS are WebKit underneath, and no
 * feature test tells Safari from them.
 */
function isSafari() {
  const ua = globalThis.navigator?.userAgent ?? "";
  return /Safari\//.test(ua) && !/(Chrome|Chromium|CriOS|FxiOS|Edg|OPR|Android)\//.test(ua);
}

/** H.264 Constrained Baseline level 3.1 (profile-level-id 42e01f), packetization-mode 1. */
function isConstrainedBaseline(codec) {
  const fmtp = (codec.sdpFmtpLine ?? "").toLowerCase();
  return codec.mimeType.toLowerCase() === "video/h264" &&
    fmtp.includes("profile-level-id=42e01f") && fmtp.includes("packetization-mode=1");
}

/**
 * In Safari, offer H.264 Constrained Baseline (42e01f, packetization-mode=1) first, the other
 * video codecs after it in the browser's order.  Why: that is the H.264 Safari encodes and
 * decodes in hardware and the one SIP video phones take; Safari's own order may put another
 * first.  Only the order changes; a `codecs` option naming video codecs still wins.
 */
function preferSafariVideo(transceiver, kind) {
  if (kind !== "video" || !isSafari() || typeof transceiver.setCodecPreferences !== "function") return;
  const codecs = globalThis.RTCRtpReceiver?.getCapabilities?.("video")?.codecs ?? [];
  const first = codecs.filter(isConstrainedBaseline);
  if (first.length > 0) transceiver.setCodecPreferences([...first, ...codecs.filter((c) => !isConstrainedBaseline(c))]);
}

/**
 * Restrict a transceiver's codecs to `names` (in that order), when any of them exists for
 * its kind.  Without setCodecPreferences support, warns and leaves the browser's choice.
 */
function applyCodecPreferences(transceiver, kind, names) {
  preferSafariVideo(transceiver, kind);
  if (!names || names.length === 0) return;
  const Receiver = globalThis.RTCRtpReceiver;
  if (typeof transceiver.setCodecPreferences !== "function" || !Receiver?.getCapabilities) {
    console.warn("wcsgw: this browser cannot set codec preferences; codecs option ignored");
    return;
  }
  const available = Receiver.getCapabilities(kind)?.codecs ?? [];
  const wanted = [];
  for (const name of names) {
    const mime = `${kind}/${String(name).toLowerCase()}`;
    for (const codec of available) if (codec.mimeType.toLowerCase() === mime) wanted.push(codec);
  }
  if (wanted.length > 0) transceiver.setCodecPreferences(wanted);
}

/** True for <audio>/<video> elements (false outside a browser). */
function isMediaElement(value) {
  return typeof HTMLMediaElement !== "undefined" && value instanceof HTMLMediaElement;
}

/** A readable local error text for getUserMedia/WebRTC failures. */
function localErrorText(err) {
  const name = err?.name ?? "";
  if (name === "NotAllowedError") return "Local error: microphone/camera access was denied";
  if (name === "NotFoundError") return "Local error: no microphone/camera found";
  if (name === "NotReadableError") return "Local error: the microphone/camera is in use or unavailable";
  return `Local error: ${err?.message ?? err}`;
}

/**
 * One WebSocket session with the gateway.  Create it with {@link createSession}.
 */
/** RTCIceTransportPolicy values a page may ask for. */
const ICE_TRANSPORT_POLICIES = ["all", "relay"];

function checkIceTransportPolicy(value, where) {
  if (value !== undefined && !ICE_TRANSPORT_POLICIES.includes(value)) {
    throw new TypeError(`${where}.iceTransportPolicy must be "all" or "relay", got ${JSON.stringify(value)}`);
  }
}

/**
 * The RTCPeerConnection configuration of one call: the gateway's `iceServers` (from
 * `connect`), then the page's `mediaOptions` over them, then the transport policy asked for
 * (the call's over the session's).  With "relay" and no TURN server there would be no
 * candidate at all: that is a local error at once, not a call that fails by ICE later.
 * @returns {RTCConfiguration}
 */
function rtcConfiguration(gatewayIceServers, mediaOptions, policy) {
  const config = { iceServers: gatewayIceServers ?? [], ...(mediaOptions ?? {}) };
  if (policy !== undefined) config.iceTransportPolicy = policy;
  if (config.iceTransportPolicy === "relay") {
    const urls = (config.iceServers ?? []).flatMap((s) => (Array.isArray(s.urls) ? s.urls : [s.urls]));
    if (!urls.some((u) => /^turns?:/i.test(String(u)))) {
      throw new Error('iceTransportPolicy "relay" needs a TURN server, and none is configured (the gateway\'s [webrtc] ice_servers, or mediaOptions.iceServers)');
    }
  }
  return config;
}

export class Session extends Emitter {
  /** @type {WebSocket|null} the socket in use; null between reconnection attempts.  Events of
   * any other (an abandoned socket's late close) are ignored. */
  #ws = null;
  /** @type {string} */
  #url;
  #status = SESSION_STATUS.PENDING;
  /** @type {string|null} */
  #id = null;
  #info = "";
  /** @type {number|null} */
  #sipStatus = null;
  #nextRequestId = 1;
  /** @type {Map<number, {resolve: Function, reject: Function}>} requests sent on #ws */
  #requests = new Map();
  /** @type {Map<string, Call>} */
  #calls = new Map();
  /** @type {Map<string, Call>} the last few ended calls, oldest first */
  #ended = new Map();
  /** @type {Map<string, object[]>} SIP ladder entries of calls not known yet (an incoming
   * call's INVITE comes before its incomingCall), a few calls' worth */
  #earlyLadders = new Map();
  #disconnecting = false;
  /** @type {RTCIceServer[]} the gateway's, from the connect result */
  #iceServers = [];
  /** @type {SessionOptions} */
  #options;
  /** @type {string|null} the single-use token a new socket resumes the session with */
  #authToken = null;
  /** seconds the gateway keeps the session after its socket went (0: it does not) */
  #resumeSeconds = 0;
  /** @type {{deadline: number, attempt: number, timer: any, attemptTimer: any}|null}
   * set while RECONNECTING */
  #reconnect = null;
  /** @type {{method: string, params: object, resolve: Function, reject: Function}[]}
   * requests made while RECONNECTING, sent in order on the resumed socket */
  #queued = [];
  /** the keep-alive: the next ping, or the deadline of the one sent */
  #pingTimer = null;

  /** @param {SessionOptions} options */
  constructor(options) {
    super();
    if (!options || !options.urlServer) throw new TypeError("options.urlServer must be provided");
    checkIceTransportPolicy(options.iceTransportPolicy, "options");
    this.#options = options;
    this.#url = normaliseUrl(options.urlServer);
    this.#openSocket();
    globalThis.addEventListener?.("online", this.#onOnline);
  }

  /** @returns {string|null} the gateway's session id (known after ESTABLISHED) */
  id() {
    return this.#id;
  }

  /** @returns {string} the current {@link SESSION_STATUS} */
  status() {
    return this.#status;
  }

  /** @returns {string} the reason given with the last status (`info`) */
  getInfo() {
    return this.#info;
  }

  /** @returns {number|null} the SIP status code of the last status, if any */
  getSipStatus() {
    return this.#sipStatus;
  }

  /**
   * The STUN/TURN servers the gateway handed out in `connect` (`iceServers`; TURN credentials
   * minted for this session), as RTCIceServer objects; [] when it has none.
   * @returns {RTCIceServer[]}
   */
  getIceServers() {
    return structuredClone(this.#iceServers);
  }

  /** @returns {string} the WebSocket URL */
  getServerUrl() {
    return this.#url;
  }

  /** @returns {Call[]} calls not yet over */
  getCalls() {
    return [...this.#calls.values()];
  }

  /**
   * A new outgoing call in status NEW; `call()` places it.
   * Allowed when the session is ESTABLISHED or REGISTERED (as in the WCS SDK).
   * @param {CallOptions} options
   * @returns {Call}
   */
  createCall(options) {
    if (this.#status !== SESSION_STATUS.ESTABLISHED && this.#status !== SESSION_STATUS.REGISTERED) {
      throw new Error(`createCall() needs an ESTABLISHED or REGISTERED session; it is ${this.#status}`);
    }
    if (!options || typeof options.callee !== "string" || !options.callee.trim()) {
      throw new TypeError("options.callee must be provided");
    }
    checkIceTransportPolicy(options.iceTransportPolicy, "options");
    const visibleName = options.visibleName ?? this.#options.sipOptions?.visibleName;
    const call = new Call(this, { ...options, visibleName, incoming: false }, this.#callInternals());
    this.#calls.set(call.id(), call);
    return call;
  }

  /**
   * End the session: the gateway hangs up its calls and un-registers; then the WebSocket
   * closes and DISCONNECTED fires.  While RECONNECTING it ends the session here at once (no
   * socket to say so on): the gateway ends it, and its calls, when its resume window passes.
   * @returns {Promise<void>}
   */
  async disconnect() {
    if (SESSION_ENDED.includes(this.#status) || this.#disconnecting) return;
    this.#disconnecting = true;
    if (this.#reconnect) {
      this.#stopReconnecting();
      this.#endSession(SESSION_STATUS.DISCONNECTED, { info: "Disconnected" }, (call) => call._sessionEnded());
      return;
    }
    const ws = this.#ws;
    if (ws?.readyState === 1) {
      try {
        await this.#send("disconnect", {});
      } catch (err) {
        // The socket closes anyway; the gateway ends the session when it goes.
      }
    }
    ws?.close(1000, "disconnect");
  }

  /**
   * Send any JSON-RPC request (for methods this SDK has no wrapper for).  While RECONNECTING
   * it waits for the resumed socket (see {@link SESSION_STATUS}.RECONNECTING).
   * @param {string} method
   * @param {object} params
   * @returns {Promise<any>} the result; rejects with {@link RpcError}
   */
  request(method, params) {
    return this.#request(method, params);
  }

  /**
   * Send a SIP MESSAGE (RFC 3428) through the session's account: `to` is a user part (`1002`)
   * or a `sip:`/`tel:` URI, checked by the gateway's outbound policy as a callee is.
   * @param {string} to
   * @param {string} body at most 8192 bytes as UTF-8
   * @param {"text/plain"|"application/json"} [contentType]
   * @returns {Promise<void>} resolves when the SIP side accepted it (2xx); rejects with
   *   {@link RpcError}: 1014 names the SIP status (`Message not delivered: 404 Not Found`)
   */
  async sendMessage(to, body, contentType = "text/plain") {
    if (typeof to !== "string" || !to.trim()) throw new TypeError("to must be a non-empty string");
    if (typeof body !== "string" || !body) throw new TypeError("body must be a non-empty string");
    if (!MESSAGE_TYPES.includes(contentType)) {
      throw new TypeError(`contentType must be one of ${MESSAGE_TYPES.join(", ")}`);
    }
    await this.#request("sendMessage", { to: to.trim(), body, contentType });
  }

  // -- internals -------------------------------------------------------------------------

  #callInternals() {
    return {
      request: (method, params) => this.#request(method, params),
      forget: (call) => {
        if (this.#calls.get(call.id()) === call) this.#calls.delete(call.id());
        this.#ended.set(call.id(), call);
        if (this.#ended.size > ENDED_CALLS_KEPT) this.#ended.delete(this.#ended.keys().next().value);
      },
      rekey: (call, oldId) => {
        this.#calls.delete(oldId);
        this.#calls.set(call.id(), call);
      },
      mediaOptions: this.#options.mediaOptions,
      iceServers: () => this.#iceServers,
      iceTransportPolicy: this.#options.iceTransportPolicy,
      iceGatheringTimeout: this.#options.iceGatheringTimeout ?? DEFAULT_ICE_GATHERING_TIMEOUT,
      login: this.#options.sipOptions?.login ?? "",
    };
  }

  /** A request of the app or a call: sent now, or, while RECONNECTING, once resumed. */
  #request(method, params) {
    if (this.#reconnect) {
      return new Promise((resolve, reject) => this.#queued.push({ method, params, resolve, reject }));
    }
    return this.#send(method, params);
  }

  /** A request on the socket in use, now. */
  #send(method, params) {
    const ws = this.#ws;
    if (ws?.readyState !== 1) {
      return Promise.reject(new RpcError(-1, "Not connected to the gateway"));
    }
    const id = this.#nextRequestId++;
    return new Promise((resolve, reject) => {
      this.#requests.set(id, { resolve, reject });
      ws.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
    });
  }

  #setStatus(status, event = {}) {
    this.#status = status;
    this.#info = event.info ?? "";
    this.#sipStatus = event.sipStatus ?? null;
    this._emit(status, this, event);
  }

  #openSocket() {
    const ws = new globalThis.WebSocket(this.#url);
    this.#ws = ws;
    ws.onopen = () => {
      if (this.#ws === ws) this.#onOpen();
    };
    ws.onmessage = (e) => {
      if (this.#ws === ws) this.#onFrame(e.data);
    };
    ws.onclose = (e) => {
      if (this.#ws !== ws) return;
      this.#ws = null;
      this.#onClose(e);
    };
    ws.onerror = () => {}; // a close event always follows; it decides
    return ws;
  }

  /** Give up on a socket that is open but dead (no answer to a ping, a resume attempt that
   * hangs): from now on its events are ignored, and it counts as closed. */
  #abandon(ws, reason) {
    if (this.#ws !== ws) return;
    this.#ws = null;
    try {
      ws.close();
    } catch {
      /* already closing */
    }
    this.#onClose({ code: 1006, reason });
  }

  #onOpen() {
    if (this.#reconnect) {
      this.#resume();
      return;
    }
    this.#setStatus(SESSION_STATUS.CONNECTED);
    const sip = this.#options.sipOptions ?? {};
    const params = {
      sipLogin: sip.login ?? "",
      sipAuthenticationName: sip.authenticationName ?? "",
      sipPassword: sip.password ?? "",
      sipDomain: sip.domain ?? "",
      sipOutboundProxy: sip.outboundProxy ?? "",
      sipPort: sip.port === undefined || sip.port === "" ? 5060 : Number(sip.port),
      sipTransport: sip.transport ?? "udp",
      sipRegisterRequired: sip.registerRequired ?? true,
    };
    if (sip.visibleName) params.sipVisibleName = String(sip.visibleName);
    if (this.#options.appKey !== undefined) params.appKey = this.#options.appKey;
    if (this.#options.custom !== undefined) params.custom = this.#options.custom;
    const ws = this.#ws;
    this.#send("connect", params).then(
      (result) => {
        this.#id = result?.sessionId ?? this.#id;
        this.#connected(ws, result);
      },
      (err) => {
        if (this.#ws !== ws) return; // the socket went: its close decides
        this.#setStatus(SESSION_STATUS.FAILED, { info: err.message, error: err });
        ws.close(1000, "connect failed");
      },
    );
  }

  /** A connect result (first or resumed): what the next resume and the calls need. */
  #connected(ws, result) {
    if (Array.isArray(result?.iceServers)) this.#iceServers = result.iceServers;
    this.#authToken = typeof result?.authToken === "string" && result.authToken ? result.authToken : null;
    this.#resumeSeconds = Number(result?.resumeSeconds) > 0 ? Number(result.resumeSeconds) : 0;
    if (this.#ws === ws) this.#schedulePing(ws);
  }

  // -- keep-alive ------------------------------------------------------------------------

  /** `ping` every PING_INTERVAL; no answer within PING_TIMEOUT: the socket is dead (a
   * vanished network closes no TCP connection, so no close event would ever come). */
  #schedulePing(ws) {
    clearTimeout(this.#pingTimer);
    this.#pingTimer = setTimeout(() => {
      if (this.#ws !== ws) return;
      this.#pingTimer = setTimeout(() => this.#abandon(ws, "no answer to ping"), PING_TIMEOUT);
      // Any answer means the socket lives (an error too: a gateway without `ping`).
      const alive = () => {
        if (this.#ws === ws) this.#schedulePing(ws);
      };
      this.#send("ping", {}).then(alive, (err) => {
        if (err.code !== -1) alive();
      });
    }, PING_INTERVAL);
  }

  // -- losing the socket, reconnecting -----------------------------------------------------

  /** The socket in use closed (or was abandoned). */
  #onClose(event) {
    clearTimeout(this.#pingTimer);
    this.#pingTimer = null;
    const err = new RpcError(-1, "Connection to the gateway lost");
    for (const { reject } of this.#requests.values()) reject(err);
    this.#requests.clear();
    if (this.#reconnect) {
      clearTimeout(this.#reconnect.attemptTimer);
      this.#scheduleAttempt(); // that attempt failed: the next one, or give up
      return;
    }
    if (SESSION_ENDED.includes(this.#status)) {
      globalThis.removeEventListener?.("online", this.#onOnline);
      for (const call of [...this.#calls.values()]) call._sessionEnded();
      return;
    }
    if (this.#resumable(event)) {
      this.#reconnect = { deadline: Date.now() + this.#resumeSeconds * 1000, attempt: 0, timer: null, attemptTimer: null };
      const why = event.reason ? event.reason : `code ${event.code}`;
      this.#setStatus(SESSION_STATUS.RECONNECTING, { info: `Connection to the gateway lost (${why}); reconnecting` });
      this.#scheduleAttempt();
      return;
    }
    let status = SESSION_STATUS.FAILED;
    let info = `Connection to the gateway lost (code ${event.code})`;
    if (this.#disconnecting || event.code === 1000) {
      status = SESSION_STATUS.DISCONNECTED;
      info = "Disconnected";
    } else if (this.#status === SESSION_STATUS.PENDING) {
      info = `Cannot connect to ${this.#url}`;
    }
    this.#endSession(status, { info }, (call) => call._sessionEnded());
  }

  /** Is this loss one to reconnect from?  Not after disconnect(), not without a token, not
   * when the gateway closed on purpose (1000: it ended the session; 1008: a limit). */
  #resumable(event) {
    const up = [SESSION_STATUS.ESTABLISHED, SESSION_STATUS.REGISTERED, SESSION_STATUS.UNREGISTERED,
      SESSION_STATUS.AUTHENTICATION_FAIL];
    return !this.#disconnecting && this.#authToken !== null && this.#resumeSeconds > 0
      && up.includes(this.#status) && event.code !== 1000 && event.code !== 1008;
  }

  /** The next attempt after a random delay (full jitter: 0 .. 0.5 s, doubling up to 8 s),
   * so a gateway that comes back is not hit by every browser at once; none once the
   * gateway's resume window has passed. */
  #scheduleAttempt() {
    const r = this.#reconnect;
    if (!r || this.#disconnecting) return;
    const left = r.deadline - Date.now();
    if (left <= 0) {
      this.#giveUp(`could not reconnect within ${this.#resumeSeconds} s`);
      return;
    }
    const ceiling = Math.min(RECONNECT_MAX_DELAY, RECONNECT_FIRST_DELAY * 2 ** r.attempt);
    r.attempt += 1;
    r.timer = setTimeout(() => this.#attempt(r), Math.min(Math.random() * ceiling, left));
  }

  #attempt(r) {
    r.timer = null;
    if (this.#reconnect !== r) return;
    this.#openSocket();
    const ws = this.#ws;
    r.attemptTimer = setTimeout(() => this.#abandon(ws, "no answer"), RESUME_ATTEMPT_TIMEOUT);
  }

  /** The browser has a network again (the `online` event, e.g. after Wi-Fi to LTE): try now
   * rather than after the rest of the backoff, unless an attempt is under way. */
  #onOnline = () => {
    const r = this.#reconnect;
    if (!r || r.timer === null) return;
    clearTimeout(r.timer);
    this.#attempt(r);
  };

  /** A new socket is open: `connect` with the token alone resumes the session. */
  #resume() {
    const ws = this.#ws;
    const r = this.#reconnect;
    this.#send("connect", { authToken: this.#authToken }).then(
      (result) => {
        if (this.#reconnect !== r || this.#ws !== ws) return;
        if (result?.sessionId && this.#id && result.sessionId !== this.#id) {
          this.#giveUp("the gateway resumed another session");
          return;
        }
        clearTimeout(r.attemptTimer);
        this.#reconnect = null;
        this.#connected(ws, result);
        // The status comes next, from the gateway (sessionStatus), then each live call's.
        for (const q of this.#queued.splice(0)) this.#send(q.method, q.params).then(q.resolve, q.reject);
      },
      (err) => {
        if (err.code === -1 || this.#reconnect !== r) return; // the socket went: next attempt
        this.#giveUp(err.message, err);
      },
    );
  }

  #stopReconnecting() {
    const r = this.#reconnect;
    if (!r) return;
    clearTimeout(r.timer);
    clearTimeout(r.attemptTimer);
    this.#reconnect = null;
    const ws = this.#ws;
    this.#ws = null;
    ws?.close(1000, "disconnect");
    const err = new RpcError(-1, "Connection to the gateway closed");
    for (const { reject } of this.#requests.values()) reject(err);
    this.#requests.clear();
  }

  /** The session is gone for good (the resume window passed, or the gateway refused the
   * token): FAILED, and each call FINISH here, as the gateway ended them. */
  #giveUp(why, error) {
    this.#stopReconnecting();
    this.#endSession(SESSION_STATUS.FAILED, { info: `Session lost: ${why}`, error }, (call) => call._sessionLost());
  }

  #endSession(status, event, endCall) {
    globalThis.removeEventListener?.("online", this.#onOnline);
    clearTimeout(this.#pingTimer);
    this.#pingTimer = null;
    this.#authToken = null;
    const err = new RpcError(-1, `The session ended (${event.info})`);
    for (const q of this.#queued.splice(0)) q.reject(err);
    for (const call of [...this.#calls.values()]) endCall(call);
    this.#setStatus(status, event);
  }

  #onFrame(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch (err) {
      console.warn("wcsgw: the gateway sent a frame that is not JSON", err);
      return;
    }
    if (message.method !== undefined && message.id === undefined) {
      this.#onNotification(message.method, message.params ?? {});
      return;
    }
    const pending = this.#requests.get(message.id);
    if (pending) {
      this.#requests.delete(message.id);
      if (message.error) {
        pending.reject(new RpcError(message.error.code, message.error.message, message.error.data));
      } else {
        pending.resolve(message.result);
      }
    } else if (message.error) {
      this._emit(SESSION_STATUS.WARN, this, { info: message.error.message, error: message.error });
    }
  }

  #onNotification(method, params) {
    if (method === "sessionStatus") {
      if (params.sessionId) this.#id = params.sessionId;
      if (params.status === SESSION_STATUS.DISCONNECTED && this.#status === SESSION_STATUS.DISCONNECTED) return;
      this.#setStatus(params.status, params);
    } else if (method === "callStatus") {
      const call = this.#calls.get(params.callId);
      if (call) {
        call._onStatus(params);
      } else if (this.#ended.has(params.callId) && params.status && !TERMINAL_CALL_STATUSES.includes(params.status)) {
        // A call this page ended (its hangup lost with a socket) that the gateway still has.
        this.#send("hangup", { callId: params.callId }).catch(() => {});
      }
    } else if (method === "incomingCall") {
      const call = new Call(
        this,
        {
          callId: params.callId,
          callee: params.callee ?? "",
          caller: params.caller ?? "",
          visibleName: params.visibleName,
          incoming: true,
          offer: params.sdp,
          hasVideo: params.hasVideo,
        },
        this.#callInternals(),
      );
      this.#calls.set(call.id(), call);
      for (const entry of this.#earlyLadders.get(call.id()) ?? []) call._onLadder(entry);
      this.#earlyLadders.delete(call.id());
      this._emit(SESSION_STATUS.INCOMING_CALL, call, params);
    } else if (method === CALL_EVENT.TRANSFER_REQUEST) {
      // A call this page does not know cannot be answered: the gateway's timeout refuses it.
      this.#calls.get(params.callId)?._onTransferRequest(params);
    } else if (method === CALL_EVENT.LADDER) {
      // The BYE's 200 comes after FINISH; an incoming call's INVITE before incomingCall.
      const call = this.#calls.get(params.callId) ?? this.#ended.get(params.callId);
      if (call) {
        call._onLadder(params.entry);
      } else if (typeof params.callId === "string") {
        const early = this.#earlyLadders.get(params.callId) ?? [];
        if (early.length < LADDER_KEPT) early.push(params.entry);
        this.#earlyLadders.set(params.callId, early);
        if (this.#earlyLadders.size > ENDED_CALLS_KEPT) {
          this.#earlyLadders.delete(this.#earlyLadders.keys().next().value);
        }
      }
    } else if (method === CALL_EVENT.TRANSFER_STATUS || method === CALL_EVENT.DTMF) {
      // A transfer's last NOTIFY may come after the transferred call's FINISH.
      (this.#calls.get(params.callId) ?? this.#ended.get(params.callId))?._onEvent(method, params);
    } else if (method === CALL_EVENT.STATS) {
      this.#calls.get(params.callId)?._onEvent(method, params);
    } else if (method === SESSION_EVENT.MESSAGE) {
      const { from = "", to = "", body = "", contentType = "text/plain" } = params;
      this._emit(SESSION_EVENT.MESSAGE, this, { from: String(from), to: String(to), body: String(body), contentType: String(contentType) });
    }
  }
}

/**
 * One call.  Outgoing calls come from {@link Session#createCall}; incoming ones arrive with
 * the session's INCOMING_CALL event.
 */
/** the most SIP ladder entries a call keeps in the page (the gateway keeps 300) */
const LADDER_KEPT = 1000;

export class Call extends Emitter {
  #session;
  /** @type {object[]} the call's SIP ladder so far (sipLadder entries) */
  #ladder = [];
  #internals;
  #options;
  /** @type {string} */
  #id;
  #status = CALL_STATUS.NEW;
  #info = "";
  #errorInfo = "";
  /** @type {number|null} */
  #sipStatus = null;
  #caller;
  #callee;
  #incoming;
  /** the offer of an incoming call, kept until answer() */
  #offer;
  /** @type {RTCPeerConnection|null} */
  #pc = null;
  /** @type {MediaStream|null} */
  #localStream = null;
  /** @type {MediaStream|null} */
  #remoteStream = null;
  /** elements this SDK created (removed on cleanup) */
  #created = [];
  /** @type {HTMLMediaElement|null} */
  #remoteElement = null;
  #sent = false; // the call/answer request went to the gateway
  #ending = false; // hangup() was called
  #remoteApplied = false;
  /** @type {boolean|null} video negotiated (null: offer/answer not complete yet) */
  #videoNegotiated = null;
  #hangupTimer = null;
  #statusQueue = Promise.resolve();
  /** @type {TransferRequest|null} the far end's transfer waiting for an answer */
  #transferRequest = null;
  /** @type {number|null} setVolume()'s 0-100, applied to the remote element (null: untouched) */
  #volume = null;
  /** @type {string|null} setAudioOutputId()'s sink, applied to the remote element */
  #sinkId = null;
  /** @type {Promise<void>|null} the ICE restart under way (concurrent callers share it) */
  #iceRestart = null;
  /** the timer that restarts ICE after ICE_DISCONNECTED_GRACE (or a retry) */
  #iceTimer = null;
  /** automatic ICE restarts since ICE was last connected */
  #autoRestarts = 0;

  /** @param {Session} session */
  constructor(session, options, internals) {
    super();
    this.#session = session;
    this.#internals = internals;
    this.#options = options;
    this.#id = options.callId || uuid();
    this.#incoming = Boolean(options.incoming);
    this.#callee = options.callee ?? "";
    this.#caller = options.caller ?? internals.login;
    this.#offer = options.offer;
  }

  /** @returns {string} */
  id() {
    return this.#id;
  }

  /** @returns {string} the current {@link CALL_STATUS} */
  status() {
    return this.#status;
  }

  /** @returns {string} the reason given with the last status (`info`) */
  getInfo() {
    return this.#info;
  }

  /** @returns {string} the local error text, when a local step (getUserMedia, WebRTC) failed */
  getErrorInfo() {
    return this.#errorInfo;
  }

  /** @returns {number|null} */
  getSipStatus() {
    return this.#sipStatus;
  }

  caller() {
    return this.#caller;
  }

  callee() {
    return this.#callee;
  }

  visibleName() {
    return this.#options.visibleName ?? "";
  }

  isIncoming() {
    return this.#incoming;
  }

  /** @returns {Session} */
  getSession() {
    return this.#session;
  }

  /** @returns {MediaStream|null} what the far end sends (for level meters, recording) */
  getRemoteStream() {
    return this.#remoteStream;
  }

  /** @returns {MediaStream|null} the microphone/camera stream */
  getLocalStream() {
    return this.#localStream;
  }

  /** @returns {RTCPeerConnection|null} */
  getPeerConnection() {
    return this.#pc;
  }

  /**
   * Place the call (only in NEW): microphone, offer, ICE gathering, then `call` to the gateway.
   * Failures are reported as status FAILED (see getInfo()/getErrorInfo()); the promise
   * resolves either way, once the gateway has the call or it failed.
   * @returns {Promise<void>}
   */
  async call() {
    if (this.#incoming) throw new Error("call() is for outgoing calls; use answer()");
    if (this.#status !== CALL_STATUS.NEW) throw new Error(`call() is allowed only in NEW; the call is ${this.#status}`);
    this.#setStatus({ status: CALL_STATUS.PENDING });
    let sdp;
    try {
      sdp = await this.#prepareMedia(null);
    } catch (err) {
      this.#failLocally(err);
      return;
    }
    if (sdp === null) return; // hung up meanwhile
    const params = {
      callId: this.#id,
      callee: this.#callee,
      hasAudio: this.#localStream.getAudioTracks().length > 0,
      hasVideo: this.#videoTransceivers().length > 0,
      sdp,
      sipHeaders: this.#options.sipHeaders ?? {},
    };
    if (this.#options.visibleName) params.visibleName = this.#options.visibleName;
    this.#sent = true;
    try {
      const result = await this.#internals.request("call", params);
      if (result?.callId && result.callId !== this.#id) {
        const old = this.#id;
        this.#id = result.callId;
        this.#internals.rekey(this, old);
      }
    } catch (err) {
      if (!this.#terminal()) this.#finish(CALL_STATUS.FAILED, { info: err.message, error: err });
    }
  }

  /**
   * Does the call carry video?  Before the SDP exchange: whether video is asked for (an
   * outgoing call's constraints/receiveVideo, an incoming call's `hasVideo` offer).  Once
   * the answer is applied: whether video was negotiated — false when the far end (or the
   * gateway) rejected the video stream and the call goes on audio only.
   * @returns {boolean}
   */
  hasVideo() {
    this.#noteNegotiatedVideo();
    if (this.#videoNegotiated !== null) return this.#videoNegotiated;
    if (this.#pc) return this.#videoTransceivers().length > 0;
    if (this.#incoming) return Boolean(this.#options.hasVideo);
    return this.#wants("video") || Boolean(this.#options.receiveVideo);
  }

  /**
   * Answer an incoming call (in NEW or RING).  Options as for createCall (media displays,
   * constraints, receiveVideo, codecs, sipHeaders): `constraints: {audio: true, video: true}`
   * answers a video call with the camera; without video in the constraints an offered video
   * stream is declined (answered `a=inactive`) unless `receiveVideo` is true.
   * @param {Partial<CallOptions>} [options]
   * @returns {Promise<void>}
   */
  async answer(options = {}) {
    if (!this.#incoming) throw new Error("answer() is for incoming calls");
    if (this.#status !== CALL_STATUS.NEW && this.#status !== CALL_STATUS.RING) {
      throw new Error(`answer() is allowed only in NEW or RING; the call is ${this.#status}`);
    }
    checkIceTransportPolicy(options.iceTransportPolicy, "options");
    Object.assign(this.#options, options);
    let sdp;
    try {
      sdp = await this.#prepareMedia(this.#offer);
    } catch (err) {
      this.#failLocally(err);
      return;
    }
    if (sdp === null) return;
    this.#sent = true;
    try {
      await this.#internals.request("answer", { callId: this.#id, sdp, sipHeaders: this.#options.sipHeaders ?? {} });
    } catch (err) {
      if (!this.#terminal()) this.#finish(CALL_STATUS.FAILED, { info: err.message, error: err });
    }
  }

  /**
   * End the call (or decline an incoming one).  Media stops at once; the FINISH status comes
   * from the gateway (or locally after 5 s without an answer).  Before the call was sent it
   * ends locally as FAILED, as in the WCS SDK.
   * @returns {Promise<void>}
   */
  async hangup() {
    return this.#hangup({});
  }

  /**
   * Decline an incoming call not answered yet.  `busy: true` says the user is on another call
   * (a call waiting): the caller hears 486 Busy Here whatever the gateway's `[sip]
   * decline_status` (603 Decline by default) says for a lone call.  Otherwise as hangup().
   * @param {{busy?: boolean}} [options]
   * @returns {Promise<void>}
   */
  async decline({ busy = false } = {}) {
    if (!this.#incoming) throw new Error("decline() is for incoming calls");
    return this.#hangup(busy ? { busy: true } : {});
  }

  async #hangup(extra) {
    if (this.#terminal() || this.#ending) return;
    this.#ending = true;
    this.#releaseMedia();
    if (!this.#sent && !this.#incoming) {
      this.#finish(CALL_STATUS.FAILED, { info: "Hung up before the call was placed" });
      return;
    }
    this.#hangupTimer = setTimeout(() => {
      if (!this.#terminal()) this.#finish(CALL_STATUS.FINISH, { info: "Normal call clearing" });
    }, HANGUP_TIMEOUT);
    try {
      await this.#internals.request("hangup", { callId: this.#id, ...extra });
    } catch (err) {
      if (!this.#terminal()) this.#finish(CALL_STATUS.FINISH, { info: "Normal call clearing" });
    }
  }

  /**
   * Put the call on hold: the gateway re-INVITEs the SIP side (`a=sendonly`) and the call
   * fires HOLD once the far end agreed.  The promise settles when the gateway took the
   * request (rejects with RpcError when it refuses, e.g. 1006 in a state that cannot hold).
   * @returns {Promise<void>}
   */
  async hold() {
    await this.#internals.request("hold", { callId: this.#id });
  }

  /**
   * Hold the call to transfer it next (WCS's name): the same hold, and the gateway's call
   * object says `holdForTransfer: true` until unhold() (or the transfer ends the call).
   * Then `transfer(target)`.
   * @returns {Promise<void>}
   */
  async holdForTransfer() {
    await this.#internals.request("hold", { callId: this.#id, holdForTransfer: true });
  }

  /**
   * Resume a held call (re-INVITE `a=sendrecv`); the call fires ESTABLISHED again.
   * @returns {Promise<void>}
   */
  async unhold() {
    await this.#internals.request("unhold", { callId: this.#id });
  }

  /**
   * Record the call on the gateway: one stereo WAV, left this browser, right the SIP side
   * (from the answer when asked before it).  Resolves with the file's name, chosen by the
   * gateway; rejects with RpcError when it refuses (not configured, call ended).
   * @returns {Promise<string>}
   */
  async record() {
    const result = await this.#internals.request("record", { callId: this.#id });
    return result?.recording;
  }

  /**
   * Stop (pause) recording; the file stays, and record() again continues it.
   * @returns {Promise<void>}
   */
  async stopRecording() {
    await this.#internals.request("stopRecording", { callId: this.#id });
  }

  /**
   * Transfer the call (SIP REFER).  A number or URI is a blind transfer: the far end is
   * asked to call it.  Another {@link Call} of this session is an attended transfer: the far
   * end of this call replaces this gateway in that one (Refer-To with Replaces).  Progress
   * arrives as {@link CALL_EVENT}.TRANSFER_STATUS events; after COMPLETED the call ends.
   * @param {string|Call} target user part (`1003`), `sip:`/`sips:`/`tel:` URI, or a Call
   * @returns {Promise<void>}
   */
  async transfer(target) {
    let value;
    if (target instanceof Call) {
      if (target.getSession() !== this.#session) throw new TypeError("transfer target call belongs to another session");
      if (target === this) throw new TypeError("a call cannot be transferred to itself");
      value = target.id();
    } else {
      value = String(target ?? "").trim();
      if (!value) throw new TypeError("transfer target must be a number, a SIP URI or a Call");
    }
    await this.#internals.request("transfer", { callId: this.#id, target: value });
  }

  /**
   * Send DTMF digits to the SIP side.  Both types are carried out by the gateway (RFC2833:
   * telephone-event packets it generates on the SIP leg; INFO: one SIP INFO per digit) —
   * not with the browser's RTCDTMFSender, so both work the same in relay and transcode mode.
   * @param {string} digits 1 to 32 of 0-9 * # A-D
   * @param {DTMF_TYPE} [type] default RFC2833
   * @returns {Promise<void>}
   */
  async sendDTMF(digits, type = DTMF_TYPE.RFC2833) {
    await this.#internals.request("sendDtmf", { callId: this.#id, dtmf: String(digits), type });
  }

  /** Stop sending microphone audio (a local mute, not SIP hold). */
  muteAudio() {
    this.#localStream?.getAudioTracks().forEach((t) => (t.enabled = false));
  }

  /** Resume sending microphone audio. */
  unmuteAudio() {
    this.#localStream?.getAudioTracks().forEach((t) => (t.enabled = true));
  }

  /** @returns {boolean} */
  isAudioMuted() {
    const tracks = this.#localStream?.getAudioTracks() ?? [];
    return tracks.length > 0 && tracks.every((t) => !t.enabled);
  }

  /**
   * Turn the camera off: the video track's `enabled = false`, so the browser keeps the
   * m=video section and sends black frames at a low rate — no renegotiation, no re-INVITE
   * towards SIP, and unmuteVideo() is instant.  Before the camera is acquired, or in a call
   * without a camera (voice call, receive-only video), there is no track and it does nothing.
   */
  muteVideo() {
    this.#localStream?.getVideoTracks().forEach((t) => (t.enabled = false));
  }

  /** Turn the camera back on (the same track; nothing is renegotiated). */
  unmuteVideo() {
    this.#localStream?.getVideoTracks().forEach((t) => (t.enabled = true));
  }

  /**
   * True only while a camera track exists and is disabled: false in a call without a camera,
   * so `if (call.isVideoMuted()) call.unmuteVideo(); else call.muteVideo();` is safe anywhere.
   * @returns {boolean}
   */
  isVideoMuted() {
    const tracks = this.#localStream?.getVideoTracks() ?? [];
    return tracks.length > 0 && tracks.every((t) => !t.enabled);
  }

  /**
   * Send another microphone (a `deviceId` of {@link getMediaDevices}' `audioInputs`): a new
   * track replaces the sent one on its RTCRtpSender (`replaceTrack`, no renegotiation, nothing
   * toward SIP); a muted call stays muted.  Rejects when the call has no microphone track yet
   * or the device cannot be opened (the old track then goes on).
   * @param {string} deviceId
   * @returns {Promise<void>}
   */
  switchMic(deviceId) {
    return this.#switchTrack("audio", deviceId);
  }

  /**
   * Send another camera (a `deviceId` of `videoInputs`), as switchMic(): only in a call that
   * sends a camera.
   * @param {string} deviceId
   * @returns {Promise<void>}
   */
  switchCam(deviceId) {
    return this.#switchTrack("video", deviceId);
  }

  async #switchTrack(kind, deviceId) {
    const pc = this.#pc;
    const stream = this.#localStream;
    const old = kind === "audio" ? stream?.getAudioTracks()[0] : stream?.getVideoTracks()[0];
    const sender = old && pc ? pc.getSenders().find((s) => s.track === old) : undefined;
    if (!sender) throw new Error(`switch${kind === "audio" ? "Mic" : "Cam"}() needs a call that sends a ${kind === "audio" ? "microphone" : "camera"}`);
    if (typeof deviceId !== "string" || !deviceId) throw new TypeError("deviceId must be a device's id (getMediaDevices())");
    const fresh = await globalThis.navigator.mediaDevices.getUserMedia({ [kind]: { deviceId: { exact: deviceId } } });
    const track = fresh.getTracks().find((t) => t.kind === kind);
    if (!track || this.#pc !== pc || this.#terminal()) {
      fresh.getTracks().forEach((t) => t.stop());
      throw new Error("the call ended, or the device gave no track");
    }
    track.enabled = old.enabled;
    await sender.replaceTrack(track);
    stream.removeTrack(old);
    stream.addTrack(track);
    old.stop();
  }

  /**
   * The far end's volume, 0 (silent) to 100, on the element remote media plays through
   * (`HTMLMediaElement.volume`); kept for an element made later.
   * @param {number} volume
   */
  setVolume(volume) {
    const value = Number(volume);
    if (!Number.isFinite(value) || value < 0 || value > 100) throw new RangeError("volume must be from 0 to 100");
    this.#volume = value;
    if (this.#remoteElement) this.#remoteElement.volume = value / 100;
  }

  /** @returns {number} the far end's volume, 0 to 100 (100 until setVolume()) */
  getVolume() {
    if (this.#remoteElement) return Math.round(this.#remoteElement.volume * 100);
    return this.#volume ?? 100;
  }

  /**
   * Play the far end through another output (an `audioOutputs` deviceId) with
   * `HTMLMediaElement.setSinkId`; rejects, with a clear error, in a browser without it.
   * @param {string} deviceId
   * @returns {Promise<void>}
   */
  async setAudioOutputId(deviceId) {
    if (typeof HTMLMediaElement === "undefined" || typeof HTMLMediaElement.prototype.setSinkId !== "function") {
      throw new Error("this browser cannot choose the audio output (no HTMLMediaElement.setSinkId)");
    }
    this.#sinkId = String(deviceId ?? "");
    if (this.#remoteElement) await this.#remoteElement.setSinkId(this.#sinkId);
  }

  /**
   * Restart ICE: a new offer with new ICE credentials (`createOffer({iceRestart: true})`) goes
   * to the gateway in `restartIce` with its complete, freshly gathered candidates, and the
   * gateway's answer is applied.  Why: after a network change (Wi-Fi to LTE, a new address)
   * the old candidate pair is dead; a restart finds a path from where the browser is now, and
   * media resumes on the same call — nothing changes on the SIP side.  The SDK does this by
   * itself when the call's `iceConnectionState` goes `failed` or stays `disconnected` for 2 s;
   * call it yourself when the page knows the network changed (`online` events).  Works for
   * calls the page placed and calls it answered; standard WebRTC only.  While the session is
   * RECONNECTING the request waits for the new socket.  Calls while one is under way share it.
   * @returns {Promise<void>} resolves once the gateway's answer is applied; rejects (and the
   *   call goes on as it was, the offer rolled back) when the call has no complete
   *   offer/answer yet or is over, or the gateway refuses (RpcError)
   */
  restartIce() {
    if (!this.#iceRestart) {
      this.#iceRestart = this.#restartIce().finally(() => {
        this.#iceRestart = null;
      });
    }
    return this.#iceRestart;
  }

  async #restartIce() {
    const pc = this.#pc;
    if (!pc || this.#terminal() || this.#ending) {
      throw new Error(`restartIce() needs a call with media; the call is ${this.#status}`);
    }
    if (!this.#sent || pc.signalingState !== "stable" || !pc.currentRemoteDescription) {
      throw new Error("restartIce() needs a call whose offer and answer are complete");
    }
    const gathering = nextGathering(pc, this.#internals.iceGatheringTimeout);
    let offered = false;
    try {
      await pc.setLocalDescription(await pc.createOffer({ iceRestart: true }));
      offered = true;
      await gathering.done;
      if (this.#pc !== pc) throw new Error("the call ended during the ICE restart");
      const result = await this.#internals.request("restartIce", { callId: this.#id, sdp: pc.localDescription.sdp });
      if (this.#pc !== pc) throw new Error("the call ended during the ICE restart");
      if (typeof result?.sdp !== "string") throw new Error("the gateway's restartIce result has no sdp");
      await pc.setRemoteDescription({ type: "answer", sdp: result.sdp });
    } catch (err) {
      gathering.cancel();
      // Back to the last offer/answer, so the call goes on and a later restart can start.
      if (offered && this.#pc === pc && pc.signalingState === "have-local-offer") {
        await pc.setLocalDescription({ type: "rollback" }).catch(() => {});
      }
      throw err;
    }
  }

  /**
   * WebRTC statistics of the call (null once media is released).
   * @param {(stats: RTCStatsReport|null) => void} [callback] WCS style; the promise works too
   * @returns {Promise<RTCStatsReport|null>}
   */
  async getStats(callback) {
    const stats = this.#pc ? await this.#pc.getStats() : null;
    if (typeof callback === "function") callback(stats);
    return stats;
  }

  // -- called by the session ---------------------------------------------------------------

  /**
   * @package a callStatus notification for this call.  Statuses are handled in order, one at
   * a time: when one carries the gateway's SDP it is applied first, so by the time handlers
   * see e.g. ESTABLISHED the remote stream exists (getRemoteStream()).
   */
  _onStatus(params) {
    this.#statusQueue = this.#statusQueue.then(() => this.#handleStatus(params));
  }

  async #handleStatus(params) {
    if (this.#terminal()) return;
    if (params.sdp && this.#pc && !this.#remoteApplied && !this.#incoming) {
      this.#remoteApplied = true;
      try {
        await this.#pc.setRemoteDescription({ type: "answer", sdp: params.sdp });
      } catch (err) {
        this.#errorInfo = String(err?.message ?? err);
        if (!this.#terminal()) {
          this.#internals.request("hangup", { callId: this.#id }).catch(() => {});
          this.#finish(CALL_STATUS.FAILED, { info: "Local error: the gateway's SDP was not accepted" });
        }
        return;
      }
      this.#noteNegotiatedVideo();
      if (this.#terminal()) return;
    }
    if (params.caller) this.#caller = params.caller;
    if (params.callee) this.#callee = params.callee;
    if (TERMINAL_CALL_STATUSES.includes(params.status)) {
      this.#finish(params.status, params);
    } else if (params.status && params.status !== this.#status) {
      this.#setStatus(params);
    } else {
      this.#info = params.info ?? this.#info;
      this.#sipStatus = params.sipStatus ?? this.#sipStatus;
    }
  }

  /** @package transferStatus / dtmf / callStats notifications, emitted under their method name
   * (the {@link CALL_EVENT} values) */
  _onEvent(method, params) {
    this._emit(method, this, params);
  }

  /**
   * The call's SIP ladder so far: entries `{seq, time, from, to, label, summary, message,
   * retransmission}` (`from`/`to`: "browser", "gateway", "sip"), oldest first, as the
   * gateway sent them (docs/websocket-api.md, sipLadder; SIP messages redacted).
   * @returns {object[]}
   */
  ladder() {
    return [...this.#ladder];
  }

  /** @package a sipLadder entry of this call: kept, then {@link CALL_EVENT}.LADDER */
  _onLadder(entry) {
    if (!entry || typeof entry !== "object") return;
    if (this.#ladder.length >= LADDER_KEPT) this.#ladder.splice(0, 1);
    this.#ladder.push(entry);
    this._emit(CALL_EVENT.LADDER, this, entry);
  }

  /** @package transferRequest: the far end wants to transfer this call; handlers answer */
  _onTransferRequest(params) {
    if (this.#terminal()) return;
    this.#transferRequest?._end("expired");
    const request = new TransferRequest(params, (accept) =>
      this.#internals.request("answerTransfer", { callId: this.#id, accept }).then(() => undefined));
    this.#transferRequest = request;
    this._emit(CALL_EVENT.TRANSFER_REQUEST, this, request);
  }

  /** @returns {TransferRequest|null} the far end's transfer request still waiting for an answer */
  pendingTransferRequest() {
    return this.#transferRequest?.state() === "pending" ? this.#transferRequest : null;
  }

  /** @package the session closed under the call */
  _sessionEnded() {
    if (!this.#terminal()) this.#finish(CALL_STATUS.FAILED, { info: "Session closed" });
  }

  /** @package the session could not be resumed: the gateway has ended its calls */
  _sessionLost() {
    if (!this.#terminal()) this.#finish(CALL_STATUS.FINISH, { info: "Session lost" });
  }

  // -- internals -----------------------------------------------------------------------------

  #wants(kind) {
    const constraints = this.#options.constraints ?? { audio: true, video: false };
    return Boolean(constraints[kind]);
  }

  /** Once offer and answer are both applied, remember whether video was negotiated (kept
   * after the call ends and the PeerConnection is gone). */
  #noteNegotiatedVideo() {
    const pc = this.#pc;
    if (!pc?.currentRemoteDescription || !pc.currentLocalDescription) return;
    this.#videoNegotiated = this.#videoTransceivers().some(
      (t) => t.currentDirection && t.currentDirection !== "inactive" && t.currentDirection !== "stopped");
  }

  /** Video transceivers of the PeerConnection (none before media is prepared). */
  #videoTransceivers() {
    if (!this.#pc) return [];
    return this.#pc.getTransceivers().filter((t) => (t.sender.track?.kind ?? t.receiver.track?.kind) === "video" && !t.stopped);
  }

  #terminal() {
    return TERMINAL_CALL_STATUSES.includes(this.#status);
  }

  #setStatus(event) {
    this.#status = event.status;
    this.#info = event.info ?? "";
    this.#sipStatus = event.sipStatus ?? null;
    this._emit(event.status, this, event);
  }

  #finish(status, event) {
    clearTimeout(this.#hangupTimer);
    this.#transferRequest?._end("ended");
    this.#releaseMedia();
    this.#internals.forget(this);
    this.#setStatus({ ...event, status });
  }

  #failLocally(err) {
    this.#errorInfo = String(err?.message ?? err);
    if (this.#sent) this.#internals.request("hangup", { callId: this.#id }).catch(() => {});
    if (!this.#terminal()) this.#finish(CALL_STATUS.FAILED, { info: localErrorText(err), error: err });
  }

  /**
   * getUserMedia, PeerConnection, offer (or answer to `offer`), ICE gathering.
   * @returns {Promise<string|null>} the local SDP, or null when hangup() came meanwhile
   */
  async #prepareMedia(offer) {
    let constraints = this.#options.constraints ?? { audio: true, video: false };
    // An answer can only carry video where the offer has a video m-section: no camera else.
    const offerHasVideo = offer ? /^m=video [1-9]/m.test(offer) : true;
    if (constraints.video && !offerHasVideo) constraints = { ...constraints, video: false };
    const receiveVideo = offerHasVideo && (this.#options.receiveVideo ?? Boolean(constraints.video));
    const media = globalThis.navigator?.mediaDevices;
    if (!media?.getUserMedia) throw new Error("this browser has no getUserMedia (a secure context — https or localhost — is needed)");
    const stream = await media.getUserMedia(constraints);
    if (this.#ending || this.#terminal()) {
      stream.getTracks().forEach((t) => t.stop());
      return null;
    }
    this.#localStream = stream;
    let config;
    try {
      config = rtcConfiguration(this.#internals.iceServers(), this.#internals.mediaOptions,
        this.#options.iceTransportPolicy ?? this.#internals.iceTransportPolicy);
    } catch (err) {
      stream.getTracks().forEach((t) => t.stop());
      throw err;
    }
    const pc = new globalThis.RTCPeerConnection(config);
    this.#pc = pc;
    pc.ontrack = (e) => this.#onRemoteTrack(e);
    pc.addEventListener("iceconnectionstatechange", () => this.#onIceState(pc));
    if (offer) await pc.setRemoteDescription({ type: "offer", sdp: offer });
    for (const track of stream.getTracks()) {
      let transceiver;
      if (offer) {
        transceiver = pc.getTransceivers().find((t) => t.receiver.track?.kind === track.kind && !t.sender.track);
        if (transceiver) {
          await transceiver.sender.replaceTrack(track);
          transceiver.direction = "sendrecv";
          transceiver.sender.setStreams?.(stream);
        }
      }
      if (!transceiver) transceiver = pc.addTransceiver(track, { direction: "sendrecv", streams: [stream] });
      applyCodecPreferences(transceiver, track.kind, this.#options.codecs);
    }
    if (stream.getVideoTracks().length === 0) {
      // No camera: receive the far end's video only when asked; else decline it (an offered
      // video m-section answered inactive: Chromium answers a=inactive even for a stopped
      // transceiver, so that is what a far end sees either way) or offer none.
      const unused = pc.getTransceivers().filter((t) => t.receiver.track?.kind === "video" && !t.sender.track);
      for (const t of unused) t.direction = receiveVideo ? "recvonly" : "inactive";
      if (!offer && receiveVideo) {
        applyCodecPreferences(pc.addTransceiver("video", { direction: "recvonly" }), "video", this.#options.codecs);
      }
    }
    this.#showLocalVideo(stream);
    const description = offer ? await pc.createAnswer() : await pc.createOffer();
    await pc.setLocalDescription(description);
    this.#noteNegotiatedVideo();
    await iceGatheringComplete(pc, this.#internals.iceGatheringTimeout);
    if (this.#ending || this.#terminal()) return null;
    return pc.localDescription.sdp;
  }

  /** The automatic ICE restart: at once on `failed`, after ICE_DISCONNECTED_GRACE on a
   * `disconnected` that does not heal by itself; the count starts over once ICE connects. */
  #onIceState(pc) {
    if (this.#pc !== pc) return;
    const state = pc.iceConnectionState;
    clearTimeout(this.#iceTimer);
    this.#iceTimer = null;
    if (state === "connected" || state === "completed") {
      this.#autoRestarts = 0;
    } else if (state === "failed") {
      this.#autoRestartIce(pc);
    } else if (state === "disconnected") {
      this.#iceTimer = setTimeout(() => this.#autoRestartIce(pc), ICE_DISCONNECTED_GRACE);
    }
  }

  #autoRestartIce(pc) {
    this.#iceTimer = null;
    if (this.#pc !== pc || this.#iceRestart || this.#autoRestarts >= AUTO_ICE_RESTARTS) return;
    if (pc.iceConnectionState !== "failed" && pc.iceConnectionState !== "disconnected") return;
    // A call still being set up has no answer to restart from: the gateway's timers decide.
    if (!this.#sent || !pc.currentRemoteDescription || this.#terminal() || this.#ending) return;
    this.#autoRestarts += 1;
    const again = () => {
      // A restart that did not help leaves the state where it was (no new event): retry later.
      const state = this.#pc === pc ? pc.iceConnectionState : "closed";
      if (state === "failed" || state === "disconnected") {
        clearTimeout(this.#iceTimer);
        this.#iceTimer = setTimeout(() => this.#autoRestartIce(pc), ICE_RETRY_DELAY * this.#autoRestarts);
      }
    };
    this.restartIce().then(again, (err) => {
      console.warn("wcsgw: automatic ICE restart failed", err);
      again();
    });
  }

  #onRemoteTrack(event) {
    if (!this.#remoteStream) this.#remoteStream = event.streams?.[0] ?? new MediaStream();
    if (!this.#remoteStream.getTracks().includes(event.track)) this.#remoteStream.addTrack(event.track);
    const element = this.#remoteMediaElement(event.track.kind === "video");
    if (element && element.srcObject !== this.#remoteStream) {
      element.srcObject = this.#remoteStream;
      element.play?.().catch(() => {}); // autoplay may need the user's click; the call button was one
    }
  }

  /** The element remote media plays through: the given one, one created inside the given
   * container, or a hidden <audio> of our own. */
  #remoteMediaElement(video) {
    if (this.#remoteElement) return this.#remoteElement;
    if (typeof document === "undefined") return null;
    const display = this.#options.remoteVideoDisplay;
    let element;
    if (isMediaElement(display)) {
      element = display;
    } else {
      element = document.createElement(video || this.#wants("video") ? "video" : "audio");
      element.autoplay = true;
      element.playsInline = true;
      (display ?? document.body).appendChild(element);
      if (!display) element.hidden = true;
      this.#created.push(element);
    }
    this.#remoteElement = element;
    if (this.#volume !== null) element.volume = this.#volume / 100;
    if (this.#sinkId !== null) element.setSinkId(this.#sinkId).catch(() => {});
    return element;
  }

  #showLocalVideo(stream) {
    const display = this.#options.localVideoDisplay;
    if (!display || stream.getVideoTracks().length === 0 || typeof document === "undefined") return;
    let element = display;
    if (!isMediaElement(display)) {
      element = document.createElement("video");
      display.appendChild(element);
      this.#created.push(element);
    }
    element.muted = true;
    element.autoplay = true;
    element.playsInline = true;
    element.srcObject = stream;
  }

  /** Stop the tracks, close the PeerConnection, detach and remove media elements. */
  #releaseMedia() {
    clearTimeout(this.#iceTimer);
    this.#iceTimer = null;
    this.#localStream?.getTracks().forEach((t) => t.stop());
    if (this.#pc) {
      this.#pc.ontrack = null;
      this.#pc.close();
    }
    this.#pc = null;
    if (this.#remoteElement) this.#remoteElement.srcObject = null;
    for (const element of this.#created) {
      element.srcObject = null;
      element.remove();
    }
    this.#created = [];
    this.#remoteElement = null;
  }
}

/**
 * The devices a page may offer (WCS's `getMediaDevices`): `enumerateDevices()` sorted into
 * `{audioInputs, audioOutputs, videoInputs}`, each `[{deviceId, label, groupId}]`.  Labels are
 * empty until the page had microphone/camera permission (the browser's rule); a browser that
 * cannot choose outputs lists none.
 * @returns {Promise<{audioInputs: object[], audioOutputs: object[], videoInputs: object[]}>}
 */
export async function getMediaDevices() {
  const media = globalThis.navigator?.mediaDevices;
  if (!media?.enumerateDevices) throw new Error("this browser has no mediaDevices.enumerateDevices");
  const out = { audioInputs: [], audioOutputs: [], videoInputs: [] };
  const lists = { audioinput: out.audioInputs, audiooutput: out.audioOutputs, videoinput: out.videoInputs };
  for (const d of await media.enumerateDevices()) {
    lists[d.kind]?.push({ deviceId: d.deviceId, label: d.label, groupId: d.groupId });
  }
  return out;
}

/**
 * Open a session with the gateway.  The WebSocket connects, the SDK sends `connect` with the
 * SIP options, and the session fires ESTABLISHED (then REGISTERED or AUTHENTICATION_FAIL when
 * registration was asked for), or FAILED.
 * @param {SessionOptions} options
 * @returns {Session}
 */
export function createSession(options) {
  return new Session(options);
}
