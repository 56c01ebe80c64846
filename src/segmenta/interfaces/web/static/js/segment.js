// One segment in the builder: open, save a draft, publish with a before/after check, versions,
// history, members (paged, exportable), status, lists' uploads.

import { api, segRef } from "./api.js";
import {
  definitionForServer, fmtCell, hasFresh, isDirty, isEmptyGroup, markClean, newDefinition, renderGroups,
  scheduleEstimate, showProblems, usedColumns,
} from "./builder.js";
import { confirmDialog, dialog } from "./dialog.js";
import { showActivity } from "./activity.js";
import { $, clone, el, fmtTime } from "./dom.js";
import { dropDraft, keepDraft, readDraft } from "./draft.js";
import { M, colLabel, tableLabel } from "./model.js";
import { replaceQuietly } from "./router.js";
import { S, can } from "./state.js";

const pageSize = () => Number($("#members-size").value) || 10;

export function show(view) {
  for (const id of ["login-view", "list-view", "builder-view"]) $(`#${id}`).hidden = id !== view;
  $("#main").focus({ preventScroll: true });
}

const plural = (n, one, many) => `${n.toLocaleString()} ${n === 1 ? one : many}`;

export const problemsOf = (e) => (e.problems && e.problems.length ? e.problems : [{ where: "", message: e.message }]);

export async function refreshSegments() {
  S.segments = await api("GET", "/segments");
  return S.segments;
}

const defaultAudience = () => (Object.keys(M.model.tables).includes("contact") ? "contact" : Object.keys(M.model.tables)[0]);

export function openNew() {
  S.kind = "dynamic";
  openBuilder(newDefinition(defaultAudience()), null);
}

export function openBuilder(def, saved, { version = null } = {}) {
  S.def = def;
  S.saved = saved;
  S.version = version;
  const isList = def.groups === null;
  $("#builder-title").textContent = version ? `${saved.name}: version ${version.version}` : saved ? saved.name : "New segment";
  $("#builder-title").title = saved ? saved.name : "";
  $("#seg-name").value = def.name || (saved ? saved.name : "");
  $("#seg-name").disabled = !!saved;
  const aud = $("#seg-audience");
  aud.replaceChildren(...Object.keys(M.model.tables).map((t) => el("option", { value: t, text: tableLabel(t) })));
  aud.value = def.audience;
  aud.disabled = !!saved;
  for (const r of document.querySelectorAll("input[name=seg-kind]")) {
    r.checked = r.value === (saved ? (saved.kind === "static" ? "static" : "dynamic") : S.kind);
    r.disabled = !!saved;
  }
  $("#seg-status").replaceChildren(saved ? statusLine(saved) : "Draft, not saved yet.");
  $("#version-banner").hidden = !version;
  if (version) {
    $("#version-text").textContent = `You are looking at version ${version.version} of ${fmtTime(version.created_at)}. It cannot be changed here.`;
    $("#version-current").href = `#/segments/${segRef(saved)}`;
  }
  $("#details-card").hidden = !saved;
  $("#members-card").hidden = !saved;
  $("#upload-card").hidden = !isList || !!version || !can("segments.import");
  S.readonly = !!version || (!!saved && saved.status === "expired") || !can(saved ? "segments.edit" : "segments.create");
  for (const id of ["publish", "save-draft", "add-group"]) $(`#${id}`).hidden = isList || S.readonly;
  if (!can("segments.publish")) $("#publish").hidden = true;
  $("#builder-actions").hidden = isList || S.readonly;
  $("#expired-note").hidden = !(saved && saved.status === "expired");
  $("#preview-card").hidden = isList;
  $("#list-note").hidden = !isList;
  $("#save-message").textContent = "";
  $("#draft-offer").hidden = true;
  $("#upload-form").reset();
  $("#upload-result").replaceChildren();
  $("#upload-warnings").replaceChildren();
  $("#upload-column").replaceChildren(el("option", { value: "", text: "Find it automatically" }));
  showProblems([]);
  renderGroups();
  show("builder-view");
  markClean();
  if (saved) { loadDetails(); loadMembers(0); }
  if (!version && !isList) offerDraft();
  scheduleEstimate(0);
}

