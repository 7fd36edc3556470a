// Who is signed in, and every call to the API. The access token lives only in memory; the
// rotating refresh token in sessionStorage, so a reload keeps this tab signed in and closing
// it forgets the session. A 401 triggers one refresh, then sign-in.

const REFRESH_KEY = "citeline.refresh";
const WORKSPACE_KEY = "citeline.workspace";
const ROLES = ["viewer", "member", "admin", "owner"];

export class ApiError extends Error {
  constructor(status, message, retryAfter = null) {
    super(message);
    this.status = status;
    this.retryAfter = retryAfter;  // seconds, from a 429's Retry-After
  }
}

export const session = {
  mode: null,          // "local" or "required", from /v1/auth/config
  oidc: { enabled: false, login_url: "/v1/auth/oidc/login" },
  me: null,            // /v1/auth/me
  accessToken: null,
  refreshAt: 0,        // ms since the epoch: a little before the access token expires
  workspace: sessionStorage.getItem(WORKSPACE_KEY),
};

const ended = new Set();

/** Calls `listener(reason)` when the session ends without the user signing out. */
export function onSessionEnd(listener) {
  ended.add(listener);
}

export function signedIn() {
  return session.mode === "local" || session.accessToken !== null;
}

export function role() {
  if (session.me) return session.me.role;
  return session.mode === "local" ? "owner" : "viewer";
}

export const canWrite = () => ROLES.indexOf(role()) >= ROLES.indexOf("member");
export const canAdmin = () => ROLES.indexOf(role()) >= ROLES.indexOf("admin");
// Workspace admins route their workspace's aliases; instance administrators also the shared ones.
export const isInstanceAdmin = () =>
  session.me ? Boolean(session.me.user.is_admin) : session.mode === "local";
export const canManageModels = () => canAdmin() || isInstanceAdmin();
export const canManageAccess = canManageModels;  // members, API keys, the audit log

/** The problem+json body of a failed response as an ApiError. */
export async function toError(response) {
  const body = await response.json().catch(() => null);
  const detail = body && (body.detail || body.title || (body.error && body.error.message));
  let retryAfter = null;
  const header = response.headers.get("Retry-After");
  if (header) {
    retryAfter = /^\d+$/.test(header.trim())
      ? Number(header) : Math.max(0, Math.ceil((Date.parse(header) - Date.now()) / 1000));
  }
  return new ApiError(response.status, detail || `${response.status} ${response.statusText}`,
    Number.isFinite(retryAfter) ? retryAfter : null);
}

// ---------- tokens ----------

async function grant(fields) {
  const response = await fetch("/v1/auth/token", {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(fields),
  });
  return keep(response);
}

async function keep(response) {
  if (!response.ok) throw await toError(response);
  const tokens = await response.json();
  session.accessToken = tokens.access_token;
  const lifetime = (tokens.expires_in || 0) * 1000;
  session.refreshAt = Date.now() + lifetime - Math.min(10_000, lifetime / 4);
  sessionStorage.setItem(REFRESH_KEY, tokens.refresh_token);
  return tokens;
}

function forget() {
  session.accessToken = null;
  session.refreshAt = 0;
  session.me = null;
  sessionStorage.removeItem(REFRESH_KEY);
}

let refreshing = null;

/** Trades the refresh token for new tokens; true when that worked. Concurrent callers share
 * one request: the token rotates, and presenting the old one twice revokes the session. */
export function refresh() {
  if (!refreshing) {
    refreshing = (async () => {
      const token = sessionStorage.getItem(REFRESH_KEY);
      if (!token) return false;
      try {
        await grant({ grant_type: "refresh_token", refresh_token: token });
        return true;
      } catch (error) {
        // Offline, throttled or failing: keep the token for the next try.
        if (!(error instanceof ApiError) || ![400, 401].includes(error.status)) throw error;
        forget();
        return false;
      }
    })().finally(() => { refreshing = null; });
  }
  return refreshing;
}

function end(reason) {
  forget();
  for (const listener of ended) listener(reason);
}

export async function signIn(email, password) {
  await grant({ grant_type: "password", username: email, password });
  await loadMe();
}

/** Accepts an invitation from its link (with the invited account's password, or a new one)
 * and signs in to the workspace it is for. */
export async function acceptInvitation(token, password, name) {
  const tokens = await keep(await fetch("/v1/auth/invitations/accept", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token, password, name }),
  }));
  setWorkspace(tokens.workspace_id);
  await loadMe();
}

