// The builder: groups, trees, conditions, related-record blocks and aggregates, rendered from the
// definition. Rendering never changes the definition: only a person's action does, so opening a
// saved segment and saving it unchanged gives back exactly what was saved.

import { api } from "./api.js";
import { $, $$, clone, el } from "./dom.js";
import {
  V, aggregatableColumns, aggregateResult, colLabel, defaultValue, fieldKey, fieldsOf, opLabel, operatorsFor,
  relatedOf, shapeOf, table, tableLabel, walk,
} from "./model.js";
import { S } from "./state.js";
import { humanize, placeOf } from "./words.js";
import { attachSuggestions } from "./suggest.js";

const hooks = { changed: () => {}, removeFirstGroup: async () => false };
export const setHooks = (h) => Object.assign(hooks, h);

const isTree = (n) => n && typeof n === "object" && ("all" in n || "any" in n);

// -- new nodes ------------------------------------------------------------------------------

/** A new condition: a readable attribute, waiting for its value (left out of the estimate until then). */
export function newCondition(tname) {
  const key = table(tname).key;
  const usable = fieldsOf(tname).filter((f) => f.attribute && !f.disabled && !(f.path.length === 0 && f.attribute === key));
  const field = usable.find((f) => f.path.length === 0 && f.spec.type === "choice")
    || usable.find((f) => f.path.length === 0 && f.spec.type === "text" && !f.spec.pii)
    || usable[0] || fieldsOf(tname).find((f) => f.attribute && !f.disabled);
  const op = operatorsFor(field.spec.type)[0];
  const node = { attribute: field.attribute, op };
  const v = defaultValue(field.spec.type, op, field.spec);
  if (v !== undefined) node.value = v;
  if (field.path.length) node.path = field.path;
  if (field.spec.type !== "choice") S.fresh.add(node); // a choice starts from a real value
  return node;
}

export function newRelated(tname) {
  const rel = relatedOf(tname)[0]; // the busiest relationship: what people mean most often
  return { related: rel.name, count: clone(V().default_count) };
}

export function newDefinition(audience) {
  return { name: "", audience, groups: [{ where: { all: [newCondition(audience)] } }] };
}

/** Conditions still waiting for a value are left out; a tree left empty by that is left out too. */
function pruneFresh(node) {
  if (isTree(node)) {
    const kind = "all" in node ? "all" : "any";
    const kept = node[kind].map(pruneFresh).filter((n) => n !== null);
    if (!kept.length && node[kind].length) return null;
    return { ...node, [kind]: kept };
  }
  if (S.fresh.has(node)) return null;
  if (node && node.where) {
    const w = pruneFresh(node.where);
    const out = { ...node };
    if (w === null) delete out.where; else out.where = w;
    return out;
  }
  return node;
}

export function hasFresh(node = S.def) {
  let found = false;
  const visit = (n) => {
    if (!n || typeof n !== "object") return;
    if (S.fresh.has(n)) found = true;
    for (const v of Object.values(n)) if (typeof v === "object") visit(v);
  };
  visit(node);
  return found;
}

// -- the definition sent to the server -------------------------------------------------------

export function definitionForServer({ forEstimate = false } = {}) {
  const def = clone(S.def);
  const name = $("#seg-name").value.trim() || (S.saved ? S.saved.name : "");
  if (name) def.name = name; else delete def.name;
  if (def.groups === null) return def;
  if (forEstimate) {
    def.groups = S.def.groups.map((g) => {
      const w = pruneFresh(g.where);
      return { ...clone(g), where: w === null ? { all: [] } : clone(w) };
    });
  }
  def.groups.forEach((g, i) => { if (i === 0) delete g.link; else if (!g.link) g.link = "and_also"; });
  return def;
}

export const snapshot = () => JSON.stringify(S.def && S.def.groups !== null ? definitionForServer() : null);
export const isDirty = () => S.def !== null && S.baseline !== null && !S.version && !S.readonly && snapshot() !== S.baseline;
export const markClean = () => { S.baseline = snapshot(); };

// -- rendering -------------------------------------------------------------------------------

function structural() { renderGroups(); hooks.changed(); }
const changed = () => hooks.changed();

