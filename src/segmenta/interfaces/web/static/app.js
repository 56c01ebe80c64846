// segmenta web segment builder. No build step: plain DOM, talking to /api.
// The builder's state *is* the segment definition of the contract; the page renders it
// and the server validates, estimates and saves it.
"use strict";

const OP_LABELS = {
  eq: "equals", ne: "does not equal", contains: "contains", not_contains: "does not contain",
  starts_with: "begins with", not_starts_with: "does not begin with", ends_with: "ends with",
  not_ends_with: "does not end with", in: "is any of", not_in: "is none of", is_empty: "is empty",
  is_not_empty: "is not empty", gt: "greater than", gte: "at least", lt: "less than", lte: "at most",
  between: "between", not_between: "not between", on: "on", not_on: "not on", before: "before",
  after: "after", on_or_before: "on or before", on_or_after: "on or after", in_last: "in the last",
  not_in_last: "not in the last", in_next: "in the next", is_true: "is yes", is_false: "is no",
  contains_any: "contains any of", contains_all: "contains all of", not_contains_any: "contains none of",
};
const NO_VALUE = new Set(["is_empty", "is_not_empty", "is_true", "is_false"]);
const WINDOW = new Set(["in_last", "not_in_last", "in_next"]);
const RANGE = new Set(["between", "not_between"]);
const LIST = new Set(["in", "not_in", "contains_any", "contains_all", "not_contains_any"]);
const COUNT_OPS = ["gte", "gt", "eq", "ne", "lt", "lte", "between"];
const LINK_LABELS = { and_also: "AND ALSO", or: "OR", but_not: "BUT NOT" };

const S = { me: null, model: null, segments: [], def: null, saved: null, kind: "dynamic", estimateTimer: null, estimateSeq: 0 };

const $ = (sel, root = document) => root.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "text") node.textContent = v;
    else if (v === true) node.setAttribute(k, "");
    else node.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

// -- API ------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.problems = err.problems || [];
  }
}

