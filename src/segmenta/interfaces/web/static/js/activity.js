// A saved segment's live activity: keys entered and exited per minute over the last hour.
//
// The counts come from the membership events (GET /api/segments/{ref}/activity); then an
// EventSource on /api/events/stream?segment=...&from=<last offset> adds each new event to its
// minute as it commits, so the panel moves while records change. The browser reconnects by
// itself (Last-Event-ID) when the server ends a stream; leaving the segment closes it.

import { api, segRef } from "./api.js";
import { $, el } from "./dom.js";

const MINUTES = 60;
let source = null;
let state = null; // { ref, minutes: [{ minute, entered, exited }], entered, exited }

/** Close the live stream (another page, another segment, signed out). */
export function stopActivity() {
  if (source) source.close();
  source = null;
  state = null;
}

const minuteOf = (iso) => String(iso).slice(0, 16); // "YYYY-MM-DDTHH:MM", UTC as the service writes it

function render() {
  const box = $("#activity");
  if (!box || !state) return;
  const max = Math.max(1, ...state.minutes.map((m) => Math.max(m.entered, m.exited)));
  const bars = el("div", { class: "bars activity-bars", role: "img",
    "aria-label": `Entered and exited per minute over the last ${state.minutes.length} minutes` });
  for (const m of state.minutes) {
    const col = el("span", { class: "activity-minute", title: `${m.minute.replace("T", " ")}: +${m.entered} / -${m.exited}` });
    const up = el("span", { class: "activity-in" });
    const down = el("span", { class: "activity-out" });
    up.style.height = `${Math.round(50 * m.entered / max)}%`; // CSSOM, which the CSP allows
    down.style.height = `${Math.round(50 * m.exited / max)}%`;
    col.append(up, down);
    bars.append(col);
  }
  const last = state.minutes[state.minutes.length - 1];
  box.replaceChildren(bars,
    el("dl", { class: "counts" },
      el("dt", { text: `Entered (last ${state.minutes.length} min)` }), el("dd", { id: "activity-entered", text: state.entered.toLocaleString() }),
      el("dt", { text: `Exited (last ${state.minutes.length} min)` }), el("dd", { id: "activity-exited", text: state.exited.toLocaleString() }),
      el("dt", { text: "This minute" }), el("dd", { id: "activity-now", text: last ? `+${last.entered} / -${last.exited}` : "" })),
    el("p", { class: "muted", id: "activity-live", text: source ? "Live: updates as records change." : "" }));
}

function add(event) {
  if (!state) return;
  const minute = minuteOf(event.at);
  let bucket = state.minutes.find((m) => minuteOf(m.minute) === minute);
  if (!bucket) { // a minute after the window: the window moves on
    bucket = { minute: `${minute}:00`, entered: 0, exited: 0 };
    state.minutes.push(bucket);
    while (state.minutes.length > MINUTES) {
      const gone = state.minutes.shift();
      state.entered -= gone.entered;
      state.exited -= gone.exited;
    }
  }
  if (event.change === "entered") { bucket.entered += 1; state.entered += 1; } else { bucket.exited += 1; state.exited += 1; }
  render();
}

/** Show ``seg``'s activity and follow it live. */
export async function showActivity(seg) {
  stopActivity();
  const box = $("#activity");
  if (!box) return;
  const ref = segRef(seg);
  let answer;
  try {
    answer = await api("GET", `/segments/${ref}/activity?minutes=${MINUTES}`);
  } catch (e) {
    box.replaceChildren(el("p", { class: "muted", text: e.status === 401 ? "" : `No activity to show (${e.message}).` }));
    return;
  }
  state = { ref, minutes: answer.minutes, entered: answer.entered, exited: answer.exited };
  if (typeof EventSource === "function") {
    const url = `/api/events/stream?segment=${encodeURIComponent(seg.id ?? seg.name)}&from=${answer.last_offset}`;
    source = new EventSource(url, { withCredentials: true });
    source.addEventListener("membership", (ev) => { try { add(JSON.parse(ev.data)); } catch { /* a malformed event is skipped */ } });
  }
  render();
}
