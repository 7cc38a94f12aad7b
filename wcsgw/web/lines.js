// Several lines in the Phone UI: call waiting, the list of the session's calls with
// "Switch to" / "Resume", and the attended transfer between two of them.
//
// phone.js shows one call in its panel (its `call`, "the shown call"); this module keeps every
// live call of the session and decides what a second one does.  Why apart: the panel's code
// stays a one-call panel, and the rules of several lines live in one place:
// - only one call is un-held at a time: answering a call waiting, placing a second call,
//   switching to or resuming a line first holds the line that is talking (SDK hold(), and
//   waits for its HOLD), then goes on;
// - a call that comes while the user is on a call is a CALL WAITING: a soft tone (not the
//   ringer) and its own Answer / Decline; Decline answers the caller 486 Busy Here
//   (call.decline({busy: true})), whatever the gateway answers to a lone call's decline;
// - with two answered calls, "Transfer to other line" joins their far ends (SDK
//   call.transfer(otherCall): REFER with Replaces) and the page's two calls end.
// A second call gets an <audio> element of its own (in #line-audio), so that one call's end
// never stops another's sound; the first call of a session plays where phone.js puts it.

import { CALL_EVENT, CALL_STATUS, TERMINAL_CALL_STATUSES, TRANSFER_STATUS } from "./sdk/wcsgw.js";

/** How long a hold may take before the next step goes ahead anyway (ms). */
const HOLD_WAIT_MS = 10000;
/** Transfer progress, as said under the list ({from}: the transferred party, {to}: the other). */
const TRANSFER_TEXT = {
  ACCEPTED: "{from} accepted, calling {to}…",
  TRYING: "{from} is calling {to}…",
  COMPLETED: "done: {from} and {to} are talking to each other",
  FAILED: "{from} could not reach {to}; both calls go on",
};

const $ = (id) => document.getElementById(id);

function ended(c) {
  return TERMINAL_CALL_STATUSES.includes(c.status());
}

/** The other party of a call: the caller of an incoming one, the callee of ours. */
export function partyOf(c) {
  return (c.isIncoming() ? c.caller() : c.callee()) || "unknown";
}

/** Resolves once the call is in one of `statuses`, or ended, or after `ms`. */
function untilStatus(c, statuses, ms) {
  return new Promise((resolve) => {
    const wanted = [...statuses, ...TERMINAL_CALL_STATUSES];
    let timer = 0;
    const done = () => {
      clearTimeout(timer);
      for (const s of wanted) c.off(s, check);
      resolve(c.status());
    };
    const check = () => {
      if (wanted.includes(c.status())) done();
    };
    for (const s of wanted) c.on(s, check);
    timer = setTimeout(done, ms);
    check();
  });
}

/**
 * The call-waiting tone: two short 440 Hz beeps every 10 s, quieter than the ringer, made
 * with WebAudio (nothing loaded from the network).
 */
const waitingTone = {
  context: null,
  timer: 0,
  start() {
    if (this.timer) return;
    const Context = window.AudioContext ?? window.webkitAudioContext;
    if (!Context) return;
    this.context = new Context();
    const beeps = () => {
      const ctx = this.context;
      const gain = ctx.createGain();
      gain.gain.value = 0.03;
      gain.connect(ctx.destination);
      for (const at of [0, 0.4]) {
        const osc = ctx.createOscillator();
        osc.frequency.value = 440;
        osc.connect(gain);
        osc.start(ctx.currentTime + at);
        osc.stop(ctx.currentTime + at + 0.2);
      }
    };
    beeps();
    this.timer = setInterval(beeps, 10000);
  },
  stop() {
    clearInterval(this.timer);
    this.timer = 0;
    this.context?.close().catch(() => {});
    this.context = null;
  },
};

export class Lines {
  /** @type {Array<import("./sdk/wcsgw.js").Call>} every live call, oldest first */
  #calls = [];
  /** the call waiting (ringing while the user is on a call), or null */
  #waiting = null;
  /** call -> the <audio> element made for it (calls after the first) */
  #audio = new Map();
  /** calls whose statuses this module listens to */
  #watched = new WeakSet();
  /** call -> Date.now() of its first ESTABLISHED (the panel's timer goes on from it) */
  #answered = new WeakMap();
  /** the call asked to transfer itself to the other line, until that settles */
  #transferring = null;
  #hooks;
  #ui;

