// Access: the workspace's members and their roles, its API keys, and the audit log. For
// workspace admins and owners, and instance administrators.

import { badge, el, errorBox, toast } from "./dom.js";
import { api, canManageAccess, isInstanceAdmin, session } from "./session.js";

const ROLES = ["viewer", "member", "admin", "owner"];
const AUDIT_PAGE = 50;
const ACTIONS = ["auth.sign_in", "auth.refresh_reuse", "auth.sign_out", "api_key.create",
  "api_key.revoke", "user.create", "user.update", "user.delete", "member.role", "member.remove",
  "invitation.create", "invitation.accept", "invitation.decline", "invitation.revoke",
  "request.denied", "workspace.create", "workspace.delete", "knowledge_base.delete",
  "document.delete", "model.delete", "alias.delete"];

const json = (method, body) => ({ method, headers: { "Content-Type": "application/json" },
  body: JSON.stringify(body) });
// A column name starting with "~" is one a phone leaves out.
const optional = (name) => (name.startsWith("~") ? "optional" : null);
const head = (...names) => el("thead", {}, el("tr", {},
  names.map((n) => el("th", { class: optional(n), text: n.replace(/^~/, "") }))));
const when = (iso, none = "never") => iso
  ? el("time", { datetime: iso, text: new Date(iso).toLocaleString() }) : none;
const loading = () => el("p", { class: "spinner", text: "Loading" });
const roleSelect = (attrs, value) => {
  const select = el("select", attrs, ROLES.map((r) => el("option", { value: r, text: r })));
  select.value = value;
  return select;
};
/** A section card: its heading labels it; `problem` shows the server's refusals. */
const section = (id, title, ...children) =>
  el("section", { class: "card", "aria-labelledby": id }, el("h2", { id, text: title }), ...children);
const problemBox = () => el("p", { class: "error", role: "alert" });
// A list that re-renders after a change; tabindex lets it take the focus when its row is gone.
const listBox = () => el("div", { class: "scroll", tabindex: "-1", "aria-live": "polite" }, loading());
/** Keeps the keyboard where it was once `list` has re-rendered: on the control named `label`. */
const refocus = (list, label) =>
  ((label && list.querySelector(`[aria-label="${CSS.escape(label)}"]`)) || list).focus();

export function accessView(root) {
  root.append(el("h1", { text: "Access" }));
  if (!canManageAccess() || !session.me) {
    root.append(el("p", { class: "note", text: "Only workspace admins and owners, and instance " +
      "administrators, can manage members, API keys and the audit log." }));
    return;
  }
  const names = new Map();  // "user:<id>" → email, for the audit log
  const audit = auditSection(names);
  const members = membersSection(session.me.workspace.id, names, audit.load);
  const invitations = invitationsSection(session.me.workspace.id, audit.load);
  const keys = keysSection(audit.load);
  root.append(el("p", { class: "muted", text: `Who may use the workspace ${session.me.workspace.name}, ` +
    "and what they did." }), members.node, invitations.node, keys.node, audit.node);
  members.load().finally(audit.load);
  invitations.load();
  keys.load();
}

// ---------- members ----------

