// wcsgw Phone UI: a softphone page on the Web SDK (./sdk/wcsgw.js).
//
// Everything here goes through the public SDK, so the page doubles as its most complete
// example.  The controls carry the accessible names docs/contract.md fixes (tests and people find
// them the same way); controls are enabled only in the states they work in.  In a call the
// dial pad sends DTMF (RFC 2833 through the gateway), Hold/Unhold re-INVITE the SIP side, and
// "Transfer to" + Transfer make a blind transfer whose progress is shown under the form.
// When the far end asks to transfer the call (a REFER), the target is shown with the buttons
// "Accept transfer" and "Refuse transfer"; no answer in time is a refusal.
// When the WebSocket drops the SDK reconnects by itself: the session status says
// "Reconnecting…" and the call panel, its controls and the media stay as they are (no dialog,
// no hangup); a Hangup meanwhile is sent once the session is resumed.
// "Video call" adds the camera: the far end's video fills the video area above, our own camera
// is the small picture in its corner; an incoming call with video can be answered with the
// camera ("Answer with video") or audio only ("Answer").

import * as wcsgw from "./sdk/wcsgw.js";
import { LadderView } from "./ladder.js";
import { drawQuality, LEGS, QualityHistory } from "./graphs.js";
import { Lines } from "./lines.js";
import { ChatPanel } from "./chat.js";
import { DeviceControls } from "./devices.js";

const { SESSION_STATUS, CALL_STATUS, CALL_EVENT, TRANSFER_STATUS } = wcsgw;

/** The camera asked for in video calls (the browser picks the nearest it has). */
const CAMERA = { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 30 } };
/** How many of the last DTMF digits sent/received the call panel shows. */
const DTMF_SHOWN = 32;
/** Fields kept between visits (never the password). */
const REMEMBERED = ["login", "auth-name", "display-name", "domain", "outbound-proxy", "port", "callee"];
const STORAGE_KEY = "wcsgw.phone";

const $ = (id) => document.getElementById(id);
const ui = {
  sessionStatus: $("session-status"),
  error: $("error"),
  accountForm: $("account-form"),
  login: $("login"),
  authName: $("auth-name"),
  password: $("password"),
  domain: $("domain"),
  outboundProxy: $("outbound-proxy"),
  port: $("port"),
  register: $("register"),
  loginButton: $("login-button"),
  logoutButton: $("logout-button"),
  callDisplay: document.querySelector(".call-display"),
  callStatus: $("call-status"),
  callPeer: $("call-peer"),
  timer: $("call-timer"),
  level: $("level"),
  incoming: $("incoming"),
  incomingText: $("incoming-text"),
  dtmfSent: $("dtmf-sent"),
  dtmfReceived: $("dtmf-received"),
  dialForm: $("dial-form"),
  callee: $("callee"),
  backspace: $("backspace"),
  voiceCall: $("voice-call"),
  videoCall: $("video-call"),
  hangup: $("hangup"),
  answer: $("answer"),
  decline: $("decline"),
  mute: $("mute"),
  camera: $("camera"),
  cameraOff: $("camera-off"),
  hold: $("hold"),
  unhold: $("unhold"),
  record: $("record"),
  transferForm: $("transfer-form"),
  transferTarget: $("transfer-target"),
  transfer: $("transfer"),
  transferStatus: $("transfer-status"),
  transferRequest: $("transfer-request"),
  transferRequestText: $("transfer-request-text"),
  acceptTransfer: $("accept-transfer"),
  refuseTransfer: $("refuse-transfer"),
  remoteAudio: $("remote-audio"),
  answerVideo: $("answer-video"),
  videoArea: $("video-area"),
  remoteVideo: $("remote-video"),
  localVideo: $("local-video"),
  videoNote: $("video-note"),
  videoPeer: $("video-peer"),
  videoTimer: $("video-timer"),
  ladderPanel: $("ladder-panel"),
  quality: $("quality"),
};

/** Wire param names -> the label people see, for "check this field" errors. */
const FIELD_LABELS = {
  sipLogin: ["Login", ui.login],
  sipAuthenticationName: ["Authentication name", ui.authName],
  sipPassword: ["Password", ui.password],
  sipDomain: ["Domain", ui.domain],
  sipOutboundProxy: ["Outbound proxy", ui.outboundProxy],
  sipPort: ["Port", ui.port],
  callee: ["Callee", ui.callee],
  target: ["Transfer to", ui.transferTarget],
};

