// The "API tokens" page (#/tokens): the signed-in user's tokens for scripts and other programs.
// Lists them without their secrets, makes one (label, optional expiry in days; the secret is shown
// once, in a dialog, and never again) and revokes one after an in-page confirmation.

import { api } from "./api.js";
import { confirmDialog, dialog } from "./dialog.js";
import { $, el, fmtTime } from "./dom.js";
import { S, can } from "./state.js";

const MAX_DAYS = 3650; // the service's limit (it checks anyway)
const VIEWS = ["login-view", "list-view", "builder-view", "tokens-view"];

const userPath = () => `/users/${encodeURIComponent(S.me.username)}/tokens`;

function say(text, kind = "muted") {
  const box = $("#tokens-message");
  box.className = kind;
  box.textContent = text;
}

/** Show the page and load the signed-in user's tokens. */
export async function showTokens() {
  for (const id of VIEWS) $(`#${id}`).hidden = id !== "tokens-view";
  $("#main").focus({ preventScroll: true });
  $("#tokens-user").textContent = S.me.username;
  say("");
  const allowed = can("users.admin");
  $("#token-new").hidden = !allowed;
  if (!allowed) {
    renderTokens([]);
    $("#tokens-empty").hidden = true;
    say("Only an admin can see and make API tokens. Ask an admin to make one for you.", "error");
    return;
  }
  await loadTokens();
}

export function hideTokens() { $("#tokens-view").hidden = true; }

async function loadTokens() {
  try {
    renderTokens(await api("GET", userPath()));
  } catch (e) {
    if (e.status === 401) return;
    say(e.status === 403 ? "Only an admin can see and make API tokens." : `The tokens could not be loaded: ${e.message}`, "error");
  }
}

function stateText(t) {
  if (t.state === "revoked") return `revoked ${fmtTime(t.revoked_at)}`;
  if (t.state === "expired") return "expired";
  return "active";
}

function renderTokens(tokens) {
  const body = $("#tokens-table tbody");
  body.replaceChildren(...tokens.map((t) => el("tr", { "data-token-id": String(t.id), "data-state": t.state },
    el("td", { text: t.label || "(no label)" }),
    el("td", {}, el("code", { text: `${t.prefix}…` })),
    el("td", { text: fmtTime(t.created_at) }),
    el("td", { text: t.expires_at ? fmtTime(t.expires_at) : "never" }),
    el("td", { text: t.last_used_at ? fmtTime(t.last_used_at) : "never" }),
    el("td", {}, el("span", { class: `status ${t.state === "active" ? "live" : "expired"}`, text: stateText(t) })),
    el("td", {}, t.state === "active"
      ? el("button", { type: "button", class: "secondary", "aria-label": `Revoke ${t.label || t.prefix}`, text: "Revoke", onclick: () => revoke(t) })
      : null),
  )));
  $("#tokens-table").hidden = tokens.length === 0;
  $("#tokens-empty").hidden = tokens.length !== 0;
}

async function revoke(t) {
  const name = t.label ? `“${t.label}” (${t.prefix}…)` : `${t.prefix}…`;
  const yes = await confirmDialog("Revoke this token?", `Token ${name} stops working at once: programs using it are refused from now on. This cannot be undone.`, "Revoke");
  if (!yes) return;
  try {
    await api("DELETE", `${userPath()}/${t.id}`);
    say(`Token ${name} is revoked.`, "ok");
  } catch (e) {
    if (e.status === 401) return;
    say(`The token could not be revoked: ${e.message}`, "error");
  }
  await loadTokens();
}

/** Ask for a label and an optional expiry; null when cancelled. */
function askNewToken() {
  const label = el("input", { id: "token-label", maxlength: "200", placeholder: "e.g. nightly export", autocomplete: "off" });
  const days = el("input", { id: "token-days", type: "number", min: "1", max: String(MAX_DAYS), step: "1", placeholder: "never" });
  const problem = el("p", { id: "token-problem", class: "error", role: "alert" });
  return dialog({
    title: "New API token",
    body: [
      el("label", {}, "Label (what it is for) ", label),
      el("label", {}, `Expires after (days, 1 to ${MAX_DAYS}; empty: until revoked) `, days),
      problem,
    ],
    buttons: [{
      submit: true, primary: true, id: "token-create", text: "Make the token",
      value: () => {
        const raw = days.value.trim();
        const body = { label: label.value.trim() };
        if (raw !== "") {
          const n = Number(raw);
          if (!Number.isInteger(n) || n < 1 || n > MAX_DAYS) {
            problem.textContent = `Expires after: give a whole number of days from 1 to ${MAX_DAYS}, or leave it empty for a token that lasts until revoked.`;
            days.focus();
            return undefined; // keeps the dialog open
          }
          body.expires_in_days = n;
        }
        return body;
      },
    }],
    onOpen: (form) => { form.noValidate = true; label.focus(); }, // our own message, in plain words
  });
}

/** The secret, once: a read-only field and a copy button; closing the dialog forgets it. */
function showSecret(made) {
  const secret = el("input", { id: "token-secret", readonly: true, value: made.token, spellcheck: "false", autocomplete: "off", class: "secret" });
  const note = el("p", { id: "token-copied", class: "muted", role: "status" });
  const copy = el("button", { type: "button", class: "secondary", id: "token-copy", text: "Copy", onclick: async (ev) => {
    ev.preventDefault();
    secret.select();
    try {
      await navigator.clipboard.writeText(made.token);
      note.textContent = "Copied.";
    } catch {
      note.textContent = document.execCommand && document.execCommand("copy") ? "Copied." : "The browser did not allow copying: the token is selected, copy it with Ctrl+C (⌘C).";
    }
  } });
  return dialog({
    title: "Your new API token",
    body: [
      el("p", { text: "Copy it now and keep it somewhere safe: this is the only time it is shown. If you lose it, revoke it and make a new one." }),
      el("div", { class: "actions" }, secret, copy),
      note,
      el("p", { class: "muted", text: made.expires_at ? `It stops working on ${fmtTime(made.expires_at)} (UTC).` : "It works until it is revoked." }),
      el("p", { class: "muted", text: "Programs send it as the header “Authorization: Bearer <token>”." }),
    ],
    buttons: [{ value: true, text: "I have copied it", primary: true, id: "token-done" }],
    onOpen: () => secret.select(),
  });
}

async function newToken() {
  const body = await askNewToken();
  if (!body) return;
  let made;
  try {
    made = await api("POST", userPath(), body);
  } catch (e) {
    if (e.status === 401) return;
    say(`The token could not be made: ${e.message}`, "error");
    return;
  }
  await loadTokens();
  say(`Token “${body.label || "(no label)"}” is made.`, "ok");
  await showSecret(made);
  made.token = null;
}

export function wireTokens() {
  $("#token-new").addEventListener("click", newToken);
}