function offerDraft() {
  const kept = readDraft(S.saved);
  if (!kept || JSON.stringify(kept.definition) === S.baseline) return;
  const box = $("#draft-offer");
  box.hidden = false;
  $("#draft-offer-text").textContent = `Unsaved changes from ${fmtTime(kept.at)} were kept in this browser.`;
}

export function restoreDraft() {
  const kept = readDraft(S.saved);
  $("#draft-offer").hidden = true;
  if (!kept) return;
  S.def = clone(kept.definition);
  if (!S.saved && kept.kind) S.kind = kept.kind;
  $("#seg-name").value = S.def.name || (S.saved ? S.saved.name : "");
  $("#seg-audience").value = S.def.audience;
  renderGroups();
  changed();
}

export function discardDraft() {
  dropDraft(S.saved);
  $("#draft-offer").hidden = true;
}

/** Every edit: estimate again, and keep a local copy while there are unsaved changes. */
export function changed() {
  scheduleEstimate(250);
  if (S.def && S.def.groups !== null && !S.version) {
    if (isDirty()) keepDraft(definitionForServer(), S.saved, S.kind);
    else dropDraft(S.saved);
  }
}

export function statusLine(seg) {
  const pending = seg.has_draft && seg.live_version;
  const version = pending ? `live version ${seg.live_version}` : `version ${seg.version ?? 1}`;
  const bits = [seg.status_reason, seg.kind, version, plural(seg.size ?? 0, "member", "members")].filter(Boolean);
  return el("span", {}, el("span", { class: `status ${seg.status}`, text: seg.status }), ` ${bits.join(" · ")}`,
    pending ? el("span", { class: "status draft pending", id: "pending-draft", text: `unpublished draft: version ${seg.draft_version}` }) : null,
    seg.stale ? el("span", { class: "status stale", text: "stale: a segment it uses changed" }) : null);
}

function freshProblems() {
  return hasFresh() ? [{ where: "", message: "A new condition has no value yet: give it one, or remove it." }] : [];
}

export async function save() {
  const definition = definitionForServer();
  if (!definition.name) { showProblems([{ where: "", message: "Give the segment a name before saving." }]); $("#seg-name").focus(); return null; }
  const fresh = freshProblems();
  if (fresh.length) { showProblems(fresh); return null; }
  try {
    const wasLive = S.saved && S.saved.status === "live";
    const seg = S.saved
      ? await api("PUT", `/segments/${segRef(S.saved)}`, { definition })
      : await api("POST", "/segments", { definition, name: definition.name, snapshot: S.kind === "static" });
    dropDraft(S.saved);
    dropDraft(seg);
    S.saved = seg;
    markClean();
    $("#seg-name").disabled = true;
    $("#seg-audience").disabled = true;
    for (const r of document.querySelectorAll("input[name=seg-kind]")) r.disabled = true;
    $("#builder-title").textContent = seg.name;
    $("#seg-status").replaceChildren(statusLine(seg));
    $("#details-card").hidden = false;
    $("#members-card").hidden = false;
    replaceQuietly(`#/segments/${segRef(seg)}`);
    $("#save-message").textContent = wasLive
      ? `Draft saved (version ${seg.version}); the live audience is unchanged until you publish.`
      : `Saved version ${seg.version}.`;
    await refreshSegments();
    loadDetails();
    return seg;
  } catch (e) {
    showProblems(problemsOf(e));
    return null;
  }
}