/** Plain-language status lines (the status name itself is always shown first). */
const SESSION_TEXT = {
  PENDING: "connecting…",
  CONNECTED: "signing in…",
  ESTABLISHED: "connected",
  REGISTERED: "registered, ready for calls",
  UNREGISTERED: "not registered",
  AUTHENTICATION_FAIL: "wrong login or password",
  DISCONNECTED: "logged out",
  FAILED: "connection failed",
  RECONNECTING: "Reconnecting…",
};
const CALL_TEXT = {
  NEW: "",
  PENDING: "starting…",
  TRYING: "calling…",
  RING: "ringing…",
  RING_MEDIA: "ringing…",
  SESSION_PROGRESS: "connecting…",
  ESTABLISHED: "in call",
  HOLD: "on hold",
  BUSY: "busy",
  FINISH: "call ended",
  FAILED: "call failed",
};
/** Transfer progress lines ({target} is the "Transfer to" text). */
const TRANSFER_TEXT = {
  REQUESTED: "asking the far end to call {target}…",
  ACCEPTED: "the far end accepted, calling {target}…",
  TRYING: "calling {target}…",
  COMPLETED: "done: the far end is now talking to {target}",
  FAILED: "{target} was not reached; the call goes on",
};

/** Session statuses after which the form is free again (AUTHENTICATION_FAIL: see onSessionStatus). */
const SESSION_OVER = [SESSION_STATUS.DISCONNECTED, SESSION_STATUS.FAILED, SESSION_STATUS.AUTHENTICATION_FAIL];

/** @type {wcsgw.Session|null} */
let session = null;
/** @type {wcsgw.Call|null} */
let call = null;
/** The gateway records the call (the Record button reads "Stop recording"). */
let recordingOn = false;
/** The call whose panel is shown: stays after the call ends (a transfer's last word). */
let shownCall = null;
let registerWanted = false;
let transferTarget = "";
/** @type {wcsgw.TransferRequest|null} the far end's transfer request on screen */
let shownTransferRequest = null;
/** Every call of the session beyond the shown one: call waiting, Switch to, the lines' transfer. */
const lines = new Lines({
  current: () => call,
  show: showCall,
  incoming: onIncomingCall,
  refresh: refreshControls,
  error: (text) => showError(text),
});

// -- small helpers -------------------------------------------------------------------------------

function showError(text, field) {
  clearFieldErrors();
  if (!text) {
    ui.error.hidden = true;
    ui.error.textContent = "";
    return;
  }
  ui.error.textContent = text;
  ui.error.hidden = false;
  if (field) {
    field.setAttribute("aria-invalid", "true");
    field.setAttribute("aria-describedby", "error");
    field.focus();
  }
}

function clearFieldErrors() {
  for (const el of document.querySelectorAll("[aria-invalid]")) {
    el.removeAttribute("aria-invalid");
    el.removeAttribute("aria-describedby");
  }
}

/** An SDK/gateway error as a sentence; -32602 errors point at the field by its label. */
function explain(err, what) {
  const field = err?.data?.field;
  if (err?.code === -32602 && field && FIELD_LABELS[field]) {
    const [label, element] = FIELD_LABELS[field];
    const problem = String(err.message).replace(/^Invalid params:\s*\S+\s*/, "");
    return { text: `${what}: check ${label} — it ${problem}.`, element };
  }
  if (field && FIELD_LABELS[field]) {
    return { text: `${what}: ${err.message} (${FIELD_LABELS[field][0]})`, element: FIELD_LABELS[field][1] };
  }
  return { text: `${what}: ${err?.message ?? err}`, element: null };
}

function setStatus(element, status, detail) {
  element.replaceChildren();
  const name = document.createElement("strong");
  name.textContent = status;
  element.append(name);
  if (detail) element.append(document.createTextNode(` · ${detail}`));
  element.dataset.state = status.toLowerCase();
}

function remember() {
  try {
    const data = Object.fromEntries(REMEMBERED.map((id) => [id, $(id).value]));
    data.register = ui.register.checked;
    localStorage.setItem(STORAGE_KEY, JSON.stringify(data));
  } catch {
    /* private mode: nothing to remember */
  }
}

function restore() {
  try {
    const data = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? "{}");
    for (const id of REMEMBERED) if (typeof data[id] === "string") $(id).value = data[id];
    if (typeof data.register === "boolean") ui.register.checked = data.register;
  } catch {
    /* nothing stored */
  }
}

