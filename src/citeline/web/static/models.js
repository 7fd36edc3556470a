// Models: a card naming the model that answers, where it runs, whether it is loaded and how
// fast; behind "Advanced", the aliases (with what each is for), their routes and last day's
// traffic, the models behind them, and for admins a form that points an alias at versions.

import { el, errorBox, toast } from "./dom.js";
import { api, canManageModels, isInstanceAdmin } from "./session.js";

const path = (name) => `/v1/models/${encodeURIComponent(name)}`;

const PURPOSE = {
  default: "Used by anything that names no model (API clients, the OpenAI-compatible endpoint).",
  answer: "Writes the answers on the Ask page.",
  report: "Plans and writes reports.",
  assistant: "Talks in the assistant's conversations.",
};

export function modelsView(root) {
  const summary = el("div", { "aria-live": "polite" }, el("p", { class: "spinner", text: "Loading" }));
  const list = el("div");
  const form = canManageModels() ? routesForm(load) : null;
  root.append(el("h1", { text: "Models" }), summary,
    el("details", { class: "card advanced", "data-testid": "advanced" },
      el("summary", { text: "Advanced: aliases, versions and routes" }),
      el("p", { class: "muted", text: "Each part of Citeline asks for a model by an alias; an alias routes to one " +
        "model version, or splits its requests between versions by weight (an A/B test)." }),
      list,
      form ? form.node : el("p", { class: "note", text: "Only workspace admins and instance administrators can change how aliases route." })));

  async function load() {
    try {
      const { data } = await api("/v1/models");
      const aliases = data.filter((m) => m.kind === "alias");
      const models = data.filter((m) => m.kind === "model");
      const [stats, versions] = await Promise.all([
        Promise.all(aliases.map((a) => api(`${path(a.id)}/stats`).catch(() => null))),
        form ? Promise.all(models.map((m) => api(`${path(m.id)}/versions`).catch(() => ({ versions: [] }))))
          : [],
      ]);
      summary.replaceChildren(runningCard(aliases, models, stats));
      list.replaceChildren(...aliasTable(aliases, stats), ...modelTable(models));
      if (form) form.update(aliases, models.map((m, i) => [m.id, versions[i].versions.map((v) => v.ref)]));
    } catch (error) { summary.replaceChildren(errorBox(error)); }
  }
  load();
}

/** Which model answers questions, where it runs, whether it is loaded, and how fast. */
function runningCard(aliases, models, stats) {
  const index = aliases.findIndex((a) => a.id === "answer");
  const alias = aliases[index] || aliases.find((a) => a.id === "default");
  if (!alias || !alias.routes.length) {
    return el("section", { class: "card" }, el("p", { class: "empty", text: "No model answers questions yet." }));
  }
  const version = alias.routes[0].model;
  const model = models.find((m) => version === m.id || version.startsWith(`${m.id}@`));
  const local = model && model.provider === "local";
  const variants = (index >= 0 && stats[index] && stats[index].variants) || [];
  const used = variants.reduce((sum, v) => sum + v.requests, 0);
  const speed = variants.find((v) => v.output_tokens_per_second);
  const p50 = variants.find((v) => v.latency_ms_p50 !== null);
  const facts = [
    el("li", { text: local ? "Runs on this machine: your documents and questions stay here."
      : `Runs at a remote service (${model ? model.provider : "unknown provider"}): questions and passages are sent there.` }),
    el("li", { "data-testid": "model-state", text: local ? loadedText(alias.routes[0])
      : used ? `In use: it answered ${used} ${used === 1 ? "request" : "requests"} in the last 24 hours.`
        : "Not used in the last 24 hours." }),
  ];
  if (speed || p50) {
    facts.push(el("li", { text: [
      speed ? `Writes about ${Math.round(speed.output_tokens_per_second)} tokens (word pieces) a second${local ? " on this machine" : ""}` : null,
      p50 ? `a typical request takes ${(p50.latency_ms_p50 / 1000).toFixed(1)} s` : null].filter(Boolean).join("; ") + "." }));
  }
  if (alias.routes.length > 1) {
    facts.push(el("li", { text: `Shared with ${alias.routes.length - 1} other ${alias.routes.length === 2 ? "version" : "versions"} in an A/B test (see Advanced).` }));
  }
  return el("section", { class: "card", "aria-labelledby": "model-title", "data-testid": "running-model" },
    el("p", { class: "meta", text: "The model that answers your questions" }),
    el("h2", { id: "model-title", text: version }),
    el("ul", { class: "facts" }, facts));
}

/** Whether a live worker keeps a local model loaded now (workers report it every few seconds). */
function loadedText(route) {
  const on = route.loaded_on || 0;
  if (on > 0) return `Loaded on ${on} ${on === 1 ? "worker" : "workers"}: questions start at once.`;
  const took = route.load_seconds;
  return "Not loaded: the first question loads it" +
    (took == null ? ", which takes a few seconds." : ` (about ${Math.max(1, Math.round(took))} s).`);
}

const head = (...names) => el("thead", {}, el("tr", {}, names.map((n) => el("th", { text: n }))));

