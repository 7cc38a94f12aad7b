// Live call-quality graphs (docs/operations.md, "Live call quality"): MOS, loss, jitter and
// round-trip time of a call leg over the last two minutes, drawn from the gateway's `callStats`
// notifications.  Shared by the Phone UI and the admin page, so it depends on nothing but the
// DOM: no SDK, no page state.
//
// API (an ES module, served at /graphs.js):
//
//   drawQuality(container, samples, {label, windowMs} = {})
//     Replaces `container`'s content with one <figure aria-label="{label}"> (default label
//     "Call leg quality") holding, per metric, the current value as text — "MOS 4.3",
//     "Loss 0.0 %", "Jitter 3 ms", "RTT 1 ms" ("MOS —" before a value) — and an inline SVG
//     line (role="img", aria-label "MOS over the last 2 minutes").  `samples`: one leg's
//     objects of `callStats` (`browser` or `sip`: {mos, fractionLost, jitterMs, rttMs, ...})
//     each with `t` (ms since the epoch) added, oldest first; a null value leaves a gap.
//     `windowMs` (default 120000): how far back the lines go, ending at the last sample.
//
//   new QualityHistory(windowMs = 120000)
//     .add(callStats, t = Date.now())  keeps both legs' samples of the window
//     .samples("browser" | "sip")      one leg's, ready for drawQuality
//     .clear()
//
//   LEGS  [["browser", "Browser leg quality"], ["sip", "SIP leg quality"]]: the legs and the
//         labels the Phone UI gives their figures.
//
// Styling: classes quality-figure, quality-row, quality-value (the text), quality-line (the
// svg) and quality-mos / -loss / -jitter / -rtt on it; the lines carry their own stroke, so
// they draw without any CSS (phone.css has the Phone UI's look).
//
// Example: const h = new QualityHistory();
//          call.on(CALL_EVENT.STATS, (c, stats) => { h.add(stats);
//            for (const [leg, label] of LEGS) drawQuality(box[leg], h.samples(leg), {label}); });

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 120;
const HEIGHT = 28;

export const LEGS = Object.freeze([
  ["browser", "Browser leg quality"],
  ["sip", "SIP leg quality"],
]);

/** What each row shows: the sample's key, its name, how it reads, the scale's floor/ceiling
 * (the ceiling grows with the data, so one bad spike stays on screen), the line's colour (an
 * SVG presentation attribute, so a page without our CSS still draws lines, not black fills;
 * a page's CSS, e.g. `.quality-mos polyline`, overrides it). */
const METRICS = [
  { key: "mos", name: "MOS", value: (s) => s.mos, text: (v) => v.toFixed(1), min: 1, max: 4.5, fixed: true,
    colour: "#1f9d55" },
  { key: "loss", name: "Loss", value: (s) => (s.fractionLost == null ? null : 100 * s.fractionLost),
    text: (v) => `${v.toFixed(1)} %`, min: 0, max: 5, colour: "#d93a3a" },
  { key: "jitter", name: "Jitter", value: (s) => s.jitterMs, text: (v) => `${Math.round(v)} ms`, min: 0, max: 20,
    colour: "#2f6fed" },
  { key: "rtt", name: "RTT", value: (s) => s.rttMs, text: (v) => `${Math.round(v)} ms`, min: 0, max: 50,
    colour: "#2f6fed" },
];

function svg(name, attrs) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

/** One metric's line: runs of known values as polylines, scaled into the box. */
function sparkline(metric, samples, windowMs) {
  const box = svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, width: WIDTH, height: HEIGHT,
    role: "img", "aria-label": `${metric.name} over the last ${Math.round(windowMs / 60000)} minutes`,
    class: `quality-line quality-${metric.key}` });
  const values = samples.map(metric.value);
  const known = values.filter((v) => v != null);
  const top = metric.fixed ? metric.max : Math.max(metric.max, ...known);
  const end = samples.length ? samples[samples.length - 1].t : 0;
  const x = (t) => WIDTH - ((end - t) / windowMs) * WIDTH;
  const y = (v) => HEIGHT - 1 - ((Math.min(top, Math.max(metric.min, v)) - metric.min) / (top - metric.min)) * (HEIGHT - 2);
  let run = [];
  const flush = () => {
    if (run.length === 1) run.push([run[0][0] - 1, run[0][1]]);  // a lone point: a short tick
    if (run.length) {
      box.append(svg("polyline", { points: run.map((p) => p.join(",")).join(" "), fill: "none",
        stroke: metric.colour, "stroke-width": 1.5 }));
    }
    run = [];
  };
  samples.forEach((s, i) => {
    if (values[i] == null || end - s.t > windowMs) flush();
    else run.push([x(s.t).toFixed(1), y(values[i]).toFixed(1)]);
  });
  flush();
  return box;
}

/** Draw one leg's figure into `container` (see the API at the top of this file). */
export function drawQuality(container, samples, { label = "Call leg quality", windowMs = 120000 } = {}) {
  const figure = document.createElement("figure");
  figure.className = "quality-figure";
  figure.setAttribute("aria-label", label);
  const caption = document.createElement("figcaption");
  caption.textContent = label;
  figure.append(caption);
  const last = samples.length ? samples[samples.length - 1] : {};
  for (const metric of METRICS) {
    const row = document.createElement("div");
    row.className = "quality-row";
    const current = metric.value(last);
    const value = document.createElement("span");
    value.className = "quality-value";
    value.dataset.metric = metric.key;
    value.textContent = `${metric.name} ${current == null ? "—" : metric.text(current)}`;
    row.append(value, sparkline(metric, samples, windowMs));
    figure.append(row);
  }
  container.replaceChildren(figure);
  return figure;
}

/** The last `windowMs` of a call's `callStats`, per leg. */
export class QualityHistory {
  constructor(windowMs = 120000) {
    this.windowMs = windowMs;
    this.clear();
  }

  add(stats, t = Date.now()) {
    for (const [leg] of LEGS) {
      const list = this.legs[leg];
      list.push({ ...(stats?.[leg] ?? {}), t });
      while (list.length && t - list[0].t > this.windowMs) list.shift();
    }
  }

  samples(leg) {
    return this.legs[leg] ?? [];
  }

  clear() {
    this.legs = Object.fromEntries(LEGS.map(([leg]) => [leg, []]));
  }
}