export function renderGroups() {
  const focusId = document.activeElement && document.activeElement.id;
  const box = $("#groups");
  box.replaceChildren();
  if (!S.def || S.def.groups === null) return;
  S.def.groups.forEach((group, i) => box.append(renderGroup(group, i)));
  if (focusId && document.getElementById(focusId)) document.getElementById(focusId).focus();
  const ro = !!S.version || !!S.readonly;
  for (const c of $$("#groups select, #groups input, #groups button")) c.disabled = c.disabled || ro;
}

export function isEmptyGroup(g) {
  return isTree(g.where) && ("all" in g.where ? g.where.all.length === 0 : false);
}

function renderGroup(group, i) {
  const ptr = `/groups/${i}`;
  const head = el("div", { class: "group-head" });
  if (i > 0) {
    const sel = el("select", { id: `${ptr}/link`, class: "link-select", "aria-label": `How group ${i + 1} combines with the groups before it`,
      onchange: (e) => { group.link = e.target.value; changed(); } },
    ...V().links.map((v) => el("option", { value: v, text: V().link_labels[v] })));
    sel.value = group.link || "and_also";
    head.append(sel);
  }
  head.append(el("strong", { text: `Group ${i + 1}` }));
  if (S.def.groups.length > 1) {
    head.append(el("button", { type: "button", class: "link", id: `${ptr}/remove`, text: "Remove group", onclick: async () => {
      if (i === 0) {
        const ok = await hooks.removeFirstGroup();
        if (!ok) return;
      } else S.def.groups.splice(i, 1);
      if (S.def.groups[0]) delete S.def.groups[0].link;
      structural();
    } }));
  }
  const card = el("div", { class: "card group", "data-pointer": ptr, role: "group", "aria-label": `Group ${i + 1}` }, head);
  if (isEmptyGroup(group)) {
    card.append(el("p", { class: "warning", id: `${ptr}/empty-warning`, role: "note",
      text: "This group has no conditions, so it matches every record of the audience. Add a condition, or remove the group." }));
  }
  card.append(renderNode(group.where, S.def.audience, `${ptr}/where`, (n) => { group.where = n || { all: [] }; structural(); }, true));
  if (!isTree(group.where)) {
    card.append(el("div", { class: "actions" },
      el("button", { type: "button", class: "secondary", id: `${ptr}/where/add-condition`, text: "+ Condition",
        onclick: () => { group.where = { all: [group.where, newCondition(S.def.audience)] }; structural(); } })));
  }
  return card;
}

function renderNode(node, tname, ptr, replace, isRoot = false) {
  if (isTree(node)) return renderTree(node, tname, ptr, replace, isRoot);
  if ("related" in node) return renderRelated(node, tname, ptr, replace);
  return renderCondition(node, tname, ptr, replace);
}

function renderTree(node, tname, ptr, replace, isRoot) {
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
    box.append(renderNode(child, tname, `${ptr}/${kind}/${j}`, (n) => {
      if (n === null) items.splice(j, 1); else items[j] = n;
      structural();
    }));
  });
  const related = relatedOf(tname);
  box.append(el("div", { class: "actions" },
    el("button", { type: "button", class: "secondary", id: `${ptr}/add-condition`, text: "+ Condition",
      onclick: () => { items.push(newCondition(tname)); structural(); } }),
    related.length ? el("button", { type: "button", class: "secondary", id: `${ptr}/add-related`, text: "+ Related records / behaviour",
      onclick: () => { items.push(newRelated(tname)); structural(); } }) : null,
    el("button", { type: "button", class: "secondary", id: `${ptr}/add-tree`, text: "+ Sub-group",
      onclick: () => { items.push({ any: [newCondition(tname)] }); structural(); } })));
  return box;
}

