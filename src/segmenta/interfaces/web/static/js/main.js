// segmenta web segment builder: the entry module (ES modules, no build step), talking to /api.

import { stopActivity } from "./activity.js";
import { api, whenUnauthorized } from "./api.js";
import { isDirty, newCondition, renderGroups, setHooks } from "./builder.js";
import { confirmDialog, dialog } from "./dialog.js";
import { $, el } from "./dom.js";
import { dropAllDrafts } from "./draft.js";
import { showList, renderList } from "./list.js";
import { M } from "./model.js";
import { go, onRoute, route } from "./router.js";
import {
  changed, discardDraft, loadDetails, loadMembers, membersNext, membersPrev, newList, openNew, openSegment, publish,
  readHeaders, restoreDraft, save, segmentAction, show, unlock, upload, useVersion,
} from "./segment.js";
import { S, can } from "./state.js";
import { hideTokens, showTokens, wireTokens } from "./tokens.js";

function showLogin() {
  S.me = null;
  stopActivity();
  $("#whoami").textContent = "";
  $("#sign-out").hidden = true;
  $("#nav-tokens").hidden = true;
  hideTokens();
  show("login-view");
  $("#login-username").focus();
}
whenUnauthorized(showLogin);

async function start() {
  try {
    S.me = await api("GET", "/auth/me");
  } catch (e) { if (e.status !== 401) $("#login-error").textContent = e.message; else showLogin(); return; }
  $("#whoami").textContent = `${S.me.username} · ${S.me.role}${S.me.pii_restricted ? " · PII restricted" : ""}`;
  $("#sign-out").hidden = false;
  M.model = await api("GET", "/model");
  try { S.roles = await api("GET", "/auth/roles"); } catch { S.roles = null; }
  for (const id of ["nav-new", "new-segment", "new-list"]) $(`#${id}`).hidden = !can("segments.create");
  $("#nav-tokens").hidden = !can("users.admin");
  route();
}

async function onRouteChange(r) {
  stopActivity(); // a segment page opens its own again
  if (!S.me) return;
  if (location.hash === "#/tokens") { await showTokens(); return; }
  hideTokens();
  try {
    if (r.view === "new") openNew();
    else if (r.view === "segment") await openSegment(r.ref);
    else if (r.view === "version") await openSegment(r.ref, r.version);
    else await showList();
  } catch (e) {
    if (e.status === 401) return;
    await showList();
    $("#list-error").textContent = e.status === 404 ? "That segment does not exist (any more)." : e.message;
  }
}

/** Removing group 1: the next group cannot keep its link; ask how it should read when that matters. */
async function removeFirstGroup() {
  const next = S.def.groups[1];
  if (!next || next.link !== "but_not") { S.def.groups.splice(0, 1); return true; }
  const choice = await dialog({
    title: "Remove group 1?",
    body: [el("p", { text: "Group 2 reads “BUT NOT”: it removes records from group 1. Without group 1, what should the segment be?" })],
    buttons: [
      { value: "everyone-but", text: "Everyone except group 2", primary: true, id: "first-everyone-but" },
      { value: "only", text: "Only the records of group 2", id: "first-only" },
    ],
  });
  if (choice === "everyone-but") { S.def.groups[0] = { where: { all: [] } }; return true; }
  if (choice === "only") { S.def.groups.splice(0, 1); return true; }
  return false;
}
setHooks({ changed, removeFirstGroup });

const hasConditions = () => S.def && S.def.groups && S.def.groups.some((g) => JSON.stringify(g.where) !== JSON.stringify({ all: [] }));

function wire() {
  $("#login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("#login-error").textContent = "";
    try {
      await api("POST", "/auth/login", { username: $("#login-username").value, password: $("#login-password").value });
      await start();
    } catch (e) { $("#login-error").textContent = e.status === 401 ? "Wrong user name or password." : e.message; }
  });
  $("#sign-out").addEventListener("click", async () => {
    if (isDirty() && !(await confirmDialog("Sign out without saving?", "Your unsaved changes are lost: signing out removes your drafts from this browser.", "Sign out"))) return;
    const who = S.me ? S.me.username : null;
    try { await api("POST", "/auth/logout"); } catch { /* signed out either way */ }
    if (who) dropAllDrafts(who);
    S.def = null;
    showLogin();
  });
  $("#nav-segments").addEventListener("click", () => go("#/segments"));
  $("#nav-new").addEventListener("click", () => go("#/new"));
  $("#nav-tokens").addEventListener("click", () => go("#/tokens"));
  wireTokens();
  $("#new-segment").addEventListener("click", () => go("#/new"));
  $("#new-list").addEventListener("click", async () => {
    const seg = await newList();
    if (seg) go(`#/segments/${seg.id ?? encodeURIComponent(seg.name)}`);
  });
  $("#list-search").addEventListener("input", renderList);
  $("#list-sort").addEventListener("change", renderList);
  const aud = $("#seg-audience");
  aud.addEventListener("change", async (e) => {
    const was = S.def.audience;
    if (hasConditions() && !(await confirmDialog("Change the audience?", "The groups' conditions are about the current audience's records, so changing it removes them all.", "Change and clear the groups"))) {
      aud.value = was;
      return;
    }
    S.def = { ...S.def, audience: e.target.value, groups: [{ where: { all: [newCondition(e.target.value)] } }] };
    renderGroups();
    changed();
  });
  $("#seg-name").addEventListener("input", changed);
  for (const r of document.querySelectorAll("input[name=seg-kind]")) r.addEventListener("change", (e) => { S.kind = e.target.value; });
  $("#add-group").addEventListener("click", () => { S.def.groups.push({ link: "and_also", where: { all: [newCondition(S.def.audience)] } }); renderGroups(); changed(); });
  $("#save-draft").addEventListener("click", save);
  $("#publish").addEventListener("click", publish);
  $("#refresh-seg").addEventListener("click", () => segmentAction("refresh"));
  $("#refresh-stale").addEventListener("click", () => segmentAction("refresh"));
  $("#stop-seg").addEventListener("click", () => segmentAction("stop"));
  $("#reactivate").addEventListener("click", async () => {
    await segmentAction("activate", { status_reason: "draft" });
    S.saved.reactivating = true;
    if (S.saved.status !== "expired") unlock();
    loadDetails();
  });
  $("#make-ready").addEventListener("click", async () => { await segmentAction("activate", { status_reason: "ready" }); S.saved.reactivating = false; loadDetails(); });
  $("#members-prev").addEventListener("click", membersPrev);
  $("#members-next").addEventListener("click", membersNext);
  $("#members-size").addEventListener("change", () => loadMembers(0));
  $("#upload-form").addEventListener("submit", upload);
  $("#upload-file").addEventListener("change", readHeaders);
  $("#draft-restore").addEventListener("click", restoreDraft);
  $("#version-use").addEventListener("click", useVersion);
  $("#draft-discard").addEventListener("click", discardDraft);
  onRoute(onRouteChange, isDirty);
}

wire();
start();
