// Talking to /api: JSON in and out, errors with the server's problems (pointer + message).

export class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || (typeof body === "string" && body) || `HTTP ${status}`);
    this.status = status;
    this.problems = err.problems || [];
  }
}

let onUnauthorized = () => {};
export function whenUnauthorized(fn) { onUnauthorized = fn; }

export async function api(method, path, body, { form } = {}) {
  const init = { method, credentials: "same-origin", headers: {} };
  if (form) init.body = form;
  else if (body !== undefined) { init.body = JSON.stringify(body); init.headers["Content-Type"] = "application/json"; }
  const res = await fetch(`/api${path}`, init);
  const type = res.headers.get("content-type") || "";
  const data = type.includes("json") ? await res.json() : await res.text();
  if (res.status === 401 && path !== "/auth/login") { onUnauthorized(); throw new ApiError(401, data); }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

/** How a segment is addressed in URLs: its id when the service gives one, else its name, encoded. */
export const segRef = (seg) => (seg.id !== undefined && seg.id !== null ? String(seg.id) : encodeURIComponent(seg.name));