/** Finishes a single sign-on: the server sent the browser back with a one-time code. */
export async function exchangeLoginCode(code) {
  await grant({ grant_type: "urn:citeline:login-code", code });
  await loadMe();
}

export async function signOut() {
  const token = sessionStorage.getItem(REFRESH_KEY);
  forget();
  if (token) {
    await fetch("/v1/auth/logout", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: token }) }).catch(() => null);
  }
}

// ---------- requests ----------

function headers(extra) {
  const result = new Headers(extra || {});
  if (session.accessToken) result.set("Authorization", `Bearer ${session.accessToken}`);
  if (session.workspace) result.set("X-Workspace", session.workspace);
  return result;
}

/** fetch() with the caller's credentials and workspace; resolves to the Response. */
export async function request(path, options = {}) {
  if (session.mode === "required" && session.accessToken && Date.now() > session.refreshAt) {
    await refresh();
  }
  const sent = session.accessToken;
  let response = await fetch(path, { ...options, headers: headers(options.headers) });
  if (response.status === 401 && session.mode === "required") {
    // Another call may have refreshed meanwhile; then the new token is tried without a refresh.
    const renewed = (session.accessToken && session.accessToken !== sent) || (await refresh());
    if (renewed) response = await fetch(path, { ...options, headers: headers(options.headers) });
    if (response.status === 401) {
      end("Your session has ended. Sign in again.");
      throw await toError(response);
    }
  }
  return response;
}

/** A JSON API call; throws ApiError with the problem's detail on failure. */
export async function api(path, options = {}) {
  const response = await request(path, options);
  if (!response.ok) throw await toError(response);
  if (response.status === 204) return null;
  return response.json();
}

export async function loadMe() {
  try {
    session.me = await api("/v1/auth/me");
  } catch (error) {
    if (!session.workspace || !(error instanceof ApiError) || error.status === 401) throw error;
    setWorkspace(null);  // no longer a member of the remembered workspace
    session.me = await api("/v1/auth/me");
  }
  return session.me;
}

export function setWorkspace(id) {
  session.workspace = id;
  if (id) sessionStorage.setItem(WORKSPACE_KEY, id);
  else sessionStorage.removeItem(WORKSPACE_KEY);
}

/** Reads the auth mode, finishes a pending single sign-on, and restores a session. */
export async function start() {
  const response = await fetch("/v1/auth/config");
  if (response.status === 404) {
    session.mode = "local";  // a server without accounts
  } else if (!response.ok) {
    throw await toError(response);
  } else {
    const config = await response.json();
    session.mode = config.mode;
    session.oidc = { ...session.oidc, ...(config.oidc || {}) };
  }
  const url = new URL(location.href);
  const code = url.searchParams.get("login_code");
  if (code) {
    url.searchParams.delete("login_code");
    history.replaceState(history.state, "", url.pathname + url.search + url.hash);
    await exchangeLoginCode(code);
    return;
  }
  if (session.mode === "required" && !(await refresh())) return;
  if (response.status !== 404) await loadMe();
}

// What may open in a tab, and as which type. An original opens as PDF or as plain text only:
// in its own type an uploaded HTML page would run in this origin (and read this tab's storage).
const VIEWABLE = new Map([
  ["application/pdf", "application/pdf"], ["text/plain", "text/plain"],
  ["text/markdown", "text/plain"], ["text/csv", "text/plain"],
]);

/** Opens a stored file: PDF and text in a new tab (without access to this one), anything else
 * as a download. The bearer token cannot ride on a plain link, so the page fetches it. */
export async function openFile(url) {
  const response = await request(url);
  if (!response.ok) throw await toError(response);
  const served = (response.headers.get("Content-Type") || "").split(";")[0].trim().toLowerCase();
  const view = VIEWABLE.get(served);
  const blob = new Blob([await response.arrayBuffer()], { type: view || "application/octet-stream" });
  const objectUrl = URL.createObjectURL(blob);
  setTimeout(() => URL.revokeObjectURL(objectUrl), 60_000);
  const match = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(response.headers.get("Content-Disposition") || "");
  const link = Object.assign(document.createElement("a"), { href: objectUrl, rel: "noopener" });
  if (view) link.target = "_blank";
  else link.download = match ? decodeURIComponent(match[1]) : "download";
  link.click();
}
