// Hash routes, so reload, Back and bookmarks work: #/segments, #/segments/ID,
// #/segments/ID/versions/N, #/new. Leaving unsaved changes asks first.

import { confirmDialog } from "./dialog.js";

let handler = () => {};
let guard = () => false;
let current = location.hash;
let ignoreNext = false;

export function parse(hash = location.hash) {
  const h = hash.replace(/^#\/?/, "");
  let m;
  if (h === "new") return { view: "new" };
  if ((m = h.match(/^segments\/([^/]+)\/versions\/(\d+)$/))) return { view: "version", ref: m[1], version: Number(m[2]) };
  if ((m = h.match(/^segments\/([^/]+)$/))) return { view: "segment", ref: m[1] };
  return { view: "list" };
}

export function onRoute(fn, isDirty) {
  handler = fn;
  guard = isDirty;
  window.addEventListener("hashchange", async () => {
    if (ignoreNext) { ignoreNext = false; current = location.hash; return; }
    const target = location.hash;
    if (guard() && !(await confirmDialog("Leave without saving?", "This segment has changes that are not saved. A copy is kept in this browser, and you can restore it when you come back.", "Leave"))) {
      ignoreNext = true;
      location.hash = current;
      return;
    }
    current = target;
    handler(parse(target));
  });
  window.addEventListener("beforeunload", (ev) => {
    if (!guard()) return;
    ev.preventDefault();
    ev.returnValue = "";
  });
}

/** Go to ``hash``; when already there, run the route again (e.g. to reload the list). */
export function go(hash) {
  if (location.hash === hash) { current = hash; handler(parse(hash)); return; }
  location.hash = hash;
}

/** Change the URL without running the route (the page is already showing it). */
export function replaceQuietly(hash) {
  if (location.hash === hash) return;
  current = hash;
  history.replaceState(null, "", hash);
}

export const route = () => { current = location.hash; handler(parse()); };