/** A searchable attribute picker grouped by table: a filter box above a grouped select. */
function fieldPicker(fields, current, ptr, onPick) {
  const sel = el("select", { id: `${ptr}/field`, "aria-label": "Attribute", onchange: (e) => onPick(fields.find((x) => x.key === e.target.value)) });
  let matches = fields;
  const fill = (q) => {
    const needle = q.trim().toLowerCase();
    const hit = (f) => !needle || f.label.toLowerCase().includes(needle) || (f.attribute || f.measure || "").toLowerCase().includes(needle)
      || f.group.toLowerCase().includes(needle);
    matches = fields.filter((f) => hit(f) && !f.disabled);
    const groups = new Map();
    for (const f of fields) {
      // The current choice stays listed (the select must show it) even when the search leaves it out.
      if (!hit(f) && !(current && f.key === current.key)) continue;
      if (!groups.has(f.group)) groups.set(f.group, el("optgroup", { label: f.group }));
      groups.get(f.group).append(el("option", { value: f.key, text: f.label, disabled: f.disabled, title: f.attribute ? `${f.table}.${f.attribute}` : f.label }));
    }
    sel.replaceChildren(...groups.values());
    if (!current) sel.append(el("option", { value: "", text: "(as saved)" }));
    sel.value = current ? current.key : "";
  };
  fill("");
  const search = el("input", { type: "search", id: `${ptr}/field-search`, class: "field-search", placeholder: "Search attributes", "aria-label": "Search attributes",
    oninput: (e) => {
      fill(e.target.value);
      // One attribute left: take it.
      if (e.target.value.trim() && matches.length === 1 && (!current || matches[0].key !== current.key)) onPick(matches[0]);
    } });
  return el("label", { class: "field-picker" }, "Attribute", search, sel);
}

function renderCondition(node, tname, ptr, replace) {
  const row = el("div", { class: "cond", "data-pointer": ptr });
  const scope = walk(tname, node.path && "measure" in node ? node.path : []) || tname;
  const fields = fieldsOf(tname);
  const current = fields.find((f) => f.key === fieldKey(node));
  row.append(fieldPicker(fields, current, ptr, (f) => {
    let n;
    if (f.segment) n = { in_segment: (S.segments.find((s) => s.status === "live" && s.audience === tname) || {}).name || "" };
    else {
      const op = operatorsFor(f.spec.type)[0];
      n = f.measure ? { measure: f.measure, op } : { attribute: f.attribute, op };
      if (f.path && f.path.length) n.path = f.path;
      const v = defaultValue(f.spec.type, op, f.spec);
      if (v !== undefined) n.value = v;
      if (v !== undefined && f.spec.type !== "choice") S.fresh.add(n);
    }
    replace(n);
  }));
  if ("in_segment" in node) {
    const options = S.segments.filter((s) => s.audience === tname);
    const segSel = el("select", { id: `${ptr}/segment`, class: "segment-picker", "aria-label": "Segment", onchange: (e) => { node.in_segment = e.target.value; changed(); } },
      ...options.map((s) => el("option", { value: s.name, text: `${s.name} (${s.status})`, title: s.name })));
    if (!options.some((s) => s.name === node.in_segment)) segSel.append(el("option", { value: node.in_segment, text: node.in_segment || "(choose a segment)" }));
    segSel.value = node.in_segment;
    row.append(el("label", {}, "Segment", segSel));
  } else if (current) {
    const type = current.spec.type;
    row.append(opSelect(node, type, operatorsFor(type), ptr, current.spec));
    row.append(...valueEditor(node, type, current.spec, ptr, current.attribute ? { table: current.table, column: current.attribute } : null));
  } else if ("op" in node) {
    row.append(el("span", { class: "muted", text: `${node.op} ${JSON.stringify(node.value ?? "")} (on ${tableLabel(scope)})` }));
  }
  row.append(el("button", { type: "button", class: "icon", id: `${ptr}/remove`, "aria-label": "Remove condition", text: "✕", onclick: () => replace(null) }));
  if (S.fresh.has(node)) row.append(el("p", { class: "fresh-note muted", text: "Give it a value: until then this condition is left out of the estimate." }));
  return row;
}

function opSelect(node, type, ops, ptr, spec) {
  const opSel = el("select", { id: `${ptr}/op`, "aria-label": "Operator", onchange: (e) => {
    const before = shapeOf(node.op);
    node.op = e.target.value;
    if (shapeOf(node.op) !== before || node.value === undefined) {
      const v = defaultValue(type, node.op, spec);
      if (v === undefined) { delete node.value; S.fresh.delete(node); } else node.value = v;
    }
    structural();
  } }, ...ops.map((op) => el("option", { value: op, text: opLabel(op) })));
  opSel.value = node.op;
  return el("label", {}, "Operator", opSel);
}