/** `?iceTransportPolicy=relay` in the page URL sends media only through the TURN servers the
 * gateway hands out (`[webrtc] ice_servers`): to try the TURN setup from a network where the
 * gateway is reachable directly.  Absent: the browser picks the best path ("all"). */
function icePolicy() {
  const value = new URLSearchParams(location.search).get("iceTransportPolicy");
  return value === "relay" || value === "all" ? value : undefined;
}

function serverUrl() {
  const override = new URLSearchParams(location.search).get("server");
  return override || new URL("ws", location.href).href;
}

// -- enabling controls ---------------------------------------------------------------------------

function sessionReady() {
  if (!session) return false;
  const status = session.status();
  if (status === SESSION_STATUS.REGISTERED) return true;
  // With registration asked for, wait for REGISTERED (as the WCS demos do); test lines and
  // register-less accounts can call as soon as the session is ESTABLISHED.
  return status === SESSION_STATUS.ESTABLISHED && !registerWanted;
}

function refreshControls() {
  const connected = session !== null;
  const active = call !== null;
  const status = call?.status();
  const incomingWaiting = active && call.isIncoming() && (status === CALL_STATUS.NEW || status === CALL_STATUS.RING);
  const talking = status === CALL_STATUS.ESTABLISHED || status === CALL_STATUS.HOLD;

  for (const el of [ui.login, ui.authName, ui.password, $("display-name"), ui.domain, ui.outboundProxy, ui.port, ui.register]) {
    el.disabled = connected;
  }
  ui.loginButton.disabled = connected;
  document.body.dataset.connected = String(connected);
  ui.logoutButton.disabled = !connected;

  ui.voiceCall.disabled = !sessionReady() || (active && !lines.canPlace()); // a second line: lines.js
  ui.videoCall.disabled = !sessionReady() || active;
  ui.hangup.disabled = !active || incomingWaiting;
  ui.answer.disabled = !incomingWaiting;
  ui.answerVideo.hidden = !(incomingWaiting && call.hasVideo());
  ui.answerVideo.disabled = ui.answerVideo.hidden;
  ui.decline.disabled = !incomingWaiting;
  ui.mute.disabled = !active || incomingWaiting;
  // A video call is one whose video area is shown (placeCall/answerCall with the camera).
  ui.camera.hidden = !active || ui.videoArea.hidden;
  ui.camera.disabled = ui.camera.hidden || incomingWaiting;
  ui.hold.disabled = status !== CALL_STATUS.ESTABLISHED;
  ui.unhold.disabled = status !== CALL_STATUS.HOLD;
  ui.record.disabled = !talking;
  ui.transferTarget.disabled = !talking;
  ui.transfer.disabled = !talking || !ui.transferTarget.value.trim();
  ui.incoming.hidden = !incomingWaiting;
  ui.callDisplay.dataset.state = status ? status.toLowerCase() : "idle";
  if (!active) {
    showRecording(false);
    ui.mute.setAttribute("aria-pressed", "false");
    showCamera(true);
  }
  lines.render();
}

// -- call timer and audio level ------------------------------------------------------------------

const timer = {
  started: 0,
  handle: 0,
  start(since = Date.now()) {
    if (this.handle) return;
    this.started = since;
    this.tick();
    this.handle = setInterval(() => this.tick(), 500);
  },
  tick() {
    const seconds = Math.floor((Date.now() - this.started) / 1000);
    const h = Math.floor(seconds / 3600);
    const m = String(Math.floor((seconds % 3600) / 60)).padStart(2, "0");
    const s = String(seconds % 60).padStart(2, "0");
    ui.timer.textContent = h ? `${h}:${m}:${s}` : `${m}:${s}`;
    ui.videoTimer.textContent = ui.timer.textContent;
  },
  stop() {
    clearInterval(this.handle);
    this.handle = 0;
  },
  reset() {
    this.stop();
    ui.timer.textContent = "00:00";
    ui.videoTimer.textContent = "";
  },
};

