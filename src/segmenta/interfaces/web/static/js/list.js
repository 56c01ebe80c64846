// The segment list: search, sort, and housekeeping (open, rename, duplicate, delete).

import { api, segRef } from "./api.js";
import { confirmDialog, dialog } from "./dialog.js";
import { $, el, fmtTime } from "./dom.js";
import { tableLabel } from "./model.js";
import { go } from "./router.js";
import { problemsOf, refreshSegments, show } from "./segment.js";
import { S, can } from "./state.js";

const SORTS = {
  name: (a, b) => a.name.localeCompare(b.name),
  size: (a, b) => (b.size ?? -1) - (a.size ?? -1),
  status: (a, b) => a.status.localeCompare(b.status) || a.name.localeCompare(b.name),
  refreshed: (a, b) => String(b.last_refresh_at || "").localeCompare(String(a.last_refresh_at || "")),
};

export async function showList() {
  S.def = null; // nothing is being edited on the list
  S.saved = null;
  S.baseline = null;
  await refreshSegments();
  renderList();
  show("list-view");
}

export function renderList() {
  const q = $("#list-search").value.trim().toLowerCase();
  const sort = SORTS[$("#list-sort").value] || SORTS.name;
  const rows = S.segments.filter((s) => !q || s.name.toLowerCase().includes(q) || s.audience.toLowerCase().includes(q)).sort(sort);
  const body = $("#segment-table tbody");
  body.replaceChildren();
  for (const seg of rows) {
    const ref = segRef(seg);
    body.append(el("tr", { "data-name": seg.name },
      el("td", { class: "name-cell" }, el("a", { href: `#/segments/${ref}`, class: "seg-name", text: seg.name, title: seg.name })),
      el("td", { text: tableLabel(seg.audience) }), el("td", { text: seg.kind }),
      el("td", {}, el("span", { class: `status ${seg.status}`, text: seg.status }),
        seg.has_draft && seg.live_version ? el("span", { class: "status draft pending", text: "draft pending" }) : null, seg.stale ? el("span", { class: "status stale", text: "stale" }) : null),
      el("td", { class: "num", text: seg.size ?? "" }), el("td", { text: fmtTime(seg.last_refresh_at) }),
      el("td", { text: seg.version ?? "" }),
      el("td", { class: "row-actions" },
        can("segments.rename") ? el("button", { type: "button", class: "link", text: "Rename", "aria-label": `Rename ${seg.name}`, onclick: () => rename(seg) }) : null,
        can("segments.create") ? el("button", { type: "button", class: "link", text: "Duplicate", "aria-label": `Duplicate ${seg.name}`, onclick: () => duplicate(seg) }) : null,
        can("segments.delete") ? el("button", { type: "button", class: "link danger", text: "Delete", "aria-label": `Delete ${seg.name}`, onclick: () => remove(seg) }) : null)));
  }
  $("#list-empty").hidden = S.segments.length > 0;
  $("#list-nomatch").hidden = !(S.segments.length > 0 && rows.length === 0);
}

async function askName(title, initial, action) {
  return dialog({
    title,
    body: [el("label", {}, "Name", el("input", { id: "name-input", value: initial, required: true, maxlength: "200", autocomplete: "off" }))],
    buttons: [{ submit: true, primary: true, id: "name-ok", text: action, value: (form) => form.querySelector("#name-input").value.trim() || undefined }],
    onOpen: (form) => { const i = form.querySelector("#name-input"); i.focus(); i.select(); },
  });
}

async function failed(title, e) { await confirmDialog(title, problemsOf(e).map((p) => p.message).join("\n"), "OK"); }

async function rename(seg) {
  const name = await askName(`Rename “${seg.name}”`, seg.name, "Rename");
  if (!name || name === seg.name) return;
  try { await api("POST", `/segments/${segRef(seg)}/rename`, { new_name: name }); } catch (e) { await failed("Not renamed", e); }
  await showList();
}

async function duplicate(seg) {
  const name = await askName(`Duplicate “${seg.name}”`, `${seg.name} (copy)`.slice(0, 200), "Duplicate");
  if (!name) return;
  try {
    const full = await api("GET", `/segments/${segRef(seg)}`);
    const created = full.definition
      ? await api("POST", "/segments", { definition: { ...full.definition, name }, name, snapshot: full.kind === "static" })
      : await api("POST", "/segments", { list: true, name, audience: full.audience });
    await refreshSegments();
    go(`#/segments/${segRef(created)}`);
  } catch (e) { await failed("Not duplicated", e); await showList(); }
}

async function remove(seg) {
  const ok = await confirmDialog(`Delete “${seg.name}”?`, "It leaves the list and stops refreshing. An administrator can restore it.", "Delete");
  if (!ok) return;
  try { await api("DELETE", `/segments/${segRef(seg)}`); } catch (e) { await failed("Not deleted", e); }
  await showList();
}