function valueEditor(node, type, spec, ptr, column) {
  const op = node.op;
  const shape = shapeOf(op);
  const set = () => {
    S.fresh.delete(node);
    const note = document.querySelector(`[data-pointer="${ptr}"] > .fresh-note`);
    if (note) note.remove();
    changed();
  };
  if (shape === "none") return [];
  if (shape === "window") {
    const [unit, n] = Object.entries(node.value || { days: 30 })[0];
    const num = el("input", { id: `${ptr}/window-n`, type: "number", min: "0", step: "1", value: n, "aria-label": "How many",
      oninput: (e) => { node.value = { [unitSel.value]: parseInt(e.target.value || "0", 10) }; set(); } });
    const unitSel = el("select", { id: `${ptr}/window-unit`, "aria-label": "Unit",
      onchange: (e) => { node.value = { [e.target.value]: parseInt(num.value || "0", 10) }; set(); } },
    ...V().window_units.map((u) => el("option", { value: u, text: V().window_unit_labels[u] })));
    unitSel.value = unit;
    return [el("label", {}, "Window", el("span", { class: "fields" }, num, unitSel))];
  }
  if (shape === "list" && (type === "choice" || type === "choices")) {
    const chosen = new Set(node.value || []);
    const box = el("div", { class: "choices-box", role: "group", "aria-label": "Values" });
    for (const c of spec.choices || []) {
      box.append(el("label", {}, el("input", { type: "checkbox", id: `${ptr}/choice-${c}`, checked: chosen.has(c), onchange: (e) => {
        if (e.target.checked) chosen.add(c); else chosen.delete(c);
        node.value = (spec.choices || []).filter((x) => chosen.has(x));
        set();
      } }), c));
    }
    return [box];
  }
  if (shape === "list") {
    const input = el("input", { id: `${ptr}/value`, value: (node.value || []).join(", "), placeholder: "a, b, c", "aria-label": "Values, separated by commas",
      oninput: (e) => { node.value = splitList(e.target.value, type); set(); } });
    return [el("label", {}, "Values", input)];
  }
  if (shape === "range") {
    const [lo, hi] = node.value || ["", ""];
    const mk = (idx, v, label) => scalarInput(`${ptr}/value-${idx}`, type, spec, v, label, (x) => {
      if (!Array.isArray(node.value)) node.value = [lo, hi];
      node.value[idx] = x; set();
    });
    return [el("label", {}, "From", mk(0, lo, "From")), el("label", {}, "To", mk(1, hi, "To"))];
  }
  const input = scalarInput(`${ptr}/value`, type, spec, node.value, "Value", (x) => { node.value = x; set(); });
  const list = type === "text" && column && !spec.pii ? attachSuggestions(input, column) : null;
  return [el("label", {}, "Value", input, list)];
}

function scalarInput(id, type, spec, value, label, set) {
  if (type === "choice" || type === "choices") {
    const sel = el("select", { id, "aria-label": label, onchange: (e) => set(e.target.value) },
      ...(spec.choices || []).map((c) => el("option", { value: c, text: c })));
    sel.value = value;
    return sel;
  }
  if (type === "integer" || type === "decimal") {
    return el("input", { id, type: "number", step: type === "integer" ? "1" : "any", value: value ?? "", "aria-label": label,
      oninput: (e) => set(e.target.value === "" ? null : Number(e.target.value)) });
  }
  if (type === "date" || type === "datetime") {
    const iso = typeof value === "string" ? value : "";
    // A datetime value with a time is kept as text, so opening and saving never drops the time.
    const plain = iso === "" || /^\d{4}-\d{2}-\d{2}$/.test(iso);
    return el("input", { id, type: plain ? "date" : "text", value: iso, "aria-label": label, oninput: (e) => set(e.target.value) });
  }
  return el("input", { id, value: value ?? "", "aria-label": label, autocomplete: "off", oninput: (e) => set(e.target.value) });
}

function splitList(text, type) {
  const parts = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
  return type === "integer" || type === "decimal" ? parts.map(Number) : parts;
}

