// Citeline's browser UI: hash-routed views over the HTTP API, live through job event streams.
// The header shows who is signed in and in which workspace; in `required` mode every view
// but sign-in needs a session.

import { accessView } from "./admin.js";
import { builderView } from "./agent-builder.js";
import { agentsView } from "./agents.js";
import { askView, closeSource } from "./ask.js";
import { assistantView } from "./assistant.js";
import { el, toast } from "./dom.js";
import { jobsView } from "./jobs.js";
import { mcpView } from "./mcp.js";
import { knowledgeView } from "./knowledge.js";
import { modelsView } from "./models.js";
import { reportsView } from "./reports.js";
import { invitationsBanner, invitationView } from "./invitations.js";
import {
  canManageAccess, loadMe, onSessionEnd, openFile, session, setWorkspace, signOut, signedIn, start,
} from "./session.js";
import { signinView } from "./signin.js";

const main = document.getElementById("main");
const views = {
  ask: askView, knowledge: knowledgeView, reports: reportsView, jobs: jobsView, models: modelsView,
  access: accessView, agents: agentsView, assistant: assistantView, mcp: mcpView,
  builder: builderView,
};
const RETURN_KEY = "citeline.return";
let leaveView = () => {};
let notice = "";  // why the sign-in page is showing, if not for the first time
let routed = false;  // the first page leaves focus at the top: the skip link, then the navigation
const THEME_KEY = "citeline.theme";  // "light" or "dark"; none follows the system

const viewName = () => location.hash.replace(/^#\/?/, "").split("/")[0] || "ask";

function takeReturn() {
  const target = sessionStorage.getItem(RETURN_KEY);
  sessionStorage.removeItem(RETURN_KEY);
  return target && !target.includes("signin") ? target : "#/ask";
}

function toSignin(message) {
  notice = message;
  if (viewName() !== "signin") {
    sessionStorage.setItem(RETURN_KEY, location.hash);
    location.replace("#/signin");  // the hashchange routes
  } else {
    route();
  }
}

// ---------- router ----------

function route() {
  leaveView();
  leaveView = () => {};
  closeSource();
  const name = viewName();
  if (name === "invitation") {
    // An invitation link works signed in or not: accepting it signs the person in.
    renderHeader(name);
    main.replaceChildren();
    invitationView(main, location.hash.split("/")[2] || "", () => location.replace("#/ask"));
    return;
  }
  if (session.mode === "required" && !signedIn() && name !== "signin") {
    toSignin(notice);
    return;
  }
  if (name === "signin" && signedIn()) {
    location.replace(takeReturn());
    return;
  }
  renderHeader(name);
  main.replaceChildren();
  const cleanup = name === "signin"
    ? signinView(main, { notice, onSignedIn: () => { notice = ""; location.replace(takeReturn()); } })
    : (views[name] || askView)(main);
  if (typeof cleanup === "function") leaveView = cleanup;
  if (name !== "signin" && session.mode === "required" && signedIn()) {
    invitationsBanner(main, () => loadMe().then(() => renderHeader(viewName())));
  }
  if (routed && !main.contains(document.activeElement)) main.focus();
  routed = true;
}

// ---------- header ----------

function renderHeader(name) {
  const nav = document.getElementById("sections");
  nav.hidden = !signedIn();
  for (const link of nav.querySelectorAll("[data-nav]")) {
    if (link.dataset.admin !== undefined) link.hidden = !canManageAccess();
    if (link.dataset.nav === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const account = document.getElementById("account");
  if (!signedIn()) { account.replaceChildren(); return; }
  const me = session.me;
  const parts = [];
  if (me) {
    parts.push(el("span", { class: "who", "data-testid": "user-email", text: me.user.email }));
    const workspaces = me.workspaces || [];
    if (workspaces.length > 1) {
      const select = el("select", { id: "workspace", onchange: () => switchWorkspace(select.value) },
        workspaces.map((w) => el("option", { value: w.id, text: w.role ? `${w.name} (${w.role})` : w.name })));
      select.value = me.workspace.id;
      parts.push(el("span", { class: "field" }, el("label", { for: "workspace", text: "Workspace" }), select));
    } else {
      parts.push(el("span", { class: "meta", text: `${me.workspace.name} · ${me.role}` }));
    }
  }
  if (session.mode === "local") {
    parts.push(el("span", { class: "mode", title: "Signed in automatically: local single-user mode",
      text: "local mode" }));
  } else {
    parts.push(el("button", { type: "button", class: "secondary", text: "Sign out", onclick: async () => {
      await signOut();
      notice = "You have signed out.";
      sessionStorage.removeItem(RETURN_KEY);
      location.replace("#/signin");
    } }));
  }
  account.replaceChildren(...parts);
}

async function switchWorkspace(id) {
  const previous = session.workspace;
  setWorkspace(id);
  try {
    await loadMe();
  } catch (error) {
    setWorkspace(previous);
    toast(`Could not switch workspace: ${error.message}`);
    renderHeader(viewName());
    return;
  }
  toast(`Now in the workspace ${session.me.workspace.name}`);
  // A knowledge base of the old workspace does not exist in the new one.
  if (location.hash.startsWith("#/knowledge/")) location.hash = "#/knowledge";
  else route();
}

// ---------- start ----------

// ---------- theme ----------

function wireTheme() {
  const button = document.getElementById("theme");
  const system = matchMedia("(prefers-color-scheme: dark)");
  const show = () => {
    const chosen = localStorage.getItem(THEME_KEY);
    if (chosen) document.documentElement.dataset.theme = chosen;
    else delete document.documentElement.dataset.theme;
    button.setAttribute("aria-pressed", String((chosen || (system.matches ? "dark" : "light")) === "dark"));
  };
  button.addEventListener("click", () => {
    localStorage.setItem(THEME_KEY, button.getAttribute("aria-pressed") === "true" ? "light" : "dark");
    show();
  });
  system.addEventListener("change", show);
  show();
}

function wireStaticParts() {
  wireTheme();
  document.getElementById("source-close").addEventListener("click", closeSource);
  document.addEventListener("keydown", (event) => { if (event.key === "Escape") closeSource(); });
  // Stored files need the bearer token, which a plain link cannot carry; and they open only as
  // PDF or text (see openFile).
  document.addEventListener("click", (event) => {
    const link = event.target.closest && event.target.closest("a[data-file]");
    if (!link) return;
    event.preventDefault();
    openFile(link.href).catch((error) => toast(`Could not open the file: ${error.message}`));
  });
  onSessionEnd((reason) => toSignin(reason));
  window.addEventListener("hashchange", route);
}

async function boot() {
  wireStaticParts();
  const pendingCode = new URL(location.href).searchParams.has("login_code");
  try {
    await start();
    if (pendingCode && signedIn()) history.replaceState(history.state, "", takeReturn());
  } catch (error) {
    if (session.mode === null) {
      main.replaceChildren(el("h1", { text: "Citeline is unreachable" }),
        el("p", { class: "error", role: "alert", text: error.message }),
        el("button", { type: "button", text: "Try again", onclick: () => location.reload() }));
      return;
    }
    notice = pendingCode ? `Single sign-on failed: ${error.message}` : `Could not sign in: ${error.message}`;
  }
  route();
}

boot();