function membersSection(ws, names, onChange) {
  const base = `/v1/workspaces/${encodeURIComponent(ws)}/members`;
  const list = listBox();
  const problem = problemBox();

  async function load() {
    try {
      const { members } = await api(base);
      for (const m of members) names.set(`user:${m.id}`, m.email);
      list.replaceChildren(members.length ? el("table", { "data-testid": "members" },
        head("Email", "~Name", "Role", ""), el("tbody", {}, members.map(row)))
        : el("p", { class: "empty", text: "No members." }));
    } catch (error) { list.replaceChildren(errorBox(error)); }
  }

  async function change(what, call, done, focus) {
    problem.textContent = "";
    try {
      await call();
      toast(done);
      onChange();
    } catch (error) {
      problem.textContent = `Could not ${what}: ${error.message}`;
    }
    await load();  // what the server has now
    if (focus !== undefined) refocus(list, focus);
  }

  function row(m) {
    const you = m.id === session.me.user.id;
    // A select changes on every arrow key: the role is sent only when saved.
    const save = el("button", { type: "button", class: "secondary", text: "Save", hidden: true,
      "aria-label": `Save the role of ${m.email}`, onclick: () => change(`change the role of ${m.email}`,
        () => api(`${base}/${m.id}`, json("PUT", { role: select.value })),
        `${m.email} is now ${select.value}`, `Role of ${m.email}`) });
    const select = roleSelect({ "aria-label": `Role of ${m.email}`,
      onchange: () => { save.hidden = select.value === m.role; } }, m.role);
    return el("tr", { "data-email": m.email },
      el("td", {}, m.email, you ? el("span", { class: "meta", text: " (you)" }) : null),
      el("td", { class: "optional" }, m.name, m.disabled ? el("div", { class: "meta", text: "disabled" }) : null,
        m.sso ? el("div", { class: "meta", text: "single sign-on" }) : null),
      el("td", {}, el("div", { class: "row center" }, select, save)),
      el("td", {}, el("button", { type: "button", class: "danger", text: "Remove",
        "aria-label": `Remove ${m.email}`, onclick: () => {
          if (!confirm(`Remove ${m.email} from this workspace?`)) return;
          change(`remove ${m.email}`, () => api(`${base}/${m.id}`, { method: "DELETE" }),
            `Removed ${m.email}`, `Remove ${m.email}`);
        } })));
  }

  const email = el("input", { type: "email", id: "member-email", required: true, autocomplete: "off" });
  const name = el("input", { type: "text", id: "member-name", autocomplete: "off" });
  const password = el("input", { type: "password", id: "member-password", minlength: "10",
    autocomplete: "new-password", required: !session.oidc.enabled });
  const role = roleSelect({ id: "member-role" }, "member");
  const form = el("form", { "aria-labelledby": "member-add", onsubmit: async (event) => {
    event.preventDefault();
    const who = email.value.trim();
    await change(`add ${who}`, () => api("/v1/users", json("POST", { email: who, name: name.value.trim(),
      password: password.value || null, role: role.value, workspace_id: ws })), `Added ${who} as ${role.value}`);
    if (!problem.textContent) { form.reset(); role.value = "member"; email.focus(); }
  } },
    el("h3", { id: "member-add", text: "Add a user" }),
    el("div", { class: "row" },
      el("div", { class: "grow" }, el("label", { for: "member-email", text: "Email" }), email),
      el("div", { class: "grow" }, el("label", { for: "member-name", text: "Name" }), name)),
    el("div", { class: "row" },
      el("div", { class: "grow" }, el("label", { for: "member-password", text: "Password" }), password),
      el("div", {}, el("label", { for: "member-role", text: "Role" }), role),
      el("button", { type: "submit", text: "Add user" })),
    el("p", { class: "meta", text: session.oidc.enabled
      ? "At least 10 characters; leave it empty for an account that only signs in with single sign-on."
      : "At least 10 characters." }));

  // Making accounts is for instance administrators; everyone else invites (see below).
  return { node: section("members-title", "Members", list, problem, isInstanceAdmin() ? form : null),
    load };
}

// ---------- invitations ----------

function invitationsSection(ws, onChange) {
  const base = `/v1/workspaces/${encodeURIComponent(ws)}/invitations`;
  const list = listBox();
  const problem = problemBox();
  const shown = el("div");  // the new invitation's link, this once

  async function load() {
    try {
      const { invitations } = await api(base);
      list.replaceChildren(invitations.length ? el("table", { "data-testid": "invitations" },
        head("Email", "Role", "~Expires", ""), el("tbody", {}, invitations.map(row)))
        : el("p", { class: "empty", text: "No invitations waiting for an answer." }));
    } catch (error) { list.replaceChildren(errorBox(error)); }
  }

  const row = (invitation) => el("tr", { "data-invited": invitation.email },
    el("td", { text: invitation.email }), el("td", { text: invitation.role }),
    el("td", { class: "optional" }, when(invitation.expires_at)),
    el("td", {}, el("button", { type: "button", class: "danger", text: "Withdraw",
      "aria-label": `Withdraw the invitation of ${invitation.email}`, onclick: async () => {
        problem.textContent = "";
        try {
          await api(`${base}/${invitation.id}`, { method: "DELETE" });
          toast(`Withdrew the invitation of ${invitation.email}`);
          onChange();
        } catch (error) { problem.textContent = `Could not withdraw it: ${error.message}`; }
        await load();
      } })));

  function reveal(created) {
    const value = el("input", { type: "text", id: "invite-link", readonly: true,
      value: created.accept_url, class: "secret-value", spellcheck: "false" });
    shown.replaceChildren(el("div", { class: "secret", role: "group", "aria-labelledby": "invite-link-label" },
      el("label", { for: "invite-link", id: "invite-link-label",
        text: `Invitation link for ${created.email} (${created.role})` }),
      el("div", { class: "row center" }, el("div", { class: "grow" }, value),
        el("button", { type: "button", text: "Copy", onclick: async () => {
          try { await navigator.clipboard.writeText(created.accept_url); toast("Copied the link"); } catch {
            value.focus(); value.select(); toast("Selected the link: press Ctrl+C (⌘C) to copy it");
          }
        } }),
        el("button", { type: "button", class: "secondary", text: "Done",
          onclick: () => { shown.replaceChildren(); email.focus(); } })),
      el("p", { class: "meta", text: "Send it to them: they join when they open it and accept. " +
        "It works once, for 7 days, and won't be shown again. If they already use Citeline, " +
        "they can also accept it after signing in." })));
    value.focus();
    value.select();
  }

  const email = el("input", { type: "email", id: "invite-email", required: true, autocomplete: "off" });
  const role = roleSelect({ id: "invite-role" }, "member");
  const form = el("form", { "aria-labelledby": "invite-title", onsubmit: async (event) => {
    event.preventDefault();
    problem.textContent = "";
    try {
      const created = await api(base, json("POST", { email: email.value.trim(), role: role.value }));
      form.reset();
      role.value = "member";
      await load();
      reveal(created);
      onChange();
    } catch (error) { problem.textContent = `Could not invite: ${error.message}`; }
  } },
    el("h3", { id: "invite-title", text: "Invite someone" }),
    el("div", { class: "row" },
      el("div", { class: "grow" }, el("label", { for: "invite-email", text: "Email to invite" }), email),
      el("div", {}, el("label", { for: "invite-role", text: "Role to offer" }), role),
      el("button", { type: "submit", text: "Invite" })));

  return { node: section("invitations-title", "Invitations", shown, list, problem, form), load };
}

