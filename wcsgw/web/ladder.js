// The SIP ladder of a call (docs/operations.md, "The SIP ladder of a call"): three lanes —
// Browser, Gateway, SIP server — and one arrow per message, drawn as the entries come.  Shared
// by the Phone UI and the admin page, so it depends on nothing but the DOM: no SDK, no page
// state.  Entries are the gateway's `sipLadder` entries (docs/websocket-api.md):
// {seq, time, from, to, label, summary, message, retransmission}, from/to "browser" |
// "gateway" | "sip"; their SIP messages come redacted by the gateway.
//
// API (an ES module, served at /ladder.js):
//
//   const ladder = new LadderView(container, {label} = {})
//     Replaces `container`'s content with the ladder: a <section aria-label="{label}">
//     (default "SIP ladder") holding the lane heads and a list of arrows.
//   ladder.add(entry)      draws one more arrow (in the order given; a gap in `seq` is shown
//                          as "… N messages not kept")
//   ladder.set(entries)    draws these instead of what was there (an ended call's ladder)
//   ladder.clear()
//   ladder.size            how many arrows are drawn
//
//   drawLadder(container, entries, {label} = {})  ->  LadderView: the two steps in one.
//
// Its look is /ladder.css, which the first LadderView links into the page (same origin: the
// pages' Content-Security-Policy allows it); the page's --line, --accent ... colours are used
// when it defines them.
//
// Each arrow is a <button> whose accessible name starts with its label — "INVITE", "100",
// "180", "200", "ACK", "BYE", "call", "callStatus RING" — then says which way it went and
// whether it was sent again: "INVITE, Gateway to SIP server" / "200, SIP server to Gateway,
// retransmission".  Pressing it opens (and closes) the message text in a <pre> below it
// (aria-expanded, aria-controls).  Text goes in with textContent only: a message never
// becomes markup.
//
// Example: const view = new LadderView(document.getElementById("ladder"));
//          call.on(CALL_EVENT.LADDER, (c, entry) => view.add(entry));

const LANES = Object.freeze({ browser: 0, gateway: 1, sip: 2 });
const LANE_NAMES = Object.freeze(["Browser", "Gateway", "SIP server"]);

let views = 0;

/** Link ladder.css (beside this module) into ``doc`` once. */
function linkStyles(doc) {
  const href = new URL("./ladder.css", import.meta.url).href;
  for (const link of doc.querySelectorAll('link[rel="stylesheet"]')) {
    if (link.href === href) return;
  }
  const link = doc.createElement("link");
  link.rel = "stylesheet";
  link.href = href;
  doc.head.append(link);
}

export class LadderView {
  #list;
  #first = null;
  #lastSeq = -1;
  #id;
  #count = 0;

  constructor(container, { label = "SIP ladder" } = {}) {
    this.#id = `ladder-${++views}`;
    linkStyles(container.ownerDocument);
    const section = document.createElement("section");
    section.className = "ladder";
    section.setAttribute("aria-label", label);
    const heads = document.createElement("div");
    heads.className = "ladder-lanes";
    heads.setAttribute("aria-hidden", "true");
    for (const name of LANE_NAMES) {
      const head = document.createElement("span");
      head.textContent = name;
      heads.append(head);
    }
    this.#list = document.createElement("ol");
    this.#list.className = "ladder-arrows";
    section.append(heads, this.#list);
    container.replaceChildren(section);
  }

  get size() {
    return this.#count;
  }

  clear() {
    this.#list.replaceChildren();
    this.#first = null;
    this.#lastSeq = -1;
    this.#count = 0;
  }

  set(entries) {
    this.clear();
    for (const entry of entries ?? []) this.add(entry);
  }

  add(entry) {
    if (!entry || typeof entry !== "object") return;
    const from = LANES[entry.from];
    const to = LANES[entry.to];
    if (from === undefined || to === undefined || from === to) return;
    const seq = Number.isInteger(entry.seq) ? entry.seq : this.#lastSeq + 1;
    if (seq > this.#lastSeq + 1 && this.#lastSeq >= 0) this.#gap(seq - this.#lastSeq - 1);
    this.#lastSeq = Math.max(this.#lastSeq, seq);
    if (this.#first === null && typeof entry.time === "number") this.#first = entry.time;
    this.#list.append(this.#row(entry, from, to));
    this.#count += 1;
  }

  #gap(missing) {
    const row = document.createElement("li");
    row.className = "ladder-gap";
    row.textContent = `… ${missing} message${missing === 1 ? "" : "s"} not kept`;
    this.#list.append(row);
  }

  #row(entry, from, to) {
    const label = String(entry.label ?? "?");
    const row = document.createElement("li");
    row.className = "ladder-row";
    const arrow = document.createElement("button");
    arrow.type = "button";
    const rightward = to > from;
    arrow.className = [
      "ladder-arrow",
      rightward ? "to-right" : "to-left",
      Math.min(from, to) === 0 ? "lanes-browser-gateway" : "lanes-gateway-sip",
      entry.retransmission ? "retransmission" : "",
      entry.from === "browser" || entry.to === "browser" ? "browser-side" : "sip-side",
    ].filter(Boolean).join(" ");
    const way = `${LANE_NAMES[from]} to ${LANE_NAMES[to]}`;
    arrow.setAttribute("aria-label",
      `${label}, ${way}${entry.retransmission ? ", retransmission" : ""}`);
    arrow.title = String(entry.summary ?? label);
    const text = document.createElement("span");
    text.className = "ladder-label";
    // a status arrow shows its status ("RING"), its name says all ("callStatus RING, ...")
    text.textContent = label.startsWith("callStatus ") ? label.slice(11) : label;
    const when = document.createElement("span");
    when.className = "ladder-time";
    when.textContent = this.#offset(entry.time);
    arrow.append(text, when);
    const message = document.createElement("pre");
    message.className = "ladder-message";
    message.id = `${this.#id}-m${this.#count}`;
    message.hidden = true;
    arrow.setAttribute("aria-expanded", "false");
    arrow.setAttribute("aria-controls", message.id);
    arrow.addEventListener("click", () => {
      const open = message.hidden;
      if (open && !message.textContent) {
        message.textContent = `${entry.summary ?? label}\n\n${entry.message ?? ""}`;
      }
      message.hidden = !open;
      arrow.setAttribute("aria-expanded", String(open));
    });
    row.append(arrow, message);
    return row;
  }

  /** "+1.234 s" since the first entry ("" without times). */
  #offset(time) {
    if (typeof time !== "number" || this.#first === null) return "";
    return `+${((time - this.#first) / 1000).toFixed(3)} s`;
  }
}

export function drawLadder(container, entries, options = {}) {
  const view = new LadderView(container, options);
  view.set(entries);
  return view;
}
