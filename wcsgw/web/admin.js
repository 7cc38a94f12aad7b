// The admin page (/admin): live sessions and calls — each call with its SIP ladder and quality
// graphs — call records and recordings, all read from the REST API (docs/rest-api.md) with the
// operator's bearer token.
//
// Why it works this way:
// - The page holds no data and no secret: the token is typed in, kept in this tab's
//   sessionStorage only (gone when the tab closes, never in localStorage or a cookie), and
//   sent as `Authorization: Bearer` to the same origin.  A 401 anywhere signs out with
//   "Token refused" and shows nothing else.
// - It polls (every 2 s) instead of holding a WebSocket: the REST API is what an operator's
//   token opens, and a poll that fails simply tries again.
// - Every text goes in with textContent, never HTML: caller names and SIP messages come from
//   the network.
// - Downloads (CSV, recordings) need the token, which a plain link cannot carry: they are
//   fetched and handed to the browser as a Blob.
// - The ladder and the graphs are drawn by the Phone UI's modules (/ladder.js, /graphs.js),
//   imported when present; without them the page shows a plain list and the numbers.

const POLL_MS = 2000;
const TOKEN_KEY = "wcsgw.admin.token";

const $ = (id) => document.getElementById(id);

let graphs = null; // /graphs.js: { drawQuality, QualityHistory, LEGS }
let ladderModule = null; // /ladder.js: { drawLadder } -> a LadderView (add, set)
let timer = null;
let generation = 0; // bumped at each sign-in/out: a poll of an earlier one schedules no more
const callViews = new Map(); // callId -> { root, fields, history, ladderBox, details, ... }

class TokenRefused extends Error {}

// -- REST ------------------------------------------------------------------------------------

