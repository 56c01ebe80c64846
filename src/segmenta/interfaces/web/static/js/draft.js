// Autosaved local drafts: every change to an unsaved definition is kept in this browser's
// localStorage, per user and per segment, and offered back when that segment (or a new one) opens.
// A draft may hold PII condition values, so signing out removes every draft of that user.

import { S } from "./state.js";

// ":" never appears in a user name, so one user's keys never begin with another's prefix.
const prefixOf = (username) => `segmenta.draft:${username}:`;
// Before drafts were keyed with ":" (a user name may contain "."): removed at sign-out too.
const legacyPrefixOf = (username) => `segmenta.draft.${username}.`;

const keyFor = (saved) => `${prefixOf(S.me ? S.me.username : "?")}${saved ? `segment-${saved.id ?? saved.name}` : "new"}`;

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

/** Every draft ``username`` kept in this browser (at sign-out: nothing they typed stays behind). */
export function dropAllDrafts(username) {
  try {
    const mine = [prefixOf(username), legacyPrefixOf(username)];
    const keys = [];
    for (let i = 0; i < localStorage.length; i++) {
      const k = localStorage.key(i);
      if (k && mine.some((p) => k.startsWith(p))) keys.push(k);
    }
    for (const k of keys) localStorage.removeItem(k);
  } catch { /* storage disabled: nothing kept */ }
}