/** Publish: show the live size now and the size after, warn about groups that match everyone, ask. */
export async function publish() {
  const definition = definitionForServer();
  const fresh = freshProblems();
  if (fresh.length) { showProblems(fresh); return; }
  let after;
  try { after = (await api("POST", "/definitions/estimate", { definition })).count; } catch (e) { showProblems(problemsOf(e)); return; }
  const live = S.saved && S.saved.status === "live";
  const before = live ? (S.saved.size ?? 0) : null;
  const empty = S.def.groups.map((g, i) => (isEmptyGroup(g) ? i + 1 : null)).filter(Boolean);
  const body = [
    el("dl", { class: "counts" },
      el("dt", { text: "Live audience now" }), el("dd", { id: "publish-before", text: before === null ? "not published yet" : before.toLocaleString() }),
      el("dt", { text: "After publishing" }), el("dd", { id: "publish-after", text: after.toLocaleString() })),
  ];
  if (before !== null) body.push(el("p", { class: "muted", text: `${after >= before ? "+" : "−"}${Math.abs(after - before).toLocaleString()} members` }));
  if (empty.length) {
    body.push(el("p", { class: "warning", id: "publish-empty-warning",
      text: `Group ${empty.join(", ")} has no conditions and matches every record of ${tableLabel(S.def.audience)}.` }));
  }
  const ok = await dialog({ title: `Publish “${definition.name || "this segment"}”?`, body,
    buttons: [{ value: true, text: empty.length ? "Publish anyway" : "Publish", primary: true, id: "dialog-ok" }] });
  if (!ok) return;
  if (!S.saved || isDirty()) { if (!(await save())) return; }
  await segmentAction("publish");
  await refreshSegments();
}

/** Start editing from the past version on screen: it becomes unsaved changes to the current one. */
export function useVersion() {
  if (!S.version || !S.saved) return;
  const past = S.def;
  S.def = clone(S.saved.definition || past);
  S.version = null;
  markClean(); // the current version is what is saved
  S.def = past;
  replaceQuietly(`#/segments/${segRef(S.saved)}`);
  $("#version-banner").hidden = true;
  $("#builder-title").textContent = S.saved.name;
  unlock();
  changed();
  $("#save-message").textContent = "Editing from an earlier version: save a draft to keep it.";
}

/** After a reactivation to Draft the segment can be edited again. */
export function unlock() {
  S.readonly = !can("segments.edit");
  for (const id of ["publish", "save-draft", "add-group", "builder-actions"]) $(`#${id}`).hidden = S.readonly;
  if (!can("segments.publish")) $("#publish").hidden = true;
  $("#expired-note").hidden = true;
  renderGroups();
}

export async function segmentAction(action, body) {
  if (!S.saved) return;
  try {
    const seg = await api("POST", `/segments/${segRef(S.saved)}/${action}`, body);
    S.saved = { ...S.saved, ...seg };
    $("#seg-status").replaceChildren(statusLine(S.saved));
    const r = seg.refresh;
    const done = { publish: "Published", refresh: "Refreshed", stop: "Stopped", activate: "Status changed" }[action] || action;
    $("#save-message").textContent = r && r.size !== undefined && r.size !== null
      ? `${done}: ${plural(Number(r.size), "member", "members")} (${Number(r.entered ?? 0).toLocaleString()} entered, ${Number(r.exited ?? 0).toLocaleString()} left); now ${S.saved.status}.`
      : `${done}: now ${S.saved.status}.`;
    loadDetails();
    loadMembers(0);
  } catch (e) {
    $("#save-message").textContent = "";
    showProblems(problemsOf(e));
  }
}

export async function openSegment(ref, versionNo = null) {
  const seg = await api("GET", `/segments/${ref}`);
  let def = seg.definition;
  let version = null;
  if (versionNo !== null) {
    version = await api("GET", `/segments/${ref}/versions/${versionNo}`);
    def = version.definition;
  }
  // A static list has no definition: its members come from uploads and manual additions.
  openBuilder(def ? clone(def) : { name: seg.name, audience: seg.audience, groups: null }, seg, { version });
}