const meter = {
  /** @type {AudioContext|null} */
  context: null,
  source: null,
  analyser: null,
  frame: 0,
  stream: null,
  start(stream) {
    if (!stream || this.stream === stream || stream.getAudioTracks().length === 0) return;
    this.stop();
    const Context = window.AudioContext ?? window.webkitAudioContext;
    if (!Context) return;
    this.context ??= new Context();
    this.context.resume?.().catch(() => {});
    this.stream = stream;
    this.source = this.context.createMediaStreamSource(stream);
    this.analyser = this.context.createAnalyser();
    this.analyser.fftSize = 1024;
    this.source.connect(this.analyser); // not to the destination: the <audio> element plays it
    const samples = new Float32Array(this.analyser.fftSize);
    const draw = () => {
      this.analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const x of samples) sum += x * x;
      const rms = Math.sqrt(sum / samples.length);
      const db = 20 * Math.log10(rms || 1e-9); // -60 dBFS .. 0 dBFS -> 0 .. 1
      ui.level.value = Math.max(0, Math.min(1, (db + 60) / 60));
      this.frame = requestAnimationFrame(draw);
    };
    draw();
  },
  stop() {
    cancelAnimationFrame(this.frame);
    this.frame = 0;
    this.source?.disconnect();
    this.source = null;
    this.analyser = null;
    this.stream = null;
    ui.level.value = 0;
  },
};

// -- a short local key tone, so the dial pad feels like one ---------------------------------------

const DTMF_FREQUENCIES = {
  1: [697, 1209], 2: [697, 1336], 3: [697, 1477],
  4: [770, 1209], 5: [770, 1336], 6: [770, 1477],
  7: [852, 1209], 8: [852, 1336], 9: [852, 1477],
  "*": [941, 1209], 0: [941, 1336], "#": [941, 1477],
};

function keyTone(key) {
  const Context = window.AudioContext ?? window.webkitAudioContext;
  if (!Context || !DTMF_FREQUENCIES[key]) return;
  meter.context ??= new Context();
  const ctx = meter.context;
  const gain = ctx.createGain();
  gain.gain.setValueAtTime(0.05, ctx.currentTime);
  gain.gain.exponentialRampToValueAtTime(0.0001, ctx.currentTime + 0.12);
  gain.connect(ctx.destination);
  for (const f of DTMF_FREQUENCIES[key]) {
    const osc = ctx.createOscillator();
    osc.frequency.value = f;
    osc.connect(gain);
    osc.start();
    osc.stop(ctx.currentTime + 0.12);
  }
}

// -- session -------------------------------------------------------------------------------------

function logIn(event) {
  event.preventDefault();
  showError("");
  const domain = ui.domain.value.trim();
  if (domain && !ui.login.value.trim()) {
    showError("Log in: enter your Login (or clear Domain to use the built-in test lines).", ui.login);
    return;
  }
  remember();
  registerWanted = Boolean(domain) && ui.register.checked;
  try {
    session = wcsgw.createSession({
      urlServer: serverUrl(),
      iceTransportPolicy: icePolicy(),
      sipOptions: {
        login: ui.login.value.trim(),
        authenticationName: ui.authName.value.trim(),
        password: ui.password.value,
        domain,
        outboundProxy: ui.outboundProxy.value.trim(),
        port: ui.port.value.trim() || 5060,
        registerRequired: ui.register.checked,
        visibleName: $("display-name").value.trim(), // the From display name of our calls
      },
    });
  } catch (err) {
    session = null;
    showError(`Log in: ${err.message}`);
    return;
  }
  setStatus(ui.sessionStatus, SESSION_STATUS.PENDING, SESSION_TEXT.PENDING);
  for (const status of Object.values(SESSION_STATUS)) {
    if (status !== SESSION_STATUS.INCOMING_CALL) session.on(status, onSessionStatus);
  }
  session.on(SESSION_STATUS.INCOMING_CALL, onIncomingCall);
  chat.attach(session); // SIP MESSAGE both ways
  refreshControls();
}

function onSessionStatus(s, event = {}) {
  if (s !== session) return; // an old session's late event
  const status = s.status();
  if (status === SESSION_STATUS.WARN) return;
  // Reconnecting says what a person needs to know (the call goes on), not the close code.
  let detail = event.info && event.info !== SESSION_TEXT[status] ? event.info : SESSION_TEXT[status];
  if (status === SESSION_STATUS.RECONNECTING) detail = `${SESSION_TEXT[status]}${call ? " the call goes on" : ""}`;
  setStatus(ui.sessionStatus, status, detail);
  if (SESSION_OVER.includes(status)) {
    // A refused login is the end of that session: close it as Log out would, so the fields
    // can be corrected and Log in pressed again at once (first, so the field the message
    // below points at is enabled and focused).
    session = null;
    if (status === SESSION_STATUS.AUTHENTICATION_FAIL) s.disconnect();
    endCallUi();
  }
  refreshControls();
  if (status === SESSION_STATUS.AUTHENTICATION_FAIL) {
    showError(`Registration failed${event.sipStatus ? ` (${event.sipStatus})` : ""}: check Login, Authentication name and Password.`, ui.password);
  } else if (status === SESSION_STATUS.FAILED) {
    const { text, element } = event.error ? explain(event.error, "Log in") : { text: `Connection failed: ${event.info || "the gateway cannot be reached"}`, element: null };
    showError(text, element);
  } else if (status === SESSION_STATUS.ESTABLISHED || status === SESSION_STATUS.REGISTERED) {
    showError("");
  }
  refreshControls();
  if (sessionReady() && !call) ui.callee.focus(); // not in a call: keys typed there are DTMF
}

