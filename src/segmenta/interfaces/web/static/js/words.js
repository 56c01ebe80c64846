// Problems worded for people: no JSON syntax, operator keys as the builder shows them, and the place
// ("Group 2, condition 1") instead of a JSON pointer. The pointer itself still places the message.

import { V } from "./model.js";

/** "/groups/1/where/all/0" -> "Group 2, condition 1". */
export function placeOf(pointer) {
  const parts = String(pointer || "").split("/").filter(Boolean);
  const out = [];
  for (let i = 0; i < parts.length; i++) {
    if (parts[i] === "groups" && /^\d+$/.test(parts[i + 1] || "")) { out.push(`Group ${Number(parts[i + 1]) + 1}`); i++; }
    else if ((parts[i] === "all" || parts[i] === "any") && /^\d+$/.test(parts[i + 1] || "")) { out.push(`condition ${Number(parts[i + 1]) + 1}`); i++; }
    else if (parts[i] === "where" && out.length > 1) out.push("its records");
  }
  return out.length ? out.join(", ") : "The segment";
}

export function humanize(message) {
  let m = String(message || "");
  const labels = (V && V() && V().operator_labels) || {};
  // Examples in JSON ("e.g. {...}", "[low, high]") mean nothing to a person using the builder.
  m = m.replace(/,?\s*e\.g\.\s*[{[][^}\]]*[}\]]/g, "");
  m = m.replace(/'(count|aggregate)' is \{[^}]*\}[^;]*/g, "the $1 settings are incomplete");
  m = m.replace(/"([a-z_]+)"/g, (all, word) => (labels[word] ? `“${labels[word]}”` : `“${word}”`));
  m = m.replace(/'([a-z_]+)'/g, (all, word) => (labels[word] ? `“${labels[word]}”` : `“${word}”`));
  m = m.replace(/\bnot (\[[^\]]*\]|\{[^}]*\}|null)/g, (all, v) => (v === "null" ? "not empty" : `not ${v.replace(/[[\]{}"]/g, "")}`));
  m = m.replace(/\bnull\b/g, "empty");
  m = m.replace(/"([^"]*)"/g, "“$1”");
  m = m.replace(/\[([^\]]*)\]/g, "$1").replace(/\{([^}]*)\}/g, "$1");
  return m.charAt(0).toUpperCase() + m.slice(1);
}