export async function loadDetails() {
  const seg = S.saved;
  if (!seg) return;
  const ref = segRef(seg);
  renderFacts(seg);
  showActivity(seg); // not awaited: the live panel fills in by itself
  try {
    const versions = await api("GET", `/segments/${ref}/versions`);
    $("#versions").replaceChildren(...versions.map((v) => el("li", {},
      el("a", { href: `#/segments/${ref}/versions/${v.version}`, text: `v${v.version}` }),
      ` · ${fmtTime(v.created_at)}${v.created_by ? ` · ${v.created_by}` : ""}`)));
  } catch { $("#versions").replaceChildren(); }
  try {
    const hist = await api("GET", `/segments/${ref}/history`);
    const all = Array.isArray(hist) ? hist : hist.refreshes || [];
    const runs = all.filter((r) => r.size !== null && r.size !== undefined);
    const max = Math.max(1, ...runs.map((r) => r.size || 0));
    const bars = el("div", { class: "bars", role: "img", "aria-label": `Size over ${runs.length} refreshes` });
    for (const r of runs) {
      const bar = el("span", { title: `${fmtTime(r.at || r.refreshed_at)}: ${r.size} (+${r.entered ?? 0} / -${r.exited ?? 0})` });
      bar.style.height = `${Math.round(100 * (r.size || 0) / max)}%`; // CSSOM, which the CSP allows
      bars.append(bar);
    }
    const last = runs[runs.length - 1];
    $("#history").replaceChildren(runs.length ? bars : "",
      el("p", { class: "muted", text: runs.length ? `${plural(all.length, "refresh", "refreshes")}; latest size ${Number(last.size).toLocaleString()}`
        : all.length ? plural(all.length, "refresh", "refreshes") : "Not refreshed yet." }));
  } catch { $("#history").replaceChildren(); }
}