function logOut() {
  showError("");
  session?.disconnect();
}

// -- calls ---------------------------------------------------------------------------------------

function watchCall(c, remoteElement = null) {
  call = c;
  shownCall = c;
  timer.reset();
  showDigits(ui.dtmfSent, "Sent DTMF", "");
  showDigits(ui.dtmfReceived, "Received DTMF", "");
  showTransfer(null);
  if (!watchedCalls.has(c)) { // a line shown again (Switch to) keeps its one set of handlers
    watchedCalls.add(c);
    for (const status of Object.values(CALL_STATUS)) c.on(status, onCallStatus);
    c.on(CALL_EVENT.DTMF, onDtmf);
    c.on(CALL_EVENT.TRANSFER_STATUS, onTransferStatus);
    c.on(CALL_EVENT.TRANSFER_REQUEST, onTransferRequest);
    c.on(CALL_EVENT.LADDER, onLadder);
    c.on(CALL_EVENT.STATS, onCallStats);
  }
  ladder.set(c.ladder());
  ui.ladderPanel.hidden = false;
  quality.clear();
  ui.quality.hidden = true;
  showTransferRequest(null);
  ui.mute.setAttribute("aria-pressed", String(c.isAudioMuted()));
  showCamera(true);
  ui.callPeer.textContent = c.isIncoming() ? `from ${c.caller()}` : `to ${c.callee()}`;
  lines.add(c, remoteElement);
  devices.attach(c);
}

const watchedCalls = new WeakSet();

/** Another line of the session takes the panel (lines.js: Switch to, or the line left when
 * the shown one ended), in its current status. */
function showCall(c) {
  watchCall(c);
  onCallStatus(c);
}

/** `?codecs=opus,PCMU` in the page URL restricts what the browser offers (for trying the
 * gateway's transcoding, or pinning a codec while debugging); absent: the browser's choice. */
function forcedCodecs() {
  const value = new URLSearchParams(location.search).get("codecs");
  return value ? value.split(",").map((name) => name.trim()).filter(Boolean) : undefined;
}

function placeCall(event, video = false) {
  event.preventDefault();
  showError("");
  const what = video ? "Video call" : "Voice call";
  const callee = ui.callee.value.trim();
  if (!callee) {
    showError(`${what}: enter a Callee (try echo or tone on the test lines).`, ui.callee);
    return;
  }
  if (!sessionReady() || (call && (video || !lines.canPlace()))) return; // a second line: voice
  remember();
  const previous = call; // held first (lines.js), the new call plays through its own element
  const lineAudio = previous ? lines.newAudio() : null;
  let c;
  try {
    c = session.createCall({
      callee,
      remoteVideoDisplay: lineAudio ?? (video ? ui.remoteVideo : ui.remoteAudio),
      localVideoDisplay: ui.localVideo,
      constraints: { audio: true, video: video ? CAMERA : false },
      codecs: forcedCodecs(),
    });
  } catch (err) {
    lineAudio?.remove();
    showError(`${what}: ${err.message}`);
    return;
  }
  watchCall(c, lineAudio);
  if (previous) {
    lines.holdOthers(c).then(() => c.status() === CALL_STATUS.NEW && c.call());
  } else {
    showVideo(video);
    c.call();
  }
  refreshControls();
}

// -- the video area ------------------------------------------------------------------------------

/** Show (or hide) the video area; it starts with "Waiting for video…" until a frame arrives. */
function showVideo(on) {
  ui.videoArea.hidden = !on;
  ui.videoArea.dataset.state = on ? "waiting" : "idle";
  ui.videoNote.textContent = on ? "Waiting for video…" : "";
  ui.videoPeer.textContent = on ? ui.callPeer.textContent : "";
  if (!on) {
    ui.remoteVideo.srcObject = null;
    ui.localVideo.srcObject = null;
  }
}

