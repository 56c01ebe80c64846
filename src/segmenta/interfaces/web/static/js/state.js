// What the page is showing: the signed-in user, the segment list, and the definition being edited.
// The builder's state *is* the segment definition of the contract; the page renders it and the
// server validates, estimates and saves it.

export const S = {
  me: null,
  segments: [],
  def: null, // the definition being edited (groups === null for a static list)
  saved: null, // the saved segment it belongs to, or null for a new one
  version: null, // a past version being viewed (read-only), or null
  readonly: false, // a past version or an expired segment: shown, not edited
  kind: "dynamic",
  baseline: null, // the definition as last saved or opened, to tell unsaved changes
  fresh: new WeakSet(), // new conditions still waiting for a value: left out of the estimate
};

/** Whether the signed-in user's role may do ``action`` (GET /api/auth/roles); the service refuses anyway. */
export function can(action) {
  const who = S.roles && S.roles.actions && S.roles.actions[action];
  return !who || !S.me || who.includes(S.me.role);
}
