// Talking to the gateway: JSON requests carrying the session's CSRF token,
// and who is logged in.
export const session = { name: "", role: "none", via: "", csrf: "" };

const ROLES = ["none", "viewer", "operator", "engineer"];

// can reports whether the current principal holds at least role.
export function can(role) {
  return ROLES.indexOf(session.role) >= ROLES.indexOf(role);
}

export class APIError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export async function api(path, { method = "GET", body } = {}) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && session.csrf) headers["X-CSRF-Token"] = session.csrf;
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store", credentials: "same-origin" });
  if (r.status === 204) return null;
  let doc = null;
  try { doc = await r.json(); } catch { /* not JSON: the status says enough */ }
  if (!r.ok) throw new APIError(r.status, (doc && doc.error) || `HTTP ${r.status}`);
  return doc;
}

export async function whoami() {
  try {
    const w = await api("api/v1/whoami");
    Object.assign(session, { name: w.name, role: w.role, via: w.via, csrf: w.csrf_token || "" });
  } catch (e) {
    Object.assign(session, { name: "", role: "none", via: "", csrf: "" });
  }
  return session;
}

export async function login(name, password) {
  const r = await api("api/v1/login", { method: "POST", body: { name, password } });
  Object.assign(session, { name: r.name, role: r.role, via: "session", csrf: r.csrf_token });
  return session;
}

export async function logout() {
  await api("api/v1/logout", { method: "POST" });
  return whoami();
}
