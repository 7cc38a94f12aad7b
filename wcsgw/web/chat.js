// The Phone UI's chat panel: SIP MESSAGE both ways through the Web SDK (session.sendMessage
// and SESSION_EVENT.MESSAGE; docs/contract.md names its controls: fields "Message to" and
// "Message", button "Send", the log "Messages").
//
// A message's text comes from anyone who can reach the PBX, so it only ever enters the page
// as text (textContent), never as HTML: "<b>hi</b>" is shown as those nine characters.

import { SESSION_EVENT, SESSION_STATUS } from "./sdk/wcsgw.js";

/** The statuses in which the session can send (as for calls). */
const READY = [SESSION_STATUS.ESTABLISHED, SESSION_STATUS.REGISTERED];
/** Entries the log keeps; older ones are removed. */
const KEPT = 200;

export class ChatPanel {
  /** @type {import("./sdk/wcsgw.js").Session|null} */
  #session = null;

  /** @param {Document} doc */
  constructor(doc = document) {
    const $ = (id) => doc.getElementById(id);
    this.form = $("chat-form");
    this.to = $("chat-to");
    this.text = $("chat-text");
    this.send = $("chat-send");
    this.log = $("chat-log");
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.#send();
    });
    this.to.addEventListener("input", () => this.refresh());
    this.text.addEventListener("input", () => this.refresh());
    this.text.addEventListener("keydown", (event) => {
      // Enter sends, Shift+Enter is a new line (as chat boxes do).
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.#send();
      }
    });
    this.refresh();
  }

  /** The session that sends and receives from now on (a later login replaces it). */
  attach(session) {
    this.#session = session;
    const mine = (s) => s === this.#session;
    for (const status of Object.values(SESSION_STATUS)) {
      if (status !== SESSION_STATUS.INCOMING_CALL) session.on(status, (s) => mine(s) && this.refresh());
    }
    session.on(SESSION_EVENT.MESSAGE, (s, message) => {
      if (!mine(s)) return;
      this.#add("in", message.from, message.body);
      if (!this.to.value.trim()) this.to.value = message.from; // a reply goes back
      this.refresh();
    });
    this.refresh();
  }

  refresh() {
    const ready = this.#session !== null && READY.includes(this.#session.status());
    this.to.disabled = !ready;
    this.text.disabled = !ready;
    this.send.disabled = !ready || !this.to.value.trim() || !this.text.value.trim();
  }

  async #send() {
    const session = this.#session;
    const to = this.to.value.trim();
    const body = this.text.value;
    if (!session || this.send.disabled || !to || !body.trim()) return;
    const entry = this.#add("out", to, body);
    this.text.value = "";
    this.refresh();
    try {
      await session.sendMessage(to, body);
      entry.dataset.state = "sent";
    } catch (err) {
      entry.dataset.state = "failed";
      entry.querySelector(".chat-note").textContent = `Not sent: ${err.message}`;
    }
  }

  /** One entry of the log, its text as text. */
  #add(direction, peer, body) {
    const entry = document.createElement("li");
    entry.className = `chat-entry ${direction}`;
    entry.dataset.direction = direction;
    entry.dataset.state = direction === "in" ? "received" : "sending";
    const who = document.createElement("span");
    who.className = "chat-peer";
    who.textContent = direction === "in" ? `From ${peer}` : `To ${peer}`;
    const text = document.createElement("p");
    text.className = "chat-text";
    text.textContent = body;
    const note = document.createElement("span");
    note.className = "chat-note";
    entry.append(who, text, note);
    this.log.append(entry);
    while (this.log.children.length > KEPT) this.log.firstElementChild.remove();
    this.log.scrollTop = this.log.scrollHeight;
    return entry;
  }
}