/** Related records: a count ("at least 1 order") or an aggregate ("total amount of orders above 1,500"). */
function renderRelated(node, tname, ptr, replace) {
  const scope = walk(tname, node.path) || tname;
  const relations = relatedOf(scope);
  const rel = relations.find((r) => r.name === node.related);
  const target = rel ? rel.table : undefined;
  const relSel = el("select", { id: `${ptr}/related`, "aria-label": "Related records", onchange: (e) => {
    const n = { related: e.target.value };
    if (node.path) n.path = node.path;
    n.count = clone(node.count || V().default_count);
    replace(n);
  } }, ...relations.map((r) => el("option", { value: r.name, text: `${r.name} (${tableLabel(r.table)})` })));
  if (!rel) relSel.append(el("option", { value: node.related, text: node.related }));
  relSel.value = node.related;
  const row = el("div", { class: "cond related", "data-pointer": ptr }, el("label", {}, "Has related", relSel));
  const isAggregate = "aggregate" in node;
  const modeSel = el("select", { id: `${ptr}/mode`, "aria-label": "Count the records, or aggregate one of their attributes", onchange: (e) => {
    const mode = e.target.value;
    if (mode === "count") {
      delete node.aggregate; delete node.op; delete node.value;
      node.count = clone(V().default_count);
    } else {
      const cols = target ? aggregatableColumns(target, mode) : [];
      if (!cols.length) { e.target.value = isAggregate ? node.aggregate.fn : "count"; return; }
      const [col, spec] = cols.find(([c]) => node.aggregate && c === node.aggregate.attribute) || cols[0];
      delete node.count;
      node.aggregate = { fn: mode, attribute: col };
      const type = aggregateResult(mode, spec.type);
      if (!operatorsFor(type).includes(node.op)) {
        node.op = operatorsFor(type).find((o) => o === "gt") || operatorsFor(type)[0];
        node.value = defaultValue(type, node.op, spec);
      }
    }
    structural();
  } }, el("option", { value: "count", text: "number of records" }),
  ...V().aggregate_functions.map((fn) => el("option", { value: fn, text: `${V().aggregate_labels[fn]} of…` })));
  modeSel.value = isAggregate ? node.aggregate.fn : "count";
  row.append(el("label", {}, "Compare", modeSel));
  if (isAggregate) row.append(...aggregateEditors(node, target, ptr));
  else row.append(countEditor(node, ptr));
  const timeCol = target && Object.entries(table(target).columns).find(([, spec]) => spec.type === "datetime" || spec.type === "date");
  if (timeCol) {
    row.append(el("button", { type: "button", class: "secondary", id: `${ptr}/add-window`, text: "+ Time window", onclick: () => {
      const win = { attribute: timeCol[0], op: "in_last", value: { days: 90 } };
      if (!node.where) node.where = { all: [win] };
      else if (isTree(node.where)) node.where["all" in node.where ? "all" : "any"].push(win);
      else node.where = { all: [node.where, win] };
      structural();
    } }));
  }
  row.append(el("button", { type: "button", class: "icon", id: `${ptr}/remove`, "aria-label": "Remove related condition", text: "✕", onclick: () => replace(null) }));
  if (target) {
    const whereBox = el("div", { class: "related-box" });
    if (node.where) {
      whereBox.append(el("span", { class: "muted", text: `where each ${tableLabel(target)} record matches:` }));
      whereBox.append(renderNode(node.where, target, `${ptr}/where`, (n) => {
        if (n === null || (isTree(n) && !n.all && !n.any)) delete node.where; else node.where = n;
        structural();
      }, true));
      whereBox.append(el("button", { type: "button", class: "link", id: `${ptr}/clear-where`, text: `${isAggregate ? "Use" : "Count"} every ${tableLabel(target)} record`,
        onclick: () => { delete node.where; structural(); } }));
    } else {
      whereBox.append(el("span", { class: "muted", text: `every ${tableLabel(target)} record ${isAggregate ? "is used" : "counts"} ` }),
        el("button", { type: "button", class: "link", id: `${ptr}/add-where`, text: "+ Only records that…",
          onclick: () => { node.where = { all: [newCondition(target)] }; structural(); } }));
    }
    row.append(whereBox);
  }
  return row;
}