// ---------- API keys ----------

function keyState(key) {
  if (key.revoked_at) return "revoked";
  if (key.expires_at && Date.parse(key.expires_at) <= Date.now()) return "expired";
  return "active";
}

function keysSection(onChange) {
  const list = listBox();
  const problem = problemBox();
  const shown = el("div");  // the new key, this once

  async function load() {
    try {
      const { api_keys: keys } = await api("/v1/api-keys");
      list.replaceChildren(keys.length ? el("table", { "data-testid": "api-keys" },
        head("Name", "Role", "~Created", "~Last used", "State", ""), el("tbody", {}, keys.map(row)))
        : el("p", { class: "empty", text: "No API keys yet. Create one below." }));
    } catch (error) { list.replaceChildren(errorBox(error)); }
  }

  function row(key) {
    const state = keyState(key);
    return el("tr", { "data-key": key.name },
      el("td", { text: key.name }), el("td", { text: key.role }),
      el("td", { class: "optional" }, when(key.created_at)),
      el("td", { class: "optional" }, when(key.last_used_at)),
      el("td", {}, badge(state), state === "active" && key.expires_at
        ? el("div", { class: "meta" }, "until ", when(key.expires_at)) : null),
      el("td", {}, state === "revoked" ? null : el("button", { type: "button", class: "danger",
        text: "Revoke", "aria-label": `Revoke ${key.name}`, onclick: async () => {
          if (!confirm(`Revoke the API key ${key.name}? Whatever uses it stops working.`)) return;
          problem.textContent = "";
          try {
            await api(`/v1/api-keys/${key.id}`, { method: "DELETE" });
            toast(`Revoked ${key.name}`);
            onChange();
          } catch (error) { problem.textContent = `Could not revoke ${key.name}: ${error.message}`; }
          await load();
          refocus(list, `Revoke ${key.name}`);
        } })));
  }

  function reveal(created) {
    const value = el("input", { type: "text", id: "new-key", readonly: true, value: created.key,
      class: "secret-value", spellcheck: "false" });
    const copy = async () => {
      try {
        await navigator.clipboard.writeText(created.key);
        toast("Copied the key");
      } catch {
        value.focus();
        value.select();
        toast("Selected the key: press Ctrl+C (⌘C) to copy it");
      }
    };
    shown.replaceChildren(el("div", { class: "secret", role: "group", "aria-labelledby": "new-key-label" },
      el("label", { for: "new-key", id: "new-key-label", text: `New API key ${created.name} (${created.role})` }),
      el("div", { class: "row center" }, el("div", { class: "grow" }, value),
        el("button", { type: "button", text: "Copy", onclick: copy }),
        el("button", { type: "button", class: "secondary", text: "Done",
          onclick: () => { shown.replaceChildren(); name.focus(); } })),
      el("p", { class: "meta", text: "Copy it now: it is stored only as a hash and won't be shown again." })));
    value.focus();
    value.select();
  }

  const name = el("input", { type: "text", id: "key-name", required: true, autocomplete: "off" });
  const role = roleSelect({ id: "key-role" }, "viewer");
  const days = el("input", { type: "number", id: "key-days", min: "1", max: "3650", step: "1",
    "aria-describedby": "key-days-hint" });
  const form = el("form", { "aria-labelledby": "key-create", onsubmit: async (event) => {
    event.preventDefault();
    problem.textContent = "";
    try {
      const created = await api("/v1/api-keys", json("POST", { name: name.value.trim(), role: role.value,
        expires_in_days: days.value ? Number(days.value) : null }));
      form.reset();
      role.value = "viewer";
      await load();
      reveal(created);
      onChange();
    } catch (error) { problem.textContent = `Could not create the key: ${error.message}`; }
  } },
    el("h3", { id: "key-create", text: "New API key" }),
    el("div", { class: "row" },
      el("div", { class: "grow" }, el("label", { for: "key-name", text: "Name" }), name),
      el("div", {}, el("label", { for: "key-role", text: "Role" }), role),
      el("div", {}, el("label", { for: "key-days", text: "Expires after (days)" }), days),
      el("button", { type: "submit", text: "Create key" })),
    el("p", { id: "key-days-hint", class: "meta", text: "Leave the days empty for a key that does not " +
      "expire. A key acts in this workspace with its role, at most yours." }));

  return { node: section("keys-title", "API keys", shown, list, problem, form), load };
}

