// An in-page modal dialog (never window.prompt/confirm): a title, a body, and buttons that resolve
// the promise with their value. Escape or "Cancel" resolves with null.

import { $, el } from "./dom.js";

export function dialog({ title, body = [], buttons = [{ value: true, text: "OK", primary: true }], onOpen }) {
  return new Promise((resolve) => {
    const box = $("#dialog");
    const form = el("form", { method: "dialog", class: "dialog-form" });
    const done = (v) => { box.close(); box.replaceChildren(); resolve(v); };
    form.append(el("h3", { id: "dialog-title", text: title }), ...[body].flat());
    const row = el("div", { class: "actions dialog-actions" });
    for (const b of buttons) {
      row.append(el("button", { type: b.submit ? "submit" : "button", class: b.primary ? "primary" : "secondary", id: b.id,
        "data-value": String(b.value), onclick: (ev) => {
          if (b.submit) return; // handled by the submit listener
          ev.preventDefault();
          done(typeof b.value === "function" ? b.value(form) : b.value);
        }, text: b.text }));
    }
    row.append(el("button", { type: "button", class: "secondary", id: "dialog-cancel", text: "Cancel", onclick: (ev) => { ev.preventDefault(); done(null); } }));
    form.append(row);
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const b = buttons.find((x) => x.submit);
      if (!b) return;
      const v = typeof b.value === "function" ? b.value(form) : b.value;
      if (v !== undefined) done(v);
    });
    box.replaceChildren(form);
    box.setAttribute("aria-labelledby", "dialog-title");
    box.addEventListener("cancel", (ev) => { ev.preventDefault(); done(null); }, { once: true });
    box.showModal();
    if (onOpen) onOpen(form);
  });
}

export const confirmDialog = (title, message, yes = "Continue") =>
  dialog({ title, body: [el("p", { text: message })], buttons: [{ value: true, text: yes, primary: true, id: "dialog-ok" }] });
