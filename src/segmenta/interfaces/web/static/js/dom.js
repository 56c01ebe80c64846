// Small DOM helpers. No inline handlers or styles: events through addEventListener (CSP-safe).

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

/** An element with attributes ("on…" attributes become listeners, "text" the text) and children. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "text") node.textContent = v;
    else if (v === true) node.setAttribute(k, "");
    else node.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

export function fmtTime(t) { return t ? String(t).replace("T", " ").slice(0, 16) : ""; }

export const clone = (x) => (x === undefined ? undefined : JSON.parse(JSON.stringify(x)));
