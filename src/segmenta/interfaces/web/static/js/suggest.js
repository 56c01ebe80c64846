// Value suggestions for text columns: the most frequent values in the data, fetched as the user types
// (GET /api/tables/{table}/columns/{column}/values). PII columns are never suggested.

import { api } from "./api.js";
import { el } from "./dom.js";

let counter = 0;

export function attachSuggestions(input, { table, column }) {
  const id = `suggest-${++counter}`;
  const list = el("datalist", { id, class: "suggestions" });
  input.setAttribute("list", id);
  let timer = null;
  let last = null;
  const load = () => {
    const prefix = input.value;
    if (prefix === last) return;
    last = prefix;
    const q = new URLSearchParams({ prefix, limit: "20" });
    api("GET", `/tables/${encodeURIComponent(table)}/columns/${encodeURIComponent(column)}/values?${q}`)
      .then((r) => { if (input.value === prefix) list.replaceChildren(...r.values.map((v) => el("option", { value: v.value, label: `${v.count.toLocaleString()} records` }))); })
      .catch(() => list.replaceChildren());
  };
  input.addEventListener("focus", () => { clearTimeout(timer); timer = setTimeout(load, 50); });
  input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(load, 200); });
  return list;
}
