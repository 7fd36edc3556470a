// MCP servers: the workspace's servers, each with its tools and the policy every role has for
// them (allow, ask before each call, or deny); admins add and remove HTTP servers and change
// a tool's policy for a role. Stdio servers are registered by instance administrators with
// `citeline mcp add --command` (the page shows them). Secrets are sent, never shown.

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
  const form = el("form", { class: "card", "aria-labelledby": "mcp-add", onsubmit: async (event) => {
    event.preventDefault();
    problem.textContent = "";
    const headers = token.value ? { Authorization: `Bearer ${token.value}` } : {};
    try {
      await api(base, json("POST", { name: name.value.trim(), transport: "http", url: url.value.trim(), headers }));
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
    problem);
  return form;
}
