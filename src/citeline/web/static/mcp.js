// MCP servers: the workspace's servers, each with its tools and the policy every role has for
// them (allow, ask before each call, or deny); admins add and remove HTTP servers and change
// a tool's policy for a role. Stdio servers are registered by instance administrators with
// `citeline mcp add --command` (the page shows them). Secrets are sent, never shown. A server
// may ask each user for their own credentials (per-user keys): every member sets or clears
// theirs on its card, which shows only which keys are set.

import { el, errorBox, toast } from "./dom.js";
import { api, canAdmin } from "./session.js";

const ROLES = ["viewer", "member", "admin", "owner"];
const POLICIES = ["allow", "ask", "deny"];
const base = "/v1/mcp-servers";
const json = (method, body) => ({ method, headers: { "Content-Type": "application/json" },
  body: JSON.stringify(body) });

export function mcpView(root) {
  const admin = canAdmin();
  const list = el("div", { "aria-live": "polite" }, el("p", { class: "spinner", text: "Loading" }));
  root.append(el("h1", { text: "MCP servers" }),
    el("p", { class: "muted", text: "Tools from these servers are offered to the assistant. A tool that " +
      "only reads is allowed; one that changes things asks a person before each call." }),
    list, admin ? addForm(load) : el("p", { class: "note", text: "Only workspace admins add or remove servers." }));

  async function load() {
    try {
      const { servers } = await api(base);
      list.replaceChildren(...(servers.length ? servers.map((s) => serverCard(s, admin, load))
        : [el("p", { class: "empty", text: "No MCP servers yet." })]));
    } catch (error) { list.replaceChildren(errorBox(error)); }
  }
  load();
}

function serverCard(server, admin, onChange) {
  const id = `mcp-${server.id}`;
  const tools = el("div", {}, el("p", { class: "spinner", text: "Asking the server for its tools" }));
  const target = server.url || [server.command, ...server.args].join(" ");
  const secrets = [...server.header_names, ...server.env_names];
  const remove = admin ? el("button", { type: "button", class: "danger", text: "Remove", onclick: async () => {
    if (!confirm(`Remove the MCP server ${server.name}? Its tools leave every conversation.`)) return;
    try {
      await api(`${base}/${server.id}`, { method: "DELETE" });
      toast(`Removed ${server.name}`);
      onChange();
    } catch (error) { toast(`Could not remove ${server.name}: ${error.message}`); }
  } }) : null;
  const card = el("section", { class: "card", "aria-labelledby": id, "data-server": server.name },
    el("div", { class: "row center" }, el("h2", { id, class: "grow", text: server.name }), remove),
    el("p", { class: "meta", text: `${server.transport}: ${target}` }),
    secrets.length ? el("p", { class: "meta", text: `Secrets stored (not shown): ${secrets.join(", ")}` }) : null,
    perUser(server).length ? credentialsForm(server, () => loadTools(server, tools, admin)) : null,
    tools);
  loadTools(server, tools, admin);
  return card;
}

async function loadTools(server, box, admin) {
  try {
    const [{ tools }, { policies }] = await Promise.all([
      api(`${base}/${server.id}/tools`), api(`${base}/${server.id}/policies`)]);
    const overrides = new Map(policies.map((p) => [`${p.tool}/${p.role}`, p.policy]));
    if (!tools.length) { box.replaceChildren(el("p", { class: "empty", text: "This server offers no tools." })); return; }
    box.replaceChildren(el("div", { class: "scroll" }, el("table", { "data-testid": "mcp-tools" },
      el("thead", {}, el("tr", {}, el("th", { text: "Tool" }), ...ROLES.map((r) => el("th", { text: r })))),
      el("tbody", {}, tools.map((tool) => el("tr", { "data-tool": tool.tool },
        el("td", {}, el("code", { text: tool.tool }),
          el("div", { class: "meta", text: hints(tool) }),
          el("div", { class: "meta", text: tool.description })),
        ...ROLES.map((role) => el("td", {}, admin
          ? policySelect(server, tool, role, overrides, box)
          : el("span", { text: tool.policies[role] })))))))));
  } catch (error) { box.replaceChildren(errorBox(error)); }
}

const perUser = (server) => [...(server.user_header_names || []), ...(server.user_env_names || [])];