async function api(method, path, body, { form } = {}) {
  const init = { method, credentials: "same-origin", headers: {} };
  if (form) init.body = form;
  else if (body !== undefined) { init.body = JSON.stringify(body); init.headers["Content-Type"] = "application/json"; }
  const res = await fetch(`/api${path}`, init);
  const type = res.headers.get("content-type") || "";
  const data = type.includes("json") ? await res.json() : await res.text();
  if (res.status === 401 && path !== "/auth/login") { showLogin(); throw new ApiError(401, data); }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

// -- views ----------------------------------------------------------------------------

function show(view) {
  for (const id of ["login-view", "list-view", "builder-view"]) $(`#${id}`).hidden = id !== view;
  $("#main").focus({ preventScroll: true });
}

function showLogin() {
  S.me = null;
  $("#whoami").textContent = "";
  show("login-view");
  $("#login-username").focus();
}

async function start() {
  try {
    S.me = await api("GET", "/auth/me");
  } catch (e) { if (e.status !== 401) $("#login-error").textContent = e.message; return; }
  $("#whoami").textContent = `${S.me.username} · ${S.me.role}${S.me.pii_restricted ? " · PII restricted" : ""}`;
  S.model = await api("GET", "/model");
  await showList();
}

async function showList() {
  S.segments = await api("GET", "/segments");
  const body = $("#segment-table tbody");
  body.replaceChildren();
  for (const seg of S.segments) {
    const open = el("button", { type: "button", class: "link", text: seg.name, onclick: () => openSegment(seg.name) });
    body.append(el("tr", {},
      el("td", {}, open), el("td", { text: seg.audience }), el("td", { text: seg.kind }),
      el("td", {}, el("span", { class: `status ${seg.status}`, text: seg.status })),
      el("td", { class: "num", text: seg.size ?? "" }), el("td", { text: fmtTime(seg.last_refreshed_at) }),
      el("td", { text: seg.version ?? "" })));
  }
  $("#list-empty").hidden = S.segments.length > 0;
  show("list-view");
}

function fmtTime(t) { return t ? String(t).replace("T", " ").slice(0, 16) : ""; }

// -- model helpers ------------------------------------------------------------------------

const table = (name) => S.model.tables[name];
const operatorsFor = (type) => S.model.operators[type] || [];

function fieldsOf(tableName) {
  // Attributes of the table, then along many-to-one paths (two hops), then measures and segments.
  const out = [];
  const add = (path, tname, prefix) => {
    for (const [col, spec] of Object.entries(table(tname).columns)) {
      out.push({ key: `a|${path.join(".")}|${col}`, label: prefix + col + (spec.calculated ? " (calculated)" : ""),
                 disabled: !!spec.calculated, path, attribute: col, spec });
    }
  };
  add([], tableName, "");
  for (const p of table(tableName).paths || []) {
    add([p.name], p.table, `${p.name} › `);
    for (const q of table(p.table).paths || []) add([p.name, q.name], q.table, `${p.name} › ${q.name} › `);
  }
  for (const [m, spec] of Object.entries(table(tableName).measures || {})) {
    out.push({ key: `m|${m}`, label: `measure: ${m}`, measure: m, spec: { type: spec.result_type } });
  }
  out.push({ key: "s|", label: "member of segment…", segment: true });
  return out;
}

function fieldKey(node) {
  if ("measure" in node) return `m|${node.measure}`;
  if ("in_segment" in node) return "s|";
  return `a|${(node.path || []).join(".")}|${node.attribute}`;
}

function defaultValue(type, op, spec) {
  if (NO_VALUE.has(op)) return undefined;
  if (WINDOW.has(op)) return { days: 30 };
  if (RANGE.has(op)) return type === "date" || type === "datetime" ? ["", ""] : [0, 0];
  if (LIST.has(op)) return [];
  if (type === "choice") return (spec.choices || [])[0];
  if (type === "integer" || type === "decimal") return 0;
  if (type === "date" || type === "datetime") return new Date().toISOString().slice(0, 10);
  return "";
}

function newCondition(tableName) {
  // Start from a readable attribute: not the key, not calculated, text or choice where there is one.
  const key = table(tableName).key;
  const usable = fieldsOf(tableName).filter((f) => f.attribute && !f.disabled && !(f.path.length === 0 && f.attribute === key));
  const field = usable.find((f) => f.path.length === 0 && ["choice", "text"].includes(f.spec.type)) || usable[0]
    || fieldsOf(tableName).find((f) => f.attribute && !f.disabled);
  const op = operatorsFor(field.spec.type)[0];
  const node = { attribute: field.attribute, op, value: defaultValue(field.spec.type, op, field.spec) };
  if (field.path.length) node.path = field.path;
  return node;
}

function newDefinition(audience) {
  return { name: "", audience, groups: [{ where: { all: [newCondition(audience)] } }] };
}

// -- builder rendering -------------------------------------------------------------------

function openBuilder(def, saved) {
  S.def = def;
  S.saved = saved;
  $("#builder-title").textContent = saved ? `Segment: ${saved.name}` : "New segment";
  $("#seg-name").value = def.name || "";
  $("#seg-name").disabled = !!saved;
  const aud = $("#seg-audience");
  aud.replaceChildren(...Object.keys(S.model.tables).map((t) => el("option", { value: t, text: t })));
  aud.value = def.audience;
  aud.disabled = !!saved;
  for (const r of document.querySelectorAll("input[name=seg-kind]")) {
    r.checked = r.value === (saved ? saved.kind : S.kind);
    r.disabled = !!saved;
  }
  $("#seg-status").replaceChildren(saved ? statusLine(saved) : "Draft, not saved yet.");
  const isList = def.groups === null;
  $("#details-card").hidden = !saved;
  $("#upload-card").hidden = !isList;
  $("#publish").hidden = isList;
  $("#save-draft").hidden = isList;
  $("#add-group").hidden = isList;
  $("#save-message").textContent = "";
  renderGroups();
  show("builder-view");
  if (saved) loadDetails(saved.name);
  scheduleEstimate(0);
}

function statusLine(seg) {
  return el("span", {}, el("span", { class: `status ${seg.status}`, text: seg.status }),
    ` ${seg.status_reason || ""} · ${seg.kind} · version ${seg.version ?? 1} · ${seg.size ?? 0} members`);
}

function renderGroups() {
  const focusId = document.activeElement && document.activeElement.id;
  const box = $("#groups");
  box.replaceChildren();
  if (S.def.groups === null) return;
  S.def.groups.forEach((group, i) => box.append(renderGroup(group, i)));
  if (focusId && document.getElementById(focusId)) document.getElementById(focusId).focus();
}

function renderGroup(group, i) {
  const ptr = `/groups/${i}`;
  const head = el("div", { class: "group-head" });
  if (i > 0) {
    const sel = el("select", { id: `${ptr}/link`, class: "link-select", "aria-label": `How group ${i + 1} links to the groups before it`,
      onchange: (e) => { group.link = e.target.value; changed(); } },
    ...Object.entries(LINK_LABELS).map(([v, label]) => el("option", { value: v, text: label })));
    sel.value = group.link || "and_also";
    head.append(sel);
  }
  head.append(el("strong", { text: `Group ${i + 1}` }));
  if (S.def.groups.length > 1) {
    head.append(el("button", { type: "button", class: "link", id: `${ptr}/remove`, text: "Remove group",
      onclick: () => { S.def.groups.splice(i, 1); if (S.def.groups[0]) delete S.def.groups[0].link; structural(); } }));
  }
  const card = el("div", { class: "card group", "data-pointer": ptr, role: "group", "aria-label": `Group ${i + 1}` }, head);
  card.append(renderNode(group.where, S.def.audience, `${ptr}/where`, (n) => { group.where = n; }, true));
  return card;
}

function renderNode(node, tableName, ptr, replace, isRoot = false) {
  if ("all" in node || "any" in node) return renderTree(node, tableName, ptr, replace, isRoot);
  if ("related" in node) return renderRelated(node, tableName, ptr, replace);
  return renderCondition(node, tableName, ptr, replace);
}

function renderTree(node, tableName, ptr, replace, isRoot) {
  const kind = "all" in node ? "all" : "any";
  const items = node[kind];
  const kindSel = el("select", { id: `${ptr}/kind`, "aria-label": "Match all or any of these conditions",
    onchange: (e) => { const v = e.target.value; const list = node[kind]; delete node[kind]; node[v] = list; structural(); } },
  el("option", { value: "all", text: "All of these (and)" }), el("option", { value: "any", text: "Any of these (or)" }));
  kindSel.value = kind;
  const head = el("div", { class: "tree-head" }, kindSel);
  if (!isRoot) head.append(el("button", { type: "button", class: "link", id: `${ptr}/remove`, text: "Remove sub-group", onclick: () => replace(null) }));
  const box = el("div", { class: "tree", "data-pointer": ptr }, head);
  items.forEach((child, j) => {
    box.append(renderNode(child, tableName, `${ptr}/${kind}/${j}`, (n) => {
      if (n === null) items.splice(j, 1); else items[j] = n;
      structural();
    }));
  });
  const related = table(tableName).related || [];
  box.append(el("div", { class: "actions" },
    el("button", { type: "button", class: "secondary", id: `${ptr}/add-condition`, text: "+ Condition",
      onclick: () => { items.push(newCondition(tableName)); structural(); } }),
    related.length ? el("button", { type: "button", class: "secondary", id: `${ptr}/add-related`, text: "+ Related records / behaviour",
      onclick: () => { items.push({ related: related[0].name, where: { all: [] }, count: { op: "gte", value: 1 } }); structural(); } }) : null,
    el("button", { type: "button", class: "secondary", id: `${ptr}/add-tree`, text: "+ Sub-group",
      onclick: () => { items.push({ any: [newCondition(tableName)] }); structural(); } })));
  return box;
}

function renderCondition(node, tableName, ptr, replace) {
  const row = el("div", { class: "cond", "data-pointer": ptr });
  const fields = fieldsOf(tableName);
  const current = fields.find((f) => f.key === fieldKey(node));
  const fieldSel = el("select", { id: `${ptr}/field`, "aria-label": "Attribute", onchange: (e) => {
    const f = fields.find((x) => x.key === e.target.value);
    let n;
    if (f.segment) n = { in_segment: (S.segments.find((s) => s.status === "live" && s.audience === tableName) || {}).name || "" };
    else {
      const op = operatorsFor(f.spec.type)[0];
      n = f.measure ? { measure: f.measure, op } : { attribute: f.attribute, op };
      if (f.path && f.path.length) n.path = f.path;
      const v = defaultValue(f.spec.type, op, f.spec);
      if (v !== undefined) n.value = v;
    }
    replace(n);
  } }, ...fields.map((f) => el("option", { value: f.key, text: f.label, disabled: f.disabled })));
  fieldSel.value = current ? current.key : "";
  row.append(el("label", {}, "Attribute", fieldSel));
  if ("in_segment" in node) {
    const segSel = el("select", { id: `${ptr}/segment`, onchange: (e) => { node.in_segment = e.target.value; changed(); } },
      ...S.segments.filter((s) => s.audience === tableName).map((s) => el("option", { value: s.name, text: `${s.name} (${s.status})` })));
    segSel.value = node.in_segment;
    row.append(el("label", {}, "Segment", segSel));
  } else if (current) {
    const type = current.spec.type;
    const opSel = el("select", { id: `${ptr}/op`, "aria-label": "Operator", onchange: (e) => {
      node.op = e.target.value;
      const v = defaultValue(type, node.op, current.spec);
      if (v === undefined) delete node.value; else node.value = v;
      structural();
    } }, ...operatorsFor(type).map((op) => el("option", { value: op, text: OP_LABELS[op] || op })));
    opSel.value = node.op;
    row.append(el("label", {}, "Operator", opSel));
    row.append(...valueEditor(node, type, current.spec, ptr));
  }
  row.append(el("button", { type: "button", class: "icon", id: `${ptr}/remove`, "aria-label": "Remove condition", text: "✕", onclick: () => replace(null) }));
  return row;
}

function valueEditor(node, type, spec, ptr) {
  const op = node.op;
  if (NO_VALUE.has(op)) return [];
  if (WINDOW.has(op)) {
    const [unit, n] = Object.entries(node.value || { days: 30 })[0];
    const num = el("input", { id: `${ptr}/window-n`, type: "number", min: "0", step: "1", value: n, "aria-label": "How many",
      oninput: (e) => { node.value = { [unitSel.value]: parseInt(e.target.value || "0", 10) }; changed(); } });
    const unitSel = el("select", { id: `${ptr}/window-unit`, "aria-label": "Unit",
      onchange: (e) => { node.value = { [e.target.value]: parseInt(num.value || "0", 10) }; changed(); } },
    ...["hours", "days", "weeks", "months", "years"].map((u) => el("option", { value: u, text: u })));
    unitSel.value = unit;
    return [el("label", {}, "Window", el("span", { class: "fields" }, num, unitSel))];
  }
  if (LIST.has(op) && (type === "choice" || type === "choices")) {
    const chosen = new Set(node.value || []);
    const box = el("div", { class: "choices-box", role: "group", "aria-label": "Values" });
    for (const c of spec.choices || []) {
      box.append(el("label", {}, el("input", { type: "checkbox", id: `${ptr}/choice-${c}`, checked: chosen.has(c), onchange: (e) => {
        if (e.target.checked) chosen.add(c); else chosen.delete(c);
        node.value = (spec.choices || []).filter((x) => chosen.has(x));
        changed();
      } }), c));
    }
    return [box];
  }
  if (LIST.has(op)) {
    const input = el("input", { id: `${ptr}/value`, value: (node.value || []).join(", "), placeholder: "a, b, c", "aria-label": "Values, separated by commas",
      oninput: (e) => { node.value = splitList(e.target.value, type); changed(); } });
    return [el("label", {}, "Values", input)];
  }
  if (RANGE.has(op)) {
    const [lo, hi] = node.value || ["", ""];
    const mk = (idx, v, label) => scalarInput(`${ptr}/value-${idx}`, type, spec, v, label, (x) => { node.value[idx] = x; changed(); });
    return [el("label", {}, "From", mk(0, lo, "From")), el("label", {}, "To", mk(1, hi, "To"))];
  }
  return [el("label", {}, "Value", scalarInput(`${ptr}/value`, type, spec, node.value, "Value", (x) => { node.value = x; changed(); }))];
}

function scalarInput(id, type, spec, value, label, set) {
  if (type === "choice" || type === "choices") {
    const sel = el("select", { id, "aria-label": label, onchange: (e) => set(e.target.value) },
      ...(spec.choices || []).map((c) => el("option", { value: c, text: c })));
    sel.value = value;
    return sel;
  }
  if (type === "integer" || type === "decimal") {
    return el("input", { id, type: "number", step: type === "integer" ? "1" : "any", value: value ?? 0, "aria-label": label,
      oninput: (e) => set(e.target.value === "" ? null : Number(e.target.value)) });
  }
  if (type === "date" || type === "datetime") {
    return el("input", { id, type: "date", value: value || "", "aria-label": label, oninput: (e) => set(e.target.value) });
  }
  return el("input", { id, value: value ?? "", "aria-label": label, oninput: (e) => set(e.target.value) });
}

function splitList(text, type) {
  const parts = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
  return type === "integer" || type === "decimal" ? parts.map(Number) : parts;
}

function renderRelated(node, tableName, ptr, replace) {
  const relations = table(tableName).related || [];
  const target = (relations.find((r) => r.name === node.related) || relations[0] || {}).table;
  const relSel = el("select", { id: `${ptr}/related`, "aria-label": "Related records", onchange: (e) => {
    replace({ related: e.target.value, where: { all: [] }, count: node.count || { op: "gte", value: 1 } });
  } }, ...relations.map((r) => el("option", { value: r.name, text: `${r.name} (${r.table})` })));
  relSel.value = node.related;
  const count = node.count || (node.count = { op: "gte", value: 1 });
  const countOp = el("select", { id: `${ptr}/count-op`, "aria-label": "Count comparison", onchange: (e) => {
    count.op = e.target.value;
    count.value = count.op === "between" ? [1, 2] : 1;
    structural();
  } }, ...COUNT_OPS.map((op) => el("option", { value: op, text: OP_LABELS[op] })));
  countOp.value = count.op;
  const countInputs = count.op === "between"
    ? [0, 1].map((idx) => el("input", { id: `${ptr}/count-${idx}`, type: "number", min: "0", step: "1", value: count.value[idx], "aria-label": idx ? "At most" : "At least",
      oninput: (e) => { count.value[idx] = parseInt(e.target.value || "0", 10); changed(); } }))
    : [el("input", { id: `${ptr}/count`, type: "number", min: "0", step: "1", value: count.value, "aria-label": "Count",
      oninput: (e) => { count.value = parseInt(e.target.value || "0", 10); changed(); } })];
  const row = el("div", { class: "cond related", "data-pointer": ptr },
    el("label", {}, "Has related", relSel),
    el("label", {}, "Count", el("span", { class: "fields" }, countOp, ...countInputs)));
  const timeCol = target && Object.entries(table(target).columns).find(([, spec]) => spec.type === "datetime" || spec.type === "date");
  if (!node.where) node.where = { all: [] };
  if (timeCol) {
    row.append(el("button", { type: "button", class: "secondary", id: `${ptr}/add-window`, text: "+ Time window", onclick: () => {
      const items = node.where.all || node.where.any;
      items.push({ attribute: timeCol[0], op: "in_last", value: { days: 90 } });
      structural();
    } }));
  }
  row.append(el("button", { type: "button", class: "icon", id: `${ptr}/remove`, "aria-label": "Remove related condition", text: "✕", onclick: () => replace(null) }));
  const whereBox = el("div", { class: "related-box" }, el("span", { class: "muted", text: `where each ${target} record matches:` }));
  whereBox.append(renderNode(node.where, target, `${ptr}/where`, (n) => { node.where = n || { all: [] }; structural(); }, true));
  row.append(whereBox);
  return row;
}

// -- state changes, estimate and problems --------------------------------------------------------

function structural() { renderGroups(); changed(); }

function changed() { scheduleEstimate(250); }

function definitionForServer() {
  const def = JSON.parse(JSON.stringify(S.def));
  def.name = $("#seg-name").value.trim() || (S.saved ? S.saved.name : undefined);
  if (!def.name) delete def.name;
  def.groups.forEach((g, i) => { if (i === 0) delete g.link; else if (!g.link) g.link = "and_also"; });
  return def;
}

function scheduleEstimate(delay) {
  clearTimeout(S.estimateTimer);
  S.estimateTimer = setTimeout(runEstimate, delay);
}

async function runEstimate() {
  if (S.def.groups === null) { $("#estimate-count").textContent = S.saved ? String(S.saved.size ?? 0) : "–"; return; }
  const seq = ++S.estimateSeq;
  const definition = definitionForServer();
  $("#estimate-count").textContent = "…";
  try {
    const est = await api("POST", "/definitions/estimate", { definition });
    if (seq !== S.estimateSeq) return;
    showProblems([]);
    $("#estimate-count").textContent = est.count.toLocaleString();
    $("#estimate-time").textContent = `${Math.round(est.elapsed_ms)} ms`;
    const pv = await api("POST", "/definitions/preview", { definition, limit: 8 });
    if (seq !== S.estimateSeq) return;
    renderPreview(pv);
  } catch (e) {
    if (seq !== S.estimateSeq) return;
    $("#estimate-count").textContent = "–";
    $("#estimate-time").textContent = "";
    showProblems(e.problems && e.problems.length ? e.problems : [{ where: "", message: e.message }]);
  }
}

function showProblems(problems) {
  for (const node of document.querySelectorAll("#builder-view .problem")) node.remove();
  for (const node of document.querySelectorAll("#builder-view .has-problem")) node.classList.remove("has-problem");
  const loose = [];
  for (const p of problems) {
    let best = null;
    for (const node of document.querySelectorAll("#groups [data-pointer]")) {
      const ptr = node.dataset.pointer;
      if ((p.where === ptr || (p.where || "").startsWith(`${ptr}/`)) && (!best || ptr.length > best.dataset.pointer.length)) best = node;
    }
    if (best) {
      best.classList.add("has-problem");
      best.append(el("p", { class: "problem", role: "alert", text: p.message }));
    } else loose.push(p.where ? `${p.where}: ${p.message}` : p.message);
  }
  $("#builder-problems").textContent = loose.join("\n");
}

function renderPreview(pv) {
  const box = $("#preview");
  if (!pv.rows.length) { box.replaceChildren(el("p", { class: "muted", text: "No members." })); return; }
  const head = el("tr", {}, ...pv.columns.map((c) => el("th", { scope: "col", text: c })));
  const rows = pv.rows.map((r) => el("tr", {}, ...pv.columns.map((c) => el("td", { text: r[c] ?? "", title: String(r[c] ?? "") }))));
  const note = pv.masked && pv.masked.length ? el("p", { class: "muted", text: `Masked: ${pv.masked.join(", ")}` }) : null;
  box.replaceChildren(...[el("table", {}, el("thead", {}, head), el("tbody", {}, ...rows)), note].filter(Boolean));
}

// -- saving, publishing, details -----------------------------------------------------------------

async function save() {
  const definition = definitionForServer();
  if (!definition.name) { showProblems([{ where: "", message: "Give the segment a name before saving." }]); $("#seg-name").focus(); return null; }
  try {
    const seg = S.saved
      ? await api("PUT", `/segments/${encodeURIComponent(S.saved.name)}`, { definition })
      : await api("POST", "/segments", { definition, name: definition.name, snapshot: S.kind === "static" });
    S.saved = seg;
    openBuilder(S.def, seg);
    $("#save-message").textContent = `Saved version ${seg.version}.`;
    return seg;
  } catch (e) {
    showProblems(e.problems && e.problems.length ? e.problems : [{ where: "", message: e.message }]);
    return null;
  }
}

async function segmentAction(action, body) {
  if (!S.saved) return;
  try {
    const seg = await api("POST", `/segments/${encodeURIComponent(S.saved.name)}/${action}`, body);
    S.saved = { ...S.saved, ...seg };
    $("#seg-status").replaceChildren(statusLine(S.saved));
    $("#save-message").textContent = `${action}: ${S.saved.status}`;
    loadDetails(S.saved.name);
  } catch (e) {
    $("#save-message").textContent = "";
    showProblems(e.problems && e.problems.length ? e.problems : [{ where: "", message: e.message }]);
  }
}

async function openSegment(name) {
  const seg = await api("GET", `/segments/${encodeURIComponent(name)}`);
  // A static list has no definition: its members come from uploads and manual additions.
  const def = seg.definition || { name: seg.name, audience: seg.audience, groups: null };
  openBuilder(def, seg);
}

async function loadDetails(name) {
  try {
    const versions = await api("GET", `/segments/${encodeURIComponent(name)}/versions`);
    $("#versions").replaceChildren(...versions.map((v) => el("li", { text: `v${v.version} · ${fmtTime(v.created_at)}${v.created_by ? ` · ${v.created_by}` : ""}` })));
  } catch { $("#versions").replaceChildren(); }
  try {
    const hist = await api("GET", `/segments/${encodeURIComponent(name)}/history`);
    const runs = Array.isArray(hist) ? hist : hist.refreshes || [];
    const max = Math.max(1, ...runs.map((r) => r.size || 0));
    $("#history").replaceChildren(
      el("div", { class: "bars", role: "img", "aria-label": `Size over ${runs.length} refreshes` },
        ...runs.map((r) => el("span", { style: `height:${Math.round(100 * (r.size || 0) / max)}%`, title: `${fmtTime(r.at || r.refreshed_at)}: ${r.size} (+${r.entered ?? 0} / -${r.exited ?? 0})` }))),
      el("p", { class: "muted", text: runs.length ? `${runs.length} refreshes; latest size ${runs[runs.length - 1].size}` : "Not refreshed yet." }));
  } catch { $("#history").replaceChildren(); }
}

async function upload(ev) {
  ev.preventDefault();
  const file = $("#upload-file").files[0];
  if (!file || !S.saved) return;
  const form = new FormData();
  form.append("file", file);
  const out = $("#upload-result");
  try {
    const r = await api("POST", `/segments/${encodeURIComponent(S.saved.name)}/import-csv`, undefined, { form });
    out.replaceChildren(...["read", "found", "not_found", "duplicates", "members"].flatMap((k) => [el("dt", { text: k.replace("_", " ") }), el("dd", { id: `upload-${k}`, text: r[k] })]));
    if (r.not_found_url && r.not_found) out.append(el("dt", { text: "download" }), el("dd", {}, el("a", { href: r.not_found_url, text: "not-found rows (CSV)" })));
    S.saved = await api("GET", `/segments/${encodeURIComponent(S.saved.name)}`);
    $("#seg-status").replaceChildren(statusLine(S.saved));
  } catch (e) {
    out.replaceChildren(el("dt", { text: "error" }), el("dd", { class: "error", role: "alert", text: e.message }));
  }
}

async function newList() {
  const name = window.prompt("Name of the new static list");
  if (!name) return;
  const audience = window.prompt(`Audience table (${Object.keys(S.model.tables).join(", ")})`, "contact");
  if (!audience) return;
  try {
    await api("POST", "/segments", { list: true, name, audience });
    await openSegment(name);
  } catch (e) { window.alert(e.message); }
}

// -- wiring -------------------------------------------------------------------------------------

function wire() {
  $("#login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("#login-error").textContent = "";
    try {
      await api("POST", "/auth/login", { username: $("#login-username").value, password: $("#login-password").value });
      await start();
    } catch (e) { $("#login-error").textContent = e.status === 401 ? "Wrong user name or password." : e.message; }
  });
  $("#nav-segments").addEventListener("click", () => S.me && showList());
  const fresh = () => S.me && openBuilder(newDefinition(Object.keys(S.model.tables).includes("contact") ? "contact" : Object.keys(S.model.tables)[0]), null);
  $("#nav-new").addEventListener("click", fresh);
  $("#new-segment").addEventListener("click", fresh);
  $("#new-list").addEventListener("click", newList);
  $("#seg-audience").addEventListener("change", (e) => { S.def = newDefinition(e.target.value); S.def.name = $("#seg-name").value; structural(); });
  $("#seg-name").addEventListener("input", changed);
  for (const r of document.querySelectorAll("input[name=seg-kind]")) r.addEventListener("change", (e) => { S.kind = e.target.value; });
  $("#add-group").addEventListener("click", () => { S.def.groups.push({ link: "and_also", where: { all: [newCondition(S.def.audience)] } }); structural(); });
  $("#save-draft").addEventListener("click", save);
  $("#publish").addEventListener("click", async () => { if (await save()) await segmentAction("publish"); });
  $("#refresh-seg").addEventListener("click", () => segmentAction("refresh"));
  $("#stop-seg").addEventListener("click", () => segmentAction("stop"));
  $("#upload-form").addEventListener("submit", upload);
}

wire();
start();