/** The Camera button and our preview: pressed and bright while the camera is on; off, the
 * preview is dimmed under "Camera off" (the far end sees black frames, see muteVideo()). */
function showCamera(on) {
  ui.camera.setAttribute("aria-pressed", String(on));
  ui.videoArea.dataset.camera = on ? "on" : "off";
  ui.cameraOff.hidden = on;
}

/** Keep the note over the remote picture in step with the call (hold, audio only). */
function updateVideo(c) {
  if (ui.videoArea.hidden) return;
  const status = c.status();
  const established = status === CALL_STATUS.ESTABLISHED || status === CALL_STATUS.HOLD;
  if (established && !c.hasVideo()) {
    ui.videoArea.dataset.state = "audio-only";
    ui.videoNote.textContent = "Audio only — the far end sends no video";
  } else if (status === CALL_STATUS.HOLD) {
    ui.videoArea.dataset.state = "hold";
    ui.videoNote.textContent = "On hold";
  } else if (ui.remoteVideo.videoWidth > 0) {
    ui.videoArea.dataset.state = "playing";
    ui.videoNote.textContent = "";
  } else {
    ui.videoArea.dataset.state = "waiting";
    ui.videoNote.textContent = established ? "Waiting for video…" : "Calling…";
  }
}

/** A 403 to an INVITE is most often a PBX that does not take the Domain as its own (typed
 * without the port it is configured with), so the plain reason would send people astray. */
function forbiddenHint(info) {
  const reason = (info || "Forbidden").replace(/^403\s*/, "");
  return `The PBX refused the call (403 ${reason}): it may not recognise the domain without its port — see docs/first-call.md troubleshooting`;
}

function onCallStatus(c, event = {}) {
  if (c !== call) return;
  const status = c.status();
  if (status !== CALL_STATUS.RING && status !== CALL_STATUS.NEW) ringer.stop();
  const info = event.info || c.getInfo();
  const detail = [CALL_TEXT[status], info && info !== CALL_TEXT[status] ? info : ""].filter(Boolean).join(" — ");
  setStatus(ui.callStatus, status, detail);
  if (status === CALL_STATUS.ESTABLISHED || status === CALL_STATUS.HOLD) timer.start(lines.answeredAt(c));
  if (c.getRemoteStream()) meter.start(c.getRemoteStream());
  updateVideo(c);
  if (status === CALL_STATUS.FAILED || status === CALL_STATUS.BUSY) {
    if (event.error) {
      const { text, element } = explain(event.error, "Call");
      showError(text, element);
    } else {
      showError(c.getSipStatus() === 403 ? forbiddenHint(info)
        : `Call ${status === CALL_STATUS.BUSY ? "busy" : "failed"}: ${info || "no reason given"}${c.getErrorInfo() ? ` (${c.getErrorInfo()})` : ""}`);
    }
  }
  if (wcsgw.TERMINAL_CALL_STATUSES.includes(status)) endCallUi();
  refreshControls();
}

/**
 * The ring of an incoming call: a classic 2 s on / 4 s off double tone (440 + 480 Hz), made
 * with WebAudio so nothing is loaded from the network.  Browsers may keep an AudioContext
 * suspended until the page was clicked; then the call still shows, silently.
 */
const ringer = {
  context: null,
  timer: null,
  start() {
    if (this.timer) return;
    const Context = window.AudioContext ?? window.webkitAudioContext;
    if (!Context) return;
    this.context = new Context();
    const burst = () => {
      const ctx = this.context;
      const gain = ctx.createGain();
      gain.gain.value = 0.08;
      gain.connect(ctx.destination);
      for (const frequency of [440, 480]) {
        const osc = ctx.createOscillator();
        osc.frequency.value = frequency;
        osc.connect(gain);
        osc.start();
        osc.stop(ctx.currentTime + 2);
      }
    };
    burst();
    this.timer = setInterval(burst, 6000);
    ui.incoming.dataset.ringing = "true";
  },
  stop() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.context?.close().catch(() => {});
    this.context = null;
    ui.incoming.dataset.ringing = "false";
  },
  get ringing() {
    return this.timer !== null;
  },
};

function endCallUi() {
  ringer.stop();
  timer.stop();
  meter.stop();
  showVideo(false);
  call = null;
  ui.transferTarget.value = "";
}