// The caller's own values for the server's per-user keys: which are set, a field for each,
// Save (all of them, replacing what was set) and Clear; `onChange` reloads the tools.
function credentialsForm(server, onChange) {
  const id = `mcp-creds-${server.id}`;
  const path = `${base}/${server.id}/credentials`;
  const state = el("p", { class: "meta", "data-testid": "mcp-credentials-state", text: "Checking your credentials" });
  const problem = el("p", { class: "error", role: "alert" });
  const keys = perUser(server);
  const inputs = keys.map((key) => el("input", { type: "password", id: `${id}-${key}`, required: true,
    autocomplete: "off", "aria-label": `Your ${key}`,
    placeholder: key.toLowerCase() === "authorization" ? "Bearer …" : "" }));
  const show = (found) => {
    const have = [...found.header_names, ...found.env_names];
    const missing = [...found.missing_headers, ...found.missing_env];
    state.textContent = `Your credentials: ${have.length ? `set for ${have.join(", ")}` : "none set"}` +
      (missing.length ? `; missing ${missing.join(", ")}: its tools fail for you until you set them` : "");
  };
  const refresh = async () => {
    try { show(await api(path)); } catch (error) { state.textContent = `Could not read your credentials: ${error.message}`; }
  };
  const clear = el("button", { type: "button", class: "secondary", text: "Clear mine", onclick: async () => {
    problem.textContent = "";
    try {
      await api(path, { method: "DELETE" });
      toast(`Cleared your credentials for ${server.name}`);
      refresh();
      onChange();
    } catch (error) { problem.textContent = `Could not clear them: ${error.message}`; }
  } });
  const form = el("form", { "aria-labelledby": id, onsubmit: async (event) => {
    event.preventDefault();
    problem.textContent = "";
    const values = Object.fromEntries(keys.map((key, i) => [key, inputs[i].value]));
    const body = {
      headers: Object.fromEntries((server.user_header_names || []).map((k) => [k, values[k]])),
      env: Object.fromEntries((server.user_env_names || []).map((k) => [k, values[k]])),
    };
    try {
      show(await api(path, json("PUT", body)));
      form.reset();
      toast(`Saved your credentials for ${server.name}`);
      onChange();
    } catch (error) { problem.textContent = `Could not save them: ${error.message}`; }
  } },
    el("h3", { id, text: "Your own credentials" }),
    state,
    el("div", { class: "row" },
      ...keys.map((key, i) => el("div", { class: "grow" }, el("label", { for: `${id}-${key}`, text: key }), inputs[i])),
      el("button", { type: "submit", text: "Save mine" }), clear),
    problem);
  refresh();
  return form;
}

function hints(tool) {
  if (tool.read_only) return "reads only";
  if (tool.destructive) return "may change or delete things";
  if (tool.open_world) return "reaches outside services";
  return "not annotated";
}

function policySelect(server, tool, role, overrides, box) {
  const select = el("select", { "aria-label": `${tool.tool} for ${role}` },
    POLICIES.map((p) => el("option", { value: p, text: p })));
  select.value = tool.policies[role];
  select.addEventListener("change", async () => {
    overrides.set(`${tool.tool}/${role}`, select.value);
    const policies = [...overrides].map(([key, policy]) => {
      const cut = key.lastIndexOf("/");
      return { tool: key.slice(0, cut), role: key.slice(cut + 1), policy };
    });
    try {
      await api(`${base}/${server.id}/policies`, json("PUT", { policies }));
      toast(`${tool.tool}: ${select.value} for ${role}`);
    } catch (error) {
      toast(`Could not change the policy: ${error.message}`);
      loadTools(server, box, true);
    }
  });
  return select;
}

function addForm(onChange) {
  const problem = el("p", { class: "error", role: "alert" });
  const name = el("input", { type: "text", id: "mcp-name", required: true, pattern: "[A-Za-z0-9][A-Za-z0-9_\\-]{0,39}",
    autocomplete: "off" });
  const url = el("input", { type: "url", id: "mcp-url", required: true, placeholder: "https://example.com/mcp" });
  const token = el("input", { type: "password", id: "mcp-token", autocomplete: "off" });
  const own = el("input", { type: "checkbox", id: "mcp-own",
    onchange: () => { token.disabled = own.checked; if (own.checked) token.value = ""; } });
  const form = el("form", { class: "card", "aria-labelledby": "mcp-add", onsubmit: async (event) => {
    event.preventDefault();
    problem.textContent = "";
    const headers = token.value && !own.checked ? { Authorization: `Bearer ${token.value}` } : {};
    const user_headers = own.checked ? ["Authorization"] : [];
    try {
      await api(base, json("POST", { name: name.value.trim(), transport: "http", url: url.value.trim(), headers,
        user_headers }));
      toast(`Added ${name.value.trim()}`);
      form.reset();
      onChange();
    } catch (error) { problem.textContent = `Could not add the server: ${error.message}`; }
  } },
    el("h2", { id: "mcp-add", text: "Add an HTTP server" }),
    el("div", { class: "row" },
      el("div", {}, el("label", { for: "mcp-name", text: "Name" }), name),
      el("div", { class: "grow" }, el("label", { for: "mcp-url", text: "URL (streamable HTTP)" }), url)),
    el("div", { class: "row" },
      el("div", { class: "grow" }, el("label", { for: "mcp-token", text: "Bearer token (optional, stored encrypted)" }), token),
      el("button", { type: "submit", text: "Add" })),
    el("div", { class: "row center" }, own,
      el("label", { for: "mcp-own", text: "Each user sets their own Authorization header instead" })),
    problem);
  return form;
}