/** Used by, next refresh, expiry, staleness: shown when the service tells them. */
function renderFacts(seg) {
  const facts = [];
  const usedBy = seg.used_by;
  if (Array.isArray(usedBy)) {
    const items = usedBy.map((u) => {
      if (typeof u === "string") return u;
      const label = `${u.name || u.id}${u.kind && u.kind !== "segment" ? ` (${u.kind})` : ""}`;
      return u.kind === "segment" || !u.kind ? el("a", { href: `#/segments/${segRef(u)}`, text: label, class: "used-by" }) : label;
    });
    facts.push(["Used by", items.length ? items.flatMap((x, i) => (i ? [", ", x] : [x])) : "nothing"]);
  }
  if (seg.next_refresh_at) facts.push(["Next refresh", fmtTime(seg.next_refresh_at)]);
  else if ("next_refresh_at" in seg && seg.kind === "dynamic") facts.push(["Next refresh", seg.status === "live" ? "not scheduled" : "only while live"]);
  if (seg.expires_at) facts.push(["Expires", fmtTime(seg.expires_at)]);
  if (seg.last_refresh_at) facts.push(["Last refresh", fmtTime(seg.last_refresh_at)]);
  $("#facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { "data-fact": k }, v)]));
  $("#reactivate").hidden = seg.status !== "expired" || !can("segments.activate");
  $("#make-ready").hidden = !(seg.status === "draft" && seg.status_reason === "draft" && S.saved && S.saved.reactivating) || !can("segments.activate");
  $("#refresh-stale").hidden = !seg.stale || !can("segments.refresh");
  $("#stop-seg").hidden = !["live", "going_live", "error"].includes(seg.status) || !can("segments.stop");
  $("#refresh-seg").hidden = !(seg.status === "live" || seg.kind === "static") || !can("segments.refresh");
}

let memberOffset = 0;
export async function loadMembers(offset) {
  const seg = S.saved;
  if (!seg) return;
  const ref = segRef(seg);
  const defn = S.def && S.def.groups !== null ? S.def : { audience: seg.audience, groups: [] };
  const columns = usedColumns(defn);
  const q = new URLSearchParams({ offset: String(offset), limit: String(pageSize()) });
  if (columns.length) q.set("columns", columns.join(","));
  $("#members-export").href = `/api/segments/${ref}/members.csv${columns.length ? `?columns=${encodeURIComponent(columns.join(","))}` : ""}`;
  try {
    const page = await api("GET", `/segments/${ref}/members?${q}`);
    memberOffset = offset;
    const cols = page.columns || [page.key];
    const rows = page.rows || page.keys.map((k) => ({ [page.key]: k }));
    $("#members").replaceChildren(rows.length
      ? el("div", { class: "table-scroll" }, el("table", {},
        el("thead", {}, el("tr", {}, ...cols.map((c) => el("th", { scope: "col", text: colLabel(seg.audience, c), title: c })))),
        el("tbody", {}, ...rows.map((r) => el("tr", {}, ...cols.map((c) => el("td", { text: fmtCell(r[c]), title: fmtCell(r[c]) })))))))
      : el("p", { class: "muted", text: "No members stored yet." }));
    const total = page.total ?? rows.length;
    $("#members-range").textContent = total ? `${offset + 1}–${offset + rows.length} of ${total.toLocaleString()} ${tableLabel(seg.audience)} records` : "";
    $("#members-prev").disabled = offset === 0;
    $("#members-next").disabled = offset + rows.length >= total;
  } catch (e) {
    $("#members").replaceChildren(el("p", { class: "error", text: e.message }));
  }
}
export const membersPrev = () => loadMembers(Math.max(0, memberOffset - pageSize()));
export const membersNext = () => loadMembers(memberOffset + pageSize());

export async function upload(ev) {
  ev.preventDefault();
  const file = $("#upload-file").files[0];
  if (!file || !S.saved) return;
  const form = new FormData();
  form.append("file", file);
  if ($("#upload-column").value) form.append("column", $("#upload-column").value);
  const out = $("#upload-result");
  $("#upload-warnings").replaceChildren();
  try {
    const r = await api("POST", `/segments/${segRef(S.saved)}/import-csv`, undefined, { form });
    out.replaceChildren(...["read", "found", "not_found", "duplicates", "members"].flatMap((k) => [el("dt", { text: k.replace("_", " ") }), el("dd", { id: `upload-${k}`, text: r[k] })]));
    $("#upload-warnings").replaceChildren(...(r.warnings || []).map((w) => el("li", { class: "warning", text: w })));
    if (r.not_found_url && r.not_found) out.append(el("dt", { text: "download" }), el("dd", {}, el("a", { href: r.not_found_url, text: "not-found rows (CSV)" })));
    S.saved = await api("GET", `/segments/${segRef(S.saved)}`);
    $("#seg-status").replaceChildren(statusLine(S.saved));
    $("#estimate-count").textContent = String(S.saved.size ?? r.members ?? 0);
    loadMembers(0);
  } catch (e) {
    out.replaceChildren(el("dt", { text: "error" }), el("dd", { class: "error", role: "alert", id: "upload-error",
      text: problemsOf(e).map((p) => (p.where ? `${p.where}: ${p.message}` : p.message)).join("\n") }));
    if (/email column/i.test(e.message)) out.append(el("dt", { text: "what now" }), el("dd", { text: "Choose the email column above and upload again." }));
    if ($("#upload-column").options.length > 1) $("#upload-column").focus();
  }
}

/** The chosen file's header row (delimiter , ; or tab, as the service detects it), offered as the email column. */
export async function readHeaders() {
  const file = $("#upload-file").files[0];
  const sel = $("#upload-column");
  sel.replaceChildren(el("option", { value: "", text: "Find it automatically" }));
  if (!file) return;
  const head = (await file.slice(0, 65536).text()).replace(/^\uFEFF/, "").split(/\r?\n/)[0] || "";
  const delim = ["\t", ";", ","].map((d) => [d, head.split(d).length]).sort((a, b) => b[1] - a[1])[0][0];
  for (const h of head.split(delim).map((x) => x.trim().replace(/^"|"$/g, "")).filter(Boolean)) sel.append(el("option", { value: h, text: h }));
}

/** A new static list: name and audience in an in-page dialog. */
export async function newList() {
  const tables = Object.keys(M.model.tables);
  const result = await dialog({
    title: "New static list",
    body: [
      el("label", {}, "Name", el("input", { id: "list-name", name: "name", required: true, maxlength: "200", autocomplete: "off" })),
      el("label", {}, "Audience", el("select", { id: "list-audience", name: "audience" },
        ...tables.map((t) => el("option", { value: t, text: tableLabel(t), selected: t === defaultAudience() })))),
      el("p", { class: "error", id: "list-error", role: "alert" }),
    ],
    buttons: [{ submit: true, primary: true, id: "list-create", text: "Create list",
      value: (form) => ({ name: form.querySelector("#list-name").value.trim(), audience: form.querySelector("#list-audience").value }) }],
    onOpen: (form) => form.querySelector("#list-name").focus(),
  });
  if (!result || !result.name) return null;
  try {
    const seg = await api("POST", "/segments", { list: true, name: result.name, audience: result.audience });
    await refreshSegments();
    return seg;
  } catch (e) {
    await confirmDialog("The list was not created", problemsOf(e).map((p) => p.message).join("\n"), "OK");
    return null;
  }
}