function countEditor(node, ptr) {
  const count = node.count || V().default_count; // shown, not written: "count" is optional
  const write = (c) => { node.count = c; };
  const countOp = el("select", { id: `${ptr}/count-op`, "aria-label": "Count comparison", onchange: (e) => {
    const op = e.target.value;
    write({ op, value: op === "between" ? [1, 2] : (Array.isArray(count.value) ? count.value[0] : count.value) });
    structural();
  } }, ...V().count_operators.map((op) => el("option", { value: op, text: V().count_operator_labels[op] })));
  countOp.value = count.op;
  const inputs = count.op === "between"
    ? [0, 1].map((idx) => el("input", { id: `${ptr}/count-${idx}`, type: "number", min: "0", step: "1", value: count.value[idx], "aria-label": idx ? "At most" : "At least",
      oninput: (e) => { const v = clone(count.value); v[idx] = parseInt(e.target.value || "0", 10); write({ op: count.op, value: v }); changed(); } }))
    : [el("input", { id: `${ptr}/count`, type: "number", min: "0", step: "1", value: count.value, "aria-label": "Count",
      oninput: (e) => { write({ op: count.op, value: parseInt(e.target.value || "0", 10) }); changed(); } })];
  return el("label", {}, "Count", el("span", { class: "fields" }, countOp, ...inputs, el("span", { class: "muted", text: "records" })));
}

function aggregateEditors(node, target, ptr) {
  const fn = node.aggregate.fn;
  const cols = target ? aggregatableColumns(target, fn) : [];
  const attrSel = el("select", { id: `${ptr}/aggregate-attribute`, "aria-label": "Attribute to aggregate", onchange: (e) => {
    node.aggregate.attribute = e.target.value;
    structural();
  } }, ...cols.map(([c, spec]) => el("option", { value: c, text: spec.label || c })));
  if (!cols.some(([c]) => c === node.aggregate.attribute)) attrSel.append(el("option", { value: node.aggregate.attribute, text: node.aggregate.attribute }));
  attrSel.value = node.aggregate.attribute;
  const spec = (target && table(target).columns[node.aggregate.attribute]) || { type: "decimal" };
  const type = aggregateResult(fn, spec.type);
  return [el("label", {}, "Attribute", attrSel), opSelect(node, type, operatorsFor(type), ptr, spec),
    ...valueEditor(node, type, spec, ptr, null)];
}

// -- estimate, problems, preview --------------------------------------------------------------

let timer = null;
let seq = 0;
export function scheduleEstimate(delay) {
  clearTimeout(timer);
  timer = setTimeout(runEstimate, delay);
}

function clearPreview(text = "") {
  $("#preview").replaceChildren(text ? el("p", { class: "muted", text }) : "");
}

async function runEstimate() {
  if (!S.def) return;
  if (S.def.groups === null) { $("#estimate-count").textContent = S.saved ? String(S.saved.size ?? 0) : "–"; return; }
  const mine = ++seq;
  const definition = definitionForServer({ forEstimate: true });
  $("#estimate-count").textContent = "…";
  $("#estimate-note").textContent = hasFresh() ? "New conditions count once they have a value." : "";
  try {
    const est = await api("POST", "/definitions/estimate", { definition });
    if (mine !== seq) return;
    showProblems([]);
    $("#estimate-count").textContent = est.count.toLocaleString();
    $("#estimate-time").textContent = `${Math.round(est.elapsed_ms)} ms`;
    const columns = usedColumns(definition);
    const pv = await api("POST", "/definitions/preview", { definition, limit: 8, ...(columns.length ? { columns } : {}) });
    if (mine !== seq) return;
    renderPreview(pv);
    const extra = await lookupExtras(definition, pv);
    if (mine !== seq || !extra.length) return;
    renderPreview(pv, extra);
  } catch (e) {
    if (mine !== seq) return;
    $("#estimate-count").textContent = "–";
    $("#estimate-time").textContent = "";
    clearPreview("No sample while the segment has problems.");
    showProblems(e.problems && e.problems.length ? e.problems : [{ where: "", message: e.message }]);
  }
}

/** The audience's own columns a person would look at: a name-like column, then those the rules use. */
export function usedColumns(definition) {
  const t = table(definition.audience);
  const cols = [];
  const nameLike = ["fullname", "name", "firstname", "lastname", "subject", "topic"].filter((c) => c in t.columns && !(S.me.pii_restricted && t.columns[c].pii));
  cols.push(...nameLike.slice(0, 1));
  const visit = (n) => {
    if (!n || typeof n !== "object") return;
    if (isTree(n)) { for (const c of n.all || n.any) visit(c); return; }
    if ("attribute" in n && !(n.path && n.path.length) && n.attribute in t.columns) cols.push(n.attribute);
  };
  for (const g of definition.groups || []) visit(g.where);
  return [...new Set(cols)].filter((c) => c !== t.key).slice(0, 6);
}