function onIncomingCall(c) {
  if (call) {
    lines.offerWaiting(c); // call waiting: answer holds this call, decline is busy
    return;
  }
  watchCall(c);
  const name = c.visibleName();
  const number = c.caller() || "unknown";
  const kind = c.hasVideo() ? "Incoming video call" : "Incoming call";
  ui.incomingText.textContent = name && name !== number
    ? `${kind} from ${name} (${number})`
    : `${kind} from ${number}`;
  ringer.start();
  setStatus(ui.callStatus, c.status(), "incoming call");
  refreshControls();
}

/** The Record button says what a click does: "Record", or "Stop recording" while recording. */
function showRecording(on) {
  recordingOn = on;
  ui.record.textContent = on ? "Stop recording" : "Record";
}

function requestAction(promise, what, onDone) {
  return promise.then(
    () => {
      onDone?.();
      refreshControls();
    },
    (err) => {
      const { text, element } = explain(err, what);
      showError(text, element);
    },
  );
}

// -- DTMF and transfer ---------------------------------------------------------------------------

/** "Sent DTMF: 123" in the call panel (hidden while empty); keeps the last DTMF_SHOWN digits. */
function showDigits(element, label, digits) {
  element.hidden = !digits;
  element.replaceChildren();
  if (!digits) return;
  const value = document.createElement("strong");
  value.textContent = digits.slice(-DTMF_SHOWN);
  element.append(`${label}: `, value);
}

function digitsOf(element) {
  return element.querySelector("strong")?.textContent ?? "";
}

/** The call's quality over the last 2 minutes, per leg; the graphs stay after it ends. */
const quality = new QualityHistory();

function onCallStats(c, stats) {
  if (c !== shownCall) return;
  quality.add(stats);
  for (const [leg, label] of LEGS) drawQuality($(`quality-${leg}`), quality.samples(leg), { label });
  ui.quality.hidden = false;
}

/** The shown call's SIP ladder; it stays drawn after the call ends, until the next one. */
const ladder = new LadderView($("ladder"));

function onLadder(c, entry) {
  if (c === shownCall) ladder.add(entry);
}

function onDtmf(c, event = {}) {
  if (c !== shownCall || !event.dtmf) return;
  showDigits(ui.dtmfReceived, "Received DTMF", digitsOf(ui.dtmfReceived) + event.dtmf);
}

/** The transfer line under the form: status name, then what it means; null hides it. */
function showTransfer(status, sipStatus) {
  ui.transferStatus.hidden = status === null;
  if (status === null) {
    ui.transferStatus.replaceChildren();
    return;
  }
  const text = (TRANSFER_TEXT[status] ?? status).replace("{target}", transferTarget || "the target");
  const name = document.createElement("strong");
  name.textContent = `Transfer ${status}`;
  ui.transferStatus.replaceChildren(name, ` · ${text}${sipStatus ? ` (${sipStatus})` : ""}`);
  ui.transferStatus.dataset.state = status.toLowerCase();
}

function onTransferStatus(c, event = {}) {
  if (c !== shownCall || !event.status) return;
  showTransfer(event.status, event.sipStatus);
  if (event.status === TRANSFER_STATUS.FAILED) {
    showError(`Transfer to ${transferTarget || "the target"} failed${event.sipStatus ? ` (${event.sipStatus})` : ""}.`);
  }
}

/** The far end's transfer request: its target and the two buttons; null hides it. */
function showTransferRequest(request) {
  shownTransferRequest = request;
  ui.transferRequest.hidden = request === null;
  ui.acceptTransfer.disabled = request === null;
  ui.refuseTransfer.disabled = request === null;
  ui.transferRequestText.textContent = request
    ? `The far end asks to transfer this call to ${request.target}`
    : "";
}

function onTransferRequest(c, request) {
  if (c !== shownCall) return;
  showTransferRequest(request);
  // Gone once answered, timed out (refused by the gateway) or the call ended.
  request.settled.then((state) => {
    if (shownTransferRequest === request) showTransferRequest(null);
    if (state === "expired" && shownCall === c) showError("The transfer request timed out and was refused.");
  });
}

function answerTransferRequest(accept) {
  const request = shownTransferRequest;
  if (!request) return;
  showError("");
  showTransferRequest(null);
  request[accept ? "accept" : "refuse"]().catch((err) => {
    const { text, element } = explain(err, accept ? "Accept transfer" : "Refuse transfer");
    showError(text, element);
  });
}

