// The data model and the vocabulary, both as GET /api/model serves them. The builder keeps no copy
// of operators, labels or value shapes: they are defined once, in Python (segmenta.model.operators).

export const M = { model: null };

export const V = () => M.model.vocabulary;
export const table = (name) => M.model.tables[name];
export const tableLabel = (name) => (table(name) && table(name).label) || name;
export const colLabel = (tname, col) => {
  const spec = table(tname) && table(tname).columns[col];
  return (spec && spec.label) || col;
};
export const operatorsFor = (type) => V().operators[type] || [];
export const opLabel = (op) => V().operator_labels[op] || op;
export const shapeOf = (op) => V().value_shapes[op] || "scalar";

/** The table reached from ``tname`` along many-to-one ``path`` (undefined when a step is unknown). */
export function walk(tname, path) {
  let t = tname;
  for (const step of path || []) {
    const p = ((table(t) || {}).paths || []).find((x) => x.name === step);
    if (!p) return undefined;
    t = p.table;
  }
  return t;
}

/** The one-to-many relationships from ``tname``, busiest (most rows) first. */
export function relatedOf(tname) {
  const rel = [...((table(tname) || {}).related || [])];
  return rel.sort((a, b) => (table(b.table).rows || 0) - (table(a.table).rows || 0));
}

/** Attributes of the table, then along many-to-one paths (two hops), then measures and segment membership. */
export function fieldsOf(tname) {
  const out = [];
  const add = (path, t, groupLabel) => {
    for (const [col, spec] of Object.entries(table(t).columns)) {
      out.push({ key: `a|${path.join(".")}|${col}`, label: (spec.label || col) + (spec.calculated ? " (calculated)" : ""), group: groupLabel,
        disabled: !!spec.calculated, path, attribute: col, spec, table: t });
    }
  };
  add([], tname, tableLabel(tname));
  for (const p of table(tname).paths || []) {
    add([p.name], p.table, `${tableLabel(tname)} › ${p.name}`);
    for (const q of table(p.table).paths || []) add([p.name, q.name], q.table, `${tableLabel(tname)} › ${p.name} › ${q.name}`);
  }
  for (const [m, spec] of Object.entries(table(tname).measures || {})) {
    out.push({ key: `m|${m}`, label: spec.label || m, group: "Measures", measure: m, spec: { type: spec.result_type } });
  }
  out.push({ key: "s|", label: "member of segment…", group: "Segments", segment: true });
  return out;
}

export function fieldKey(node) {
  if ("measure" in node) return node.path && node.path.length ? `m|${node.path.join(".")}|${node.measure}` : `m|${node.measure}`;
  if ("in_segment" in node) return "s|";
  return `a|${(node.path || []).join(".")}|${node.attribute}`;
}

/** The value a freshly chosen operator starts with (undefined: the operator takes none). */
export function defaultValue(type, op, spec) {
  const shape = shapeOf(op);
  if (shape === "none") return undefined;
  if (shape === "window") return { days: 30 };
  if (shape === "range") return type === "date" || type === "datetime" ? ["", ""] : [0, 0];
  if (shape === "list") return [];
  if (type === "choice") return (spec.choices || [])[0];
  if (type === "integer" || type === "decimal") return 0;
  if (type === "date" || type === "datetime") return new Date().toISOString().slice(0, 10);
  return "";
}

/** The result type of an aggregate function over a column of ``type`` (the rule is served by the API). */
export function aggregateResult(fn, type) {
  const r = V().aggregate_result_types[fn];
  return r === "same" ? type : r;
}

export const aggregatableColumns = (tname, fn) =>
  Object.entries(table(tname).columns).filter(([, spec]) => !spec.calculated && (V().aggregate_column_types[fn] || []).includes(spec.type));