/** What the rules use beyond the audience's own columns: attributes along paths, measures, the latest related record. */
export function extraFields(definition) {
  const out = [];
  const seen = new Set();
  const add = (f) => { const k = JSON.stringify(f); if (!seen.has(k) && out.length < 4) { seen.add(k); out.push(f); } };
  const visit = (n) => {
    if (!n || typeof n !== "object") return;
    if (isTree(n)) { for (const c of n.all || n.any) visit(c); return; }
    if ("related" in n && !(n.path && n.path.length)) {
      const rel = relatedOf(definition.audience).find((r) => r.name === n.related);
      const time = rel && timeColumn(table(rel.table));
      if (time) add({ related: n.related, attribute: time });
    } else if ("measure" in n && !(n.path && n.path.length)) add({ measure: n.measure });
    else if ("attribute" in n && n.path && n.path.length) add({ path: n.path, attribute: n.attribute });
  };
  for (const g of definition.groups || []) visit(g.where);
  return out;
}

/** The column the server orders a table's records in time by (routers/model.py latest_column): ts, createdon
 * or modifiedon when there, else the first datetime, else the first date column; never a PII one. */
export function timeColumn(t) {
  const timed = Object.entries(t.columns).filter(([, spec]) => (spec.type === "datetime" || spec.type === "date") && !spec.pii);
  const named = ["ts", "createdon", "modifiedon"].find((n) => timed.some(([c]) => c === n));
  if (named) return named;
  const first = timed.find(([, spec]) => spec.type === "datetime") || timed[0];
  return first ? first[0] : null;
}

async function lookupExtras(definition, pv) {
  const fields = extraFields(definition);
  const key = table(definition.audience).key;
  const keys = pv.rows.map((r) => r[key]).filter((k) => k !== null && k !== undefined && k !== "***");
  if (!fields.length || !keys.length) return [];
  const path = `/tables/${encodeURIComponent(definition.audience)}/lookup`;
  const answers = await Promise.allSettled(fields.map((f) => api("POST", path, { keys, fields: [f] })));
  return answers.filter((a) => a.status === "fulfilled").map((a) => ({
    label: a.value.columns[0], byKey: new Map(a.value.rows.map((r) => [r.key, r.values[0]])), key,
  }));
}

export function showProblems(problems) {
  for (const node of $$("#builder-view .problem")) node.remove();
  for (const node of $$("#builder-view .has-problem")) node.classList.remove("has-problem");
  const loose = [];
  for (const p of problems) {
    let best = null;
    for (const node of $$("#groups [data-pointer]")) {
      const ptr = node.dataset.pointer;
      if ((p.where === ptr || (p.where || "").startsWith(`${ptr}/`)) && (!best || ptr.length > best.dataset.pointer.length)) best = node;
    }
    const text = humanize(p.message);
    if (best) {
      best.classList.add("has-problem");
      best.append(el("p", { class: "problem", role: "alert", "data-where": p.where, text }));
    } else loose.push(p.where && p.where.startsWith("/") ? `${placeOf(p.where)}: ${text}` : text);
  }
  $("#builder-problems").textContent = loose.join("\n");
}

function renderPreview(pv, extra = []) {
  const box = $("#preview");
  if (!pv.rows.length) { box.replaceChildren(el("p", { class: "muted", text: "No members." })); return; }
  const aud = S.def.audience;
  const head = el("tr", {}, ...pv.columns.map((c) => el("th", { scope: "col", text: colLabel(aud, c), title: c })),
    ...extra.map((x) => el("th", { scope: "col", class: "extra", text: x.label, title: x.label })));
  const rows = pv.rows.map((r) => el("tr", {}, ...pv.columns.map((c) => el("td", { text: fmtCell(r[c]), title: fmtCell(r[c]) })),
    ...extra.map((x) => { const v = fmtCell(x.byKey.get(r[x.key])); return el("td", { text: v, title: v }); })));
  const note = pv.masked && pv.masked.length ? el("p", { class: "muted", text: `Masked: ${pv.masked.map((c) => colLabel(aud, c)).join(", ")}` }) : null;
  box.replaceChildren(...[el("div", { class: "table-scroll" }, el("table", {}, el("thead", {}, head), el("tbody", {}, ...rows))), note].filter(Boolean));
}

export const fmtCell = (v) => (v === null || v === undefined ? "" : Array.isArray(v) ? v.join("; ") : String(v));