  /**
   * @param {object} hooks phone.js's side: `current()` the shown call (or null); `show(call)`
   *   shows a call in the panel; `incoming(call)` offers a ringing call in the panel;
   *   `refresh()` re-enables the panel's controls; `error(text)` shows a message.
   */
  constructor(hooks) {
    this.#hooks = hooks;
    this.#ui = {
      waiting: $("call-waiting"),
      waitingText: $("call-waiting-text"),
      answer: $("answer-waiting"),
      decline: $("decline-waiting"),
      section: $("lines"),
      list: $("line-list"),
      transfer: $("transfer-lines"),
      status: $("lines-status"),
      audio: $("line-audio"),
    };
    this.#ui.answer.addEventListener("click", () => this.answerWaiting());
    this.#ui.decline.addEventListener("click", () => this.declineWaiting());
    this.#ui.transfer.addEventListener("click", () => this.transferLines());
  }

  /** A call shown in the panel (placed, answered or switched to): a line from now on. */
  add(c, element = null) {
    this.#watch(c);
    if (element) this.#audio.set(c, element);
    if (!this.#calls.includes(c) && !ended(c)) {
      this.#calls.push(c);
      if (this.#calls.length === 1) this.#say("");
    }
    this.render();
  }

  /** When the shown call was answered (for the panel's timer), in Date.now() terms. */
  answeredAt(c) {
    if (!this.#answered.has(c)) this.#answered.set(c, Date.now());
    return this.#answered.get(c);
  }

  /** Is a second call allowed now?  While the lines there are are talking or held, and no
   * call is waiting. */
  canPlace() {
    const live = this.#calls.filter((c) => !ended(c));
    return live.length > 0 && !this.#waiting &&
      live.every((c) => c.status() === CALL_STATUS.ESTABLISHED || c.status() === CALL_STATUS.HOLD);
  }

  /** The element a new call plays through while another call is live: its own <audio>. */
  newAudio() {
    const element = document.createElement("audio");
    element.autoplay = true;
    this.#ui.audio.append(element);
    return element;
  }

  /** Hold every talking line but `keep`; resolves once they are held (or could not be). */
  holdOthers(keep) {
    const talking = this.#calls.filter((c) => c !== keep && c.status() === CALL_STATUS.ESTABLISHED);
    return Promise.all(talking.map((c) => {
      const held = untilStatus(c, [CALL_STATUS.HOLD], HOLD_WAIT_MS);
      return c.hold().then(() => held, (err) => {
        this.#hooks.error(`Hold ${partyOf(c)}: ${err?.message ?? err}`);
      });
    }));
  }

  /** A call came while the user is on one: offer it as call waiting (one at a time; a
   * further one is declined busy at once). */
  offerWaiting(c) {
    if (this.#waiting) {
      c.decline({ busy: true }).catch(() => {});
      return;
    }
    this.#watch(c);
    this.#setWaiting(c);
  }

  /** Answer the call waiting: hold the line that talks, then answer, then show it. */
  async answerWaiting() {
    const c = this.#waiting;
    if (!c) return;
    this.#setWaiting(null);
    await this.holdOthers(c);
    if (ended(c)) return; // the caller gave up meanwhile
    const element = this.newAudio();
    this.add(c, element);
    this.#hooks.show(c);
    c.answer({ remoteVideoDisplay: element, constraints: { audio: true, video: false } })
      .catch((err) => this.#hooks.error(`Answer: ${err?.message ?? err}`));
  }

  /** Decline the call waiting as busy: its caller hears 486 Busy Here. */
  declineWaiting() {
    const c = this.#waiting;
    if (!c) return;
    this.#setWaiting(null);
    c.decline({ busy: true }).catch((err) => this.#hooks.error(`Decline: ${err?.message ?? err}`));
  }

  /** Show `c` and make it the line that talks: hold the one talking, then resume `c`. */
  async switchTo(c) {
    if (ended(c)) return;
    if (this.#hooks.current() !== c) this.#hooks.show(c);
    await this.holdOthers(c);
    if (c.status() === CALL_STATUS.HOLD) await c.unhold();
  }

  /** Join the far ends of the two lines: the line not shown is asked (REFER) to replace
   * this gateway in the shown one (Replaces); both of the page's calls then end. */
  async transferLines() {
    const live = this.#calls.filter((c) => !ended(c));
    if (live.length !== 2 || this.#transferring) return;
    const shown = this.#hooks.current();
    const [from, to] = live[0] === shown ? [live[1], live[0]] : [live[0], live[1]];
    this.#transferring = from;
    this.render();
    const text = (status) => (TRANSFER_TEXT[status] ?? status)
      .replace("{from}", partyOf(from)).replace("{to}", partyOf(to));
    const onStatus = (_c, event = {}) => {
      if (!event.status) return;
      this.#say(`Transfer ${event.status} · ${text(event.status)}`);
      if (event.status === TRANSFER_STATUS.FAILED || event.status === TRANSFER_STATUS.COMPLETED) {
        from.off(CALL_EVENT.TRANSFER_STATUS, onStatus);
        if (event.status === TRANSFER_STATUS.FAILED) this.#transferring = null;
        this.render();
      }
    };
    from.on(CALL_EVENT.TRANSFER_STATUS, onStatus);
    this.#say(`Transfer · asking ${partyOf(from)} to call ${partyOf(to)}…`);
    try {
      await from.transfer(to);
    } catch (err) {
      from.off(CALL_EVENT.TRANSFER_STATUS, onStatus);
      this.#transferring = null;
      this.#say("");
      this.#hooks.error(`Transfer to other line: ${err?.message ?? err}`);
      this.render();
    }
  }

  /** Draw the list (shown with two lines or more) and the transfer button. */
  render() {
    const live = this.#calls.filter((c) => !ended(c));
    const shown = this.#hooks.current();
    this.#ui.section.hidden = live.length < 2;
    this.#ui.list.replaceChildren(...live.map((c) => this.#item(c, c === shown)));
    const answered = live.every((c) => c.status() === CALL_STATUS.ESTABLISHED || c.status() === CALL_STATUS.HOLD);
    this.#ui.transfer.disabled = live.length !== 2 || !answered || this.#transferring !== null;
  }

  #item(c, shown) {
    const item = document.createElement("li");
    item.className = "line";
    item.dataset.state = c.status().toLowerCase();
    if (shown) item.setAttribute("aria-current", "true");
    const party = document.createElement("span");
    party.className = "line-party";
    party.textContent = partyOf(c);
    const status = document.createElement("strong");
    status.className = "line-status";
    status.textContent = c.status();
    item.append(party, " ", status);
    if (!shown || c.status() === CALL_STATUS.HOLD) {
      const verb = shown ? "Resume" : "Switch to";
      const button = document.createElement("button");
      button.type = "button";
      button.className = "btn line-switch";
      button.textContent = verb;
      button.setAttribute("aria-label", `${verb} ${partyOf(c)}`);
      button.disabled = this.#transferring !== null;
      button.addEventListener("click", () => {
        this.switchTo(c).catch((err) => this.#hooks.error(`${verb}: ${err?.message ?? err}`));
      });
      item.append(" ", button);
    }
    return item;
  }

  #watch(c) {
    if (this.#watched.has(c)) return;
    this.#watched.add(c);
    for (const status of Object.values(CALL_STATUS)) c.on(status, () => this.#onStatus(c));
  }

  #onStatus(c) {
    if (!ended(c)) {
      this.render();
      return;
    }
    if (c === this.#waiting) this.#setWaiting(null);
    this.#calls = this.#calls.filter((x) => x !== c);
    if (c === this.#transferring) this.#transferring = null;
    this.#audio.get(c)?.remove();
    this.#audio.delete(c);
    // After every handler of this status ran (phone.js's own clears the panel first): a
    // line left over takes the panel, still held; else a call waiting rings as a lone call.
    queueMicrotask(() => {
      if (this.#hooks.current() === null) {
        const next = this.#calls.filter((x) => !ended(x)).at(-1);
        if (next) {
          this.#hooks.show(next);
        } else if (this.#waiting) {
          const w = this.#waiting;
          this.#setWaiting(null);
          this.#hooks.incoming(w);
        }
      }
      this.render();
      this.#hooks.refresh();
    });
  }

  #setWaiting(c) {
    this.#waiting = c;
    const box = this.#ui.waiting;
    box.hidden = c === null;
    this.#ui.answer.disabled = c === null;
    this.#ui.decline.disabled = c === null;
    if (c === null) {
      waitingTone.stop();
      box.dataset.tone = "off";
      this.#ui.waitingText.textContent = "Call waiting";
    } else {
      const name = c.visibleName();
      const number = c.caller() || "unknown";
      this.#ui.waitingText.textContent = `Call waiting: ${name && name !== number ? `${name} (${number})` : number}`;
      waitingTone.start();
      box.dataset.tone = "playing";
    }
    this.#hooks.refresh();
  }

  /** The line under the list: transfer progress; "" hides it. */
  #say(text) {
    this.#ui.status.hidden = !text;
    this.#ui.status.textContent = text;
  }
}