async function rest(path, body = {}, { raw = false } = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY) || "";
  const reply = await fetch(`/rest-api${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
    cache: "no-store",
  });
  if (reply.status === 401) throw new TokenRefused();
  if (!reply.ok) {
    let message = `${reply.status}`;
    try { message = (await reply.json()).error || message; } catch { /* not JSON */ }
    const error = new Error(message);
    error.status = reply.status;
    throw error;
  }
  return raw ? reply : reply.json();
}

async function download(response, fallbackName) {
  const blob = await response.blob();
  const match = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = match ? match[1] : fallbackName;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60000);
}

// -- formatting ------------------------------------------------------------------------------

function clock(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(h ? 2 : 1, "0");
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

function when(ms) {
  return ms == null ? "—" : new Date(ms).toLocaleString();
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text == null || text === "" ? "—" : String(text);
  row.append(td);
  return td;
}

function fill(tbody, emptyNote, items, columns) {
  const rows = items.map((item) => {
    const tr = document.createElement("tr");
    for (const column of columns) cell(tr, column(item));
    return tr;
  });
  tbody.replaceChildren(...rows);
  emptyNote.hidden = items.length > 0;
}

// -- sessions ----------------------------------------------------------------------------------

function showSessions(sessions) {
  fill($("sessions"), $("sessions-empty"), sessions, [
    (s) => s.sessionId, (s) => s.state, (s) => s.peer,
    (s) => s.accountName ? `${s.account} (${s.accountName})` : s.account,
    (s) => s.registration ?? "not registering", (s) => s.appKey, (s) => s.calls.join(", "),
  ]);
}

// -- calls -------------------------------------------------------------------------------------

function field(list, name) {
  const dt = document.createElement("dt");
  dt.textContent = name;
  const dd = document.createElement("dd");
  list.append(dt, dd);
  return dd;
}

function drawLadderList(box, entries) {
  const list = document.createElement("ol");
  list.className = "ladder-list";
  for (const entry of entries) {
    const item = document.createElement("li");
    const head = document.createElement("span");
    head.textContent = `${new Date(entry.time).toISOString().slice(11, 23)}  ${entry.from} → ${entry.to}  ${entry.label}`;
    item.append(head);
    if (entry.message) {
      const message = document.createElement("details");
      const summary = document.createElement("summary");
      summary.textContent = entry.summary || entry.label;
      const text = document.createElement("pre");
      text.textContent = entry.message;
      message.append(summary, text);
      item.append(message);
    }
    list.append(item);
  }
  box.replaceChildren(list);
}

async function refreshLadder(view) {
  try {
    const entries = await rest("/call/ladder", { callId: view.callId });
    if (ladderModule && typeof ladderModule.drawLadder === "function") {
      // only the new arrows are added: a message the operator opened stays open
      const fresh = entries.filter((e) => e.seq > view.lastSeq);
      if (!view.ladder) {
        view.ladder = ladderModule.drawLadder(view.ladderBox, entries,
          { label: `SIP ladder of ${view.callId}` });
      } else {
        for (const entry of fresh) view.ladder.add(entry);
      }
    } else {
      view.ladderBox.setAttribute("aria-label", `SIP ladder of ${view.callId}`);
      drawLadderList(view.ladderBox, entries);
    }
    if (entries.length) view.lastSeq = entries[entries.length - 1].seq;
  } catch (error) {
    if (error instanceof TokenRefused) throw error;
    view.ladderBox.textContent = `Ladder unavailable: ${error.message}`;
  }
}

function makeCallView(call) {
  const root = document.createElement("article");
  root.className = "call";
  root.setAttribute("aria-label", `Call ${call.callId}`);
  const title = document.createElement("h3");
  title.textContent = call.callId;
  const facts = document.createElement("dl");
  const fields = {};
  for (const name of ["Status", "Caller", "Callee", "Duration", "Codecs", "Mode", "Session",
    "Recording"]) {
    fields[name] = field(facts, name);
  }
  const hangUp = document.createElement("button");
  hangUp.type = "button";
  hangUp.textContent = "Hang up";
  const view = { callId: call.callId, root, fields, hangUp, history: null, graphBoxes: {},
    ladder: null, lastSeq: -1 };
  hangUp.addEventListener("click", async () => {
    hangUp.disabled = true;
    try {
      await rest("/call/terminate", { callId: call.callId });
    } catch (error) {
      if (error instanceof TokenRefused) return signOut("Token refused");
      hangUp.disabled = false;
      setStatus(`Hang up failed: ${error.message}`);
    }
  });
  const quality = document.createElement("div");
  quality.className = "quality";
  if (graphs) {
    view.history = new graphs.QualityHistory();
    for (const [leg] of graphs.LEGS) {
      const box = document.createElement("div");
      view.graphBoxes[leg] = box;
      quality.append(box);
    }
  }
  const details = document.createElement("details");
  const summary = document.createElement("summary");
  summary.textContent = "SIP ladder";
  view.ladderBox = document.createElement("div");
  view.ladderBox.className = "ladder";
  details.append(summary, view.ladderBox);
  details.addEventListener("toggle", () => {
    if (details.open) refreshLadder(view).catch(() => signOut("Token refused"));
  });
  view.details = details;
  root.append(title, facts, hangUp, quality, details);
  return view;
}

function updateCallView(view, call, now) {
  const media = call.media || {};
  view.fields.Status.textContent = call.info ? `${call.status} · ${call.info}` : call.status;
  view.fields.Caller.textContent = call.caller ?? "—";
  view.fields.Callee.textContent = call.callee ?? "—";
  view.fields.Duration.textContent = call.answerTime ? clock(now - call.answerTime)
    : `not answered (${clock(now - call.startTime)})`;
  view.fields.Codecs.textContent = `${media.webrtcCodec ?? "—"} ⇄ ${media.sipCodec ?? "—"}`;
  view.fields.Mode.textContent = media.mode ?? "—";
  view.fields.Session.textContent = call.sessionId ?? "server-side media";
  view.fields.Recording.textContent = call.recording ?? "not recording";
  if (graphs && view.history && call.stats) {
    view.history.add(call.stats, now);
    for (const [leg, label] of graphs.LEGS) {
      graphs.drawQuality(view.graphBoxes[leg], view.history.samples(leg), { label });
    }
  }
}

async function showCalls(calls) {
  const now = Date.now();
  const seen = new Set();
  for (const call of calls) {
    seen.add(call.callId);
    let view = callViews.get(call.callId);
    if (!view) {
      view = makeCallView(call);
      callViews.set(call.callId, view);
      $("calls").append(view.root);
    }
    updateCallView(view, call, now);
  }
  for (const [callId, view] of callViews) {
    if (!seen.has(callId)) {
      view.root.remove();
      callViews.delete(callId);
    }
  }
  $("calls-empty").hidden = calls.length > 0;
  await Promise.all([...callViews.values()].filter((v) => v.details.open).map(refreshLadder));
}

// -- recordings and call records ---------------------------------------------------------------

const recordingItems = new Map(); // name -> { item, size }: kept across polls, so a link
// being clicked is never replaced under the pointer

function recordingItem(name) {
  const item = document.createElement("li");
  const link = document.createElement("a");
  link.href = `/rest-api/recording/${encodeURIComponent(name)}`;
  link.textContent = name;
  link.download = name;
  link.addEventListener("click", async (event) => {
    event.preventDefault(); // the link cannot carry the token: fetch it
    try {
      const token = sessionStorage.getItem(TOKEN_KEY) || "";
      const reply = await fetch(link.href, { headers: { Authorization: `Bearer ${token}` } });
      if (reply.status === 401) return signOut("Token refused");
      if (!reply.ok) throw new Error(`${reply.status}`);
      await download(reply, name);
    } catch (error) {
      setStatus(`Download failed: ${error.message}`);
    }
  });
  const size = document.createElement("span");
  size.className = "muted";
  item.append(link, size);
  return { item, size };
}

function showRecordings(recordings) {
  const names = new Set(recordings.map((r) => r.name));
  for (const [name, kept] of recordingItems) {
    if (!names.has(name)) {
      kept.item.remove();
      recordingItems.delete(name);
    }
  }
  const items = recordings.map((r) => {
    let kept = recordingItems.get(r.name);
    if (!kept) {
      kept = recordingItem(r.name);
      recordingItems.set(r.name, kept);
    }
    kept.size.textContent = ` ${(r.size / 1024).toFixed(0)} KiB · ${when(r.modified * 1000)}`;
    return kept.item;
  });
  const list = $("recordings");
  items.forEach((item, index) => {  // in the gateway's order, moving only what moved
    if (list.children[index] !== item) list.insertBefore(item, list.children[index] || null);
  });
  $("recordings-empty").hidden = recordings.length > 0;
}

function cdrQuery() {
  const query = {};
  const callId = $("cdr-call").value.trim();
  if (callId) query.callId = callId;
  for (const [name, id] of [["since", "cdr-since"], ["until", "cdr-until"]]) {
    const value = $(id).value;
    if (value) {
      const ms = new Date(value).getTime();
      if (Number.isNaN(ms)) throw new Error(`${name[0].toUpperCase() + name.slice(1)}: not a time`);
      query[name] = ms;
    }
  }
  return query;
}

function cdrError(error) {
  if (error instanceof TokenRefused) return signOut("Token refused");
  $("cdr-error").textContent = error.message;
  $("cdr-error").hidden = false;
}

async function searchCdr() {
  $("cdr-error").hidden = true;
  try {
    const records = await rest("/cdr/find", cdrQuery());
    fill($("cdr"), $("cdr-empty"), records, [
      (r) => r.callId, (r) => when(r.startTime), (r) => r.direction, (r) => r.caller,
      (r) => r.callee, (r) => r.duration == null ? null : clock(r.duration * 1000),
      (r) => r.endReason, (r) => r.endedBy, (r) => r.sipStatus,
    ]);
  } catch (error) {
    cdrError(error);
  }
}

async function downloadCdr() {
  $("cdr-error").hidden = true;
  try {
    await download(await rest("/cdr/export", cdrQuery(), { raw: true }), "cdr.csv");
  } catch (error) {
    cdrError(error);
  }
}

// -- polling, signing in and out ----------------------------------------------------------------

function setStatus(text) {
  $("poll-status").textContent = text;
}

async function poll(round = generation) {
  if (round !== generation) return;
  try {
    const [sessions, calls] = await Promise.all([rest("/session/find_all"), rest("/call/find_all")]);
    showSessions(sessions);
    await showCalls(calls);
    try {
      const recordings = await rest("/recording/find_all");
      $("recordings-empty").textContent = "No recordings.";
      showRecordings(recordings);
    } catch (error) {
      if (error instanceof TokenRefused) throw error;
      showRecordings([]);
      $("recordings-empty").textContent = error.status === 503 ? "Recording is off on this gateway." : error.message;
      $("recordings-empty").hidden = false;
    }
    setStatus(`Updated ${new Date().toLocaleTimeString()}`);
  } catch (error) {
    if (error instanceof TokenRefused) return signOut("Token refused");
    setStatus(`Gateway unreachable: ${error.message}`);
  }
  if (round === generation && sessionStorage.getItem(TOKEN_KEY)) {
    timer = setTimeout(() => poll(round), POLL_MS);
  }
}

function signOut(reason = "") {
  generation += 1;
  clearTimeout(timer);
  timer = null;
  sessionStorage.removeItem(TOKEN_KEY);
  for (const view of callViews.values()) view.root.remove();
  callViews.clear();
  showRecordings([]);
  for (const id of ["sessions", "cdr"]) $(id).replaceChildren();
  $("panel").hidden = true;
  $("sign-out").hidden = true;
  $("sign-in").hidden = false;
  $("sign-in-error").textContent = reason;
  $("sign-in-error").hidden = !reason;
  setStatus("Signed out");
}

async function signIn(token) {
  generation += 1;
  clearTimeout(timer);
  sessionStorage.setItem(TOKEN_KEY, token);
  try {
    await rest("/session/find_all");
  } catch (error) {
    return signOut(error instanceof TokenRefused ? "Token refused" : `Gateway unreachable: ${error.message}`);
  }
  $("sign-in-error").hidden = true;
  $("sign-in").hidden = true;
  $("panel").hidden = false;
  $("sign-out").hidden = false;
  await poll();
  await searchCdr();
}

async function start() {
  [graphs, ladderModule] = await Promise.all([
    import("/graphs.js").catch(() => null),
    import("/ladder.js").catch(() => null),
  ]);
  $("sign-in").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token").value;
    $("token").value = "";
    if (token) signIn(token);
  });
  $("sign-out").addEventListener("click", () => signOut());
  $("cdr-form").addEventListener("submit", (event) => {
    event.preventDefault();
    searchCdr();
  });
  $("cdr-csv").addEventListener("click", downloadCdr);
  const kept = sessionStorage.getItem(TOKEN_KEY);
  if (kept) signIn(kept);
}

start();