function aliasTable(aliases, stats) {
  const usage = (stat) => {
    if (!stat || !stat.variants.length) return el("span", { class: "empty", text: "no traffic" });
    return stat.variants.map((v) => el("div", { class: "meta", text:
      `${v.version}: ${v.requests} requests, ${(v.error_rate * 100).toFixed(0)}% errors` +
      (v.latency_ms_p50 === null ? "" : `, p50 ${Math.round(v.latency_ms_p50)} ms`) }));
  };
  const rows = aliases.map((alias, i) => {
    const routes = alias.routes.map((r) => `${r.model} (weight ${r.weight})`).join(", ");
    const fallback = alias.fallback ? `; fallback ${alias.fallback}` : "";
    return el("tr", {}, el("td", {}, el("strong", { text: alias.id }),
      PURPOSE[alias.id] ? el("div", { class: "meta", text: PURPOSE[alias.id] }) : null),
      el("td", { text: alias.workspace ? "this workspace" : "shared" }),
      el("td", { text: routes + fallback }), el("td", {}, usage(stats[i])));
  });
  return [el("h2", { text: "Aliases" }), rows.length
    ? el("table", {}, head("Alias", "Scope", "Routes", "Last 24 h"), el("tbody", {}, rows))
    : el("p", { class: "empty", text: "No aliases." })];
}

function modelTable(models) {
  const rows = models.map((m) => el("tr", {},
    el("td", { text: m.id }), el("td", { text: m.latest }), el("td", { text: m.provider })));
  return [el("h2", { text: "Models" }), rows.length
    ? el("table", {}, head("Model", "Latest version", "Provider"), el("tbody", {}, rows))
    : el("p", { class: "empty", text: "No models." })];
}

/** The admin's form for PUT /v1/models/{alias}/routes: version + weight rows and a fallback. */
function routesForm(onSaved) {
  let aliases = [];
  let choices = [];  // [value, label] for every version, and each model's newest
  const alias = el("input", { type: "text", id: "route-alias", list: "route-aliases", required: true,
    autocomplete: "off" });
  const known = el("datalist", { id: "route-aliases" });
  const rows = el("div", { class: "routes" });
  const fallback = el("select", { id: "route-fallback" });
  const save = el("button", { type: "submit", text: "Save routes" });
  const shared = el("input", { type: "checkbox", id: "route-shared" });
  const sharedLabel = el("label", { for: "route-shared", class: "inline" }, shared,
    " Shared by every workspace (otherwise this workspace's own)");
  sharedLabel.hidden = !isInstanceAdmin();

  const options = (select, value) => {
    const list = choices.some(([v]) => v === value) || !value ? choices : [[value, value], ...choices];
    select.replaceChildren(...list.map(([v, label]) => el("option", { value: v, text: label })));
    if (value) select.value = value;
  };
  const number = () => {
    [...rows.children].forEach((row, i) => {
      row.querySelector("select").setAttribute("aria-label", `Model version, route ${i + 1}`);
      row.querySelector("input").setAttribute("aria-label", `Weight, route ${i + 1}`);
      const remove = row.querySelector("button");
      remove.setAttribute("aria-label", `Remove route ${i + 1}`);
      remove.disabled = rows.children.length === 1;
    });
  };
  const addRow = (model = "", weight = 1) => {
    const select = el("select", { required: true });
    options(select, model);
    const row = el("div", { class: "row route" },
      el("div", { class: "grow" }, select),
      el("input", { type: "number", min: "0", step: "any", required: true, value: String(weight),
        class: "weight" }),
      el("button", { type: "button", class: "secondary", text: "Remove",
        onclick: () => { row.remove(); number(); rows.querySelector("select").focus(); } }));
    rows.append(row);
    number();
    return select;
  };
  const fill = () => {
    const current = aliases.find((a) => a.id === alias.value.trim());
    rows.replaceChildren();
    for (const route of current ? current.routes : [{ model: "", weight: 1 }]) addRow(route.model, route.weight);
    fallback.replaceChildren(el("option", { value: "", text: "None" }),
      ...choices.map(([v, label]) => el("option", { value: v, text: label })));
    const value = current && current.fallback;
    if (value && !choices.some(([v]) => v === value)) fallback.append(el("option", { value, text: value }));
    fallback.value = value || "";
  };
  alias.addEventListener("change", fill);

  const node = el("form", { class: "card", "aria-labelledby": "route-title", hidden: true, onsubmit: async (event) => {
    event.preventDefault();
    const name = alias.value.trim();
    const routes = [...rows.children].map((row) => ({
      model: row.querySelector("select").value, weight: Number(row.querySelector("input").value) }));
    save.disabled = true;
    try {
      await api(`${path(name)}/routes`, { method: "PUT", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ routes, fallback: fallback.value || null, shared: shared.checked }) });
      toast(`Saved the routes of ${name}`);
      await onSaved();
    } catch (error) { toast(error.message); }
    finally { save.disabled = false; }
  } },
    el("h2", { id: "route-title", text: "Route an alias" }),
    el("p", { class: "muted", text: "Send an alias's requests to one version, or split them by weight. " +
      "The fallback answers when the routed version fails." }),
    el("label", { for: "route-alias", text: "Alias" }), alias, known,
    el("fieldset", {}, el("legend", { text: "Routes" }), rows,
      el("button", { type: "button", class: "secondary", text: "Add route",
        onclick: () => addRow().focus() })),
    el("label", { for: "route-fallback", text: "Fallback" }), fallback, sharedLabel,
    el("div", { class: "row" }, save));

  function update(newAliases, versions) {
    aliases = newAliases;
    choices = versions.flatMap(([name, refs]) =>
      [[name, `${name} (newest)`], ...refs.map((ref) => [ref, ref])]);
    known.replaceChildren(...aliases.map((a) => el("option", { value: a.id })));
    if (!alias.value && aliases.length) alias.value = aliases[0].id;
    fill();
    node.hidden = false;  // only once there are versions to choose from
  }
  return { node, update };
}