function startTransfer(event) {
  event.preventDefault();
  const target = ui.transferTarget.value.trim();
  if (!call || !target) return;
  showError("");
  transferTarget = target;
  const c = call;
  showTransfer("REQUESTED");
  c.transfer(target).then(
    () => refreshControls(),
    (err) => {
      if (shownCall === c) showTransfer(null);
      const { text, element } = explain(err, "Transfer");
      showError(text, element);
    },
  );
}

function pressKey(key) {
  keyTone(key);
  if (call && call.status() === CALL_STATUS.ESTABLISHED) {
    const c = call;
    requestAction(c.sendDTMF(key), "DTMF", () => {
      if (shownCall === c) showDigits(ui.dtmfSent, "Sent DTMF", digitsOf(ui.dtmfSent) + key);
    });
  } else if (!call || call.status() === CALL_STATUS.HOLD) { // held: dialling a second line
    ui.callee.value += key;
    ui.callee.focus();
  }
}

// -- wiring --------------------------------------------------------------------------------------

ui.accountForm.addEventListener("submit", logIn);
ui.logoutButton.addEventListener("click", logOut);
ui.dialForm.addEventListener("submit", (event) => placeCall(event, false));
ui.videoCall.addEventListener("click", (event) => placeCall(event, true));
ui.hangup.addEventListener("click", () => call?.hangup());
ui.decline.addEventListener("click", () => call?.hangup());
/** Answer the ringing call: audio only, or with the camera (offers with video only). */
function answerCall(video) {
  if (!call) return;
  showError("");
  showVideo(video);
  call.answer({
    remoteVideoDisplay: video ? ui.remoteVideo : ui.remoteAudio,
    localVideoDisplay: ui.localVideo,
    constraints: { audio: true, video: video ? CAMERA : false },
  });
  refreshControls(); // Camera shows for a video answer
}

ui.answer.addEventListener("click", () => answerCall(false));
ui.answerVideo.addEventListener("click", () => answerCall(true));
// The first decoded frame replaces "Waiting for video…" (and a size change keeps it right).
ui.remoteVideo.addEventListener("resize", () => call && updateVideo(call));
ui.remoteVideo.addEventListener("loadeddata", () => call && updateVideo(call));
ui.mute.addEventListener("click", () => {
  if (!call) return;
  if (call.isAudioMuted()) call.unmuteAudio();
  else call.muteAudio();
  ui.mute.setAttribute("aria-pressed", String(call.isAudioMuted()));
});
ui.camera.addEventListener("click", () => {
  if (!call) return;
  if (call.isVideoMuted()) call.unmuteVideo();
  else call.muteVideo();
  showCamera(!call.isVideoMuted());
});
ui.hold.addEventListener("click", () => call && requestAction(call.hold(), "Hold"));
ui.unhold.addEventListener("click", () => call && requestAction(lines.switchTo(call), "Unhold"));
ui.record.addEventListener("click", () => {
  if (!call) return;
  const on = !recordingOn;
  requestAction(on ? call.record() : call.stopRecording(), on ? "Record" : "Stop recording",
    () => showRecording(on));
});
ui.transferTarget.addEventListener("input", refreshControls);
ui.transferForm.addEventListener("submit", startTransfer);
ui.acceptTransfer.addEventListener("click", () => answerTransferRequest(true));
ui.refuseTransfer.addEventListener("click", () => answerTransferRequest(false));
ui.backspace.addEventListener("click", () => {
  ui.callee.value = ui.callee.value.slice(0, -1);
  ui.callee.focus();
});
for (const key of document.querySelectorAll(".keypad .key")) {
  key.addEventListener("click", () => pressKey(key.dataset.key));
}
document.addEventListener("keydown", (event) => {
  // Digits typed while in a call (and not into a text field) go out as DTMF.
  if (!call || event.target instanceof HTMLInputElement || event.ctrlKey || event.metaKey || event.altKey) return;
  if (DTMF_FREQUENCIES[event.key]) pressKey(event.key);
});
window.addEventListener("pagehide", () => session?.disconnect());

/** Microphone, Speaker, Camera and Volume (devices.js), applied to the shown call. */
const devices = new DeviceControls({
  microphone: $("microphone-device"), speaker: $("speaker-device"), camera: $("camera-device"),
  volume: $("volume"), onError: (text) => showError(text),
});
const chat = new ChatPanel(document);
restore();
refreshControls();
document.documentElement.dataset.ready = "true";
