// Autosaved local drafts: every change to an unsaved definition is kept in this browser's
// localStorage, per user and per segment, and offered back when that segment (or a new one) opens.

import { S } from "./state.js";

const keyFor = (saved) => `segmenta.draft.${S.me ? S.me.username : "?"}.${saved ? `segment-${saved.id ?? saved.name}` : "new"}`;

export function keepDraft(def, saved, kind) {
  try {
    localStorage.setItem(keyFor(saved), JSON.stringify({ definition: def, kind, at: new Date().toISOString() }));
  } catch { /* storage full or disabled: the draft is simply not kept */ }
}

export function readDraft(saved) {
  try {
    const raw = localStorage.getItem(keyFor(saved));
    return raw ? JSON.parse(raw) : null;
  } catch { return null; }
}

export function dropDraft(saved) {
  try { localStorage.removeItem(keyFor(saved)); } catch { /* nothing kept */ }
}