// ---------- audit log ----------

function auditSection(names) {
  const list = listBox();
  const action = el("input", { type: "text", id: "audit-action", list: "audit-actions",
    autocomplete: "off", placeholder: "e.g. api_key.create" });
  const older = el("button", { type: "button", class: "secondary", text: "Older", hidden: true,
    onclick: () => load(true) });
  const end = el("p", { class: "meta", tabindex: "-1", text: "No older events.", hidden: true });
  let body = null;
  let lastId = null;
  let filter = "";
  let run = 0;  // a newer load wins over one still under way

  const who = (subject) => subject && names.has(subject)
    ? el("span", { title: subject, text: names.get(subject) }) : subject || "";
  const row = (e) => el("tr", { "data-action": e.action },
    el("td", {}, when(e.at)), el("td", {}, who(e.actor)), el("td", { text: e.action }),
    el("td", { class: "optional" }, who(e.target)), el("td", {}, badge(e.outcome)),
    el("td", { class: "optional", text: e.client || "" }));

  async function load(more = false) {
    if (more && older.getAttribute("aria-disabled")) return;
    const mine = ++run;
    const params = new URLSearchParams({ limit: String(AUDIT_PAGE) });
    if (filter) params.set("action", filter);
    if (more && lastId !== null) params.set("before_id", String(lastId));
    else list.replaceChildren(loading());
    older.setAttribute("aria-disabled", "true");  // not `disabled`: that would drop the focus
    try {
      const { events } = await api(`/v1/audit?${params}`);
      if (mine !== run) return;
      if (!more) {
        body = el("tbody");
        list.replaceChildren(events.length
          ? el("table", { "data-testid": "audit" },
            head("Time", "Actor", "Action", "~Target", "Outcome", "~Client"), body)
          : el("p", { class: "empty", text: filter ? `No events with the action ${filter}.` : "No events yet." }));
      }
      body.append(...events.map(row));
      if (events.length) lastId = events[events.length - 1].id;
      const focused = document.activeElement === older;
      older.hidden = events.length < AUDIT_PAGE;
      end.hidden = !more || !older.hidden;
      if (focused && older.hidden) end.focus();
    } catch (error) {
      if (mine !== run) return;
      if (more) toast(`Could not load older events: ${error.message}`);
      else list.replaceChildren(errorBox(error));
    } finally { older.removeAttribute("aria-disabled"); }
  }

  const form = el("form", { class: "row", role: "search", "aria-label": "Filter the audit log",
    onsubmit: (event) => { event.preventDefault(); filter = action.value.trim(); load(); } },
    el("div", { class: "grow" }, el("label", { for: "audit-action", text: "Action" }), action,
      el("datalist", { id: "audit-actions" }, ACTIONS.map((a) => el("option", { value: a })))),
    el("button", { type: "submit", text: "Filter" }));

  return { node: section("audit-title", "Audit log", form, list, el("div", { class: "row" }, older), end),
    load: () => load(false) };
}
