// The agent builder: a conversation on the left (words, or the options and checklist the page
// offers, sent as structured answers), and beside it the stage, the collected fields, the
// workflow drawn as SVG from its JSON (no script from elsewhere: the page works offline) and
// the system prompt code assembled.

import { badge, el, errorBox, readOnlyNote, toast } from "./dom.js";
import { api, canWrite, request } from "./session.js";

const BASE = "/v1/agent-builder/sessions";
const STAGES = ["initial", "agent_type", "goals", "tone", "tools", "workflow", "review", "completed"];
const AGENT_TYPES = ["question_answering", "customer_support", "research", "summarizer", "writer"];
const TONES = ["formal", "friendly", "concise", "technical", "neutral"];
const LABELS = {
  agent_type: "Agent type", goals: "Goals", tone: "Tone", tools: "Tools",
  human_review: "Human review",
};
const words = (value) => String(value).replaceAll("_", " ");

export function builderView(root) {
  const id = location.hash.split("/")[2];
  return id ? sessionView(root, decodeURIComponent(id)) : listView(root);
}

// ---------- the list ----------

function listView(root) {
  const list = el("div", { "aria-live": "polite" }, el("p", { class: "spinner", text: "Loading" }));
  const start = el("button", { type: "button", id: "builder-new", text: "Build a new agent",
    onclick: async () => {
      start.disabled = true;
      try {
        const created = await api(BASE, { method: "POST" });
        location.hash = `#/builder/${created.id}`;
      } catch (error) { toast(error.message); start.disabled = false; }
    } });
  root.append(el("h1", { text: "Agent builder" }),
    canWrite() ? el("p", {}, start) : readOnlyNote("read the builder sessions"),
    el("div", { class: "card" }, el("h2", { text: "Your builder sessions" }), list));
  api(`${BASE}?limit=100`).then(({ sessions }) => {
    if (!sessions.length) {
      list.replaceChildren(el("p", { class: "empty", text: "No builder sessions yet." }));
      return;
    }
    list.replaceChildren(el("table", {},
      el("thead", {}, el("tr", {}, el("th", { text: "Session" }), el("th", { text: "Stage" }),
        el("th", { text: "Status" }))),
      el("tbody", {}, sessions.map((s) => el("tr", {},
        el("td", {}, el("a", { href: `#/builder/${s.id}`,
          text: new Date(s.created_at).toLocaleString() })),
        el("td", { text: words(s.stage) }), el("td", {}, badge(s.status)))))));
  }).catch((error) => list.replaceChildren(errorBox(error)));
}

// ---------- one session ----------

function sessionView(root, id) {
  const thread = el("ol", { class: "builder-thread", id: "builder-thread", "aria-live": "polite" });
  const options = el("div", { class: "builder-options", id: "builder-options" });
  const input = el("textarea", { id: "builder-text", rows: "2", maxlength: "4000",
    placeholder: "Answer in your own words, or go back: change the tone to formal" });
  const send = el("button", { type: "submit", id: "builder-send", text: "Send" });
  const error = el("p", { class: "error", role: "alert", id: "builder-error" });
  const form = el("form", { class: "composer", onsubmit: (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (text) post({ text }).then((ok) => { if (ok) input.value = ""; });
  } }, el("label", { for: "builder-text", text: "Your message" }), input, error,
  el("div", { class: "row" }, send));
  const side = el("div", { class: "builder-side" });
  const chat = el("section", { class: "card builder-chat", "aria-label": "Conversation" },
    thread, options, canWrite() ? form : readOnlyNote("read this session"));
  root.append(el("p", {}, el("a", { href: "#/builder", text: "← All builder sessions" })),
    el("h1", { text: "Agent builder" }), el("div", { class: "builder-layout" }, chat, side));
  let stopped = false;
  let busy = false;

  async function post(body) {
    if (busy) return false;
    busy = true;
    send.disabled = true;
    error.textContent = "";
    const waiting = el("li", { class: "turn pending spinner", text: "Reading your answer" });
    thread.append(waiting);
    try {
      render(await api(`${BASE}/${id}/message`, { method: "POST",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) }));
      return true;
    } catch (failure) {
      waiting.remove();
      error.textContent = failure.message;
      return false;
    } finally { busy = false; send.disabled = false; }
  }

  function render(s) {
    if (stopped) return;
    thread.replaceChildren(...s.history.map((entry) => el("li", { class: `turn ${entry.role}` },
      el("span", { class: "who", text: entry.role === "user" ? "You" : "Builder" }),
      el("p", { text: entry.text }))));
    thread.lastElementChild?.scrollIntoView({ block: "nearest" });
    renderOptions(s);
    form.hidden = s.status !== "active";
    renderSide(s);
  }

  function choice(label, body, id_) {
    return el("button", { type: "button", class: "option", id: id_, text: label,
      onclick: () => post({ answer: body }) });
  }

  function renderOptions(s) {
    options.replaceChildren();
    if (s.status !== "active" || !canWrite()) return;
    const stage = s.stage;
    if (stage === "initial" || stage === "agent_type") {
      options.append(el("p", { class: "muted", text: "Or choose the kind of agent:" }),
        ...AGENT_TYPES.map((t) => choice(words(t), { agent_type: t }, `type-${t}`)));
    } else if (stage === "tone") {
      options.append(el("p", { class: "muted", text: "Or choose a tone:" }),
        ...TONES.map((t) => choice(t, { tone: t }, `tone-${t}`)));
    } else if (stage === "tools") {
      const boxes = s.available_tools.map((tool) => el("label", { class: "inline tool" },
        el("input", { type: "checkbox", value: tool.name, checked: s.suggested_tools.includes(tool.name) }),
        el("span", {}, el("strong", { text: tool.name }),
          s.suggested_tools.includes(tool.name) ? el("span", { class: "badge", text: "suggested" }) : null,
          el("span", { class: "muted", text: ` ${tool.description}` }))));
      options.append(el("fieldset", { id: "builder-tools" },
        el("legend", { text: "Tools this agent may call (suggested from your goals)" }), ...boxes),
      el("button", { type: "button", id: "tools-confirm", text: "Confirm these tools",
        onclick: () => post({ answer: { tools: [...options.querySelectorAll("input:checked")]
          .map((box) => box.value) } }) }));
    } else if (stage === "workflow") {
      options.append(el("p", { class: "muted", text: "Should a person review each output?" }),
        choice("Yes, review each output", { human_review: true }, "review-yes"),
        choice("No, send directly", { human_review: false }, "review-no"));
    } else if (stage === "review") {
      options.append(choice("Confirm and finish", { confirm: true }, "builder-confirm"));
    }
  }

  function renderSide(s) {
    const stageList = el("ol", { class: "stages", id: "builder-stages" }, STAGES.map((name) =>
      el("li", { class: name === s.stage ? "current" : "", "aria-current": name === s.stage ? "step" : null,
        text: words(name) })));
    const fields = el("dl", { class: "fields", id: "builder-fields" },
      Object.entries(LABELS).flatMap(([key, label]) => {
        const value = s.fields[key];
        const shown = value === "unknown" ? "not given yet"
          : Array.isArray(value) ? (value.length ? value.join("; ") : "none") : words(value);
        return [el("dt", { text: label }), el("dd", { class: value === "unknown" ? "empty" : "",
          "data-field": key, text: shown })];
      }));
    const actions = el("div", { class: "row center" });
    if (s.status === "abandoned" && canWrite()) {
      actions.append(el("button", { type: "button", id: "builder-resume", text: "Resume",
        onclick: async () => {
          try { render(await api(`${BASE}/${id}/resume`, { method: "POST" })); }
          catch (failure) { toast(failure.message); }
        } }));
    }
    if (canWrite()) {
      actions.append(el("button", { type: "button", class: "secondary", text: "Delete",
        onclick: async () => {
          if (!confirm("Delete this builder session?")) return;
          try { await api(`${BASE}/${id}`, { method: "DELETE" }); location.hash = "#/builder"; }
          catch (failure) { toast(failure.message); }
        } }));
    }
    const diagram = el("section", { class: "card", "aria-labelledby": "wf-title" },
      el("h2", { id: "wf-title", text: "Workflow" }),
      s.outputs.workflow ? drawWorkflow(s.outputs.workflow)
        : el("p", { class: "empty", text: "Drawn once the kind of agent is known." }));
    if (s.outputs.workflow) {
      const text = el("pre", { class: "scroll", id: "builder-mermaid" });
      diagram.append(el("details", { ontoggle: async (event) => {
        if (!event.target.open || text.textContent) return;
        const response = await request(`${BASE}/${id}/workflow.mmd`);
        text.textContent = response.ok ? await response.text() : "Not available.";
      } }, el("summary", { text: "Mermaid source" }), text));
    }
    side.replaceChildren(
      el("section", { class: "card" }, el("h2", { text: "Progress" }),
        el("p", {}, "Status: ", badge(s.status)), stageList, actions,
        s.status === "completed" && canWrite() ? registerForm() : null),
      el("section", { class: "card" }, el("h2", { text: "Collected" }), fields,
        s.missing.length ? el("p", { class: "muted", id: "builder-missing",
          text: `Missing: ${s.missing.map((m) => LABELS[m].toLowerCase()).join(", ")}` }) : null),
      diagram,
      el("section", { class: "card" }, el("h2", { text: "System prompt" }),
        el("pre", { class: "prompt", id: "builder-prompt", text: s.outputs.final_prompt || "" })));
  }

  function registerForm() {
    const name = el("input", { type: "text", id: "agent-name", required: true, maxlength: "64",
      pattern: "[a-z][a-z0-9_\\-]{0,63}", placeholder: "handbook-helper" });
    const failed = el("p", { class: "error", role: "alert" });
    return el("form", { id: "builder-register", onsubmit: async (event) => {
      event.preventDefault();
      failed.textContent = "";
      try {
        await api("/v1/agents", { method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ name: name.value.trim(), builder_session_id: id }) });
        location.hash = "#/agents";
      } catch (failure) { failed.textContent = failure.message; }
    } }, el("label", { for: "agent-name", text: "Register it as an agent named" }), name, failed,
    el("div", { class: "row" }, el("button", { type: "submit", text: "Register agent" })));
  }

  api(`${BASE}/${id}/status`).then(render).catch((failure) => {
    if (!stopped) root.append(errorBox(failure));
  });
  return () => { stopped = true; };
}

// ---------- the workflow as SVG ----------

const SVG = "http://www.w3.org/2000/svg";
const W = 170;
const H = 40;
const GAP_X = 24;
const GAP_Y = 46;

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Nodes in layers by their longest distance from start; edges as arrows between them. */
export function drawWorkflow(workflow) {
  const depth = new Map([["start", 0]]);
  const edges = workflow.edges || [];
  for (let pass = 0; pass < workflow.nodes.length; pass += 1) {
    for (const edge of edges) {
      if (depth.has(edge.from)) {
        depth.set(edge.to, Math.max(depth.get(edge.to) ?? 0, depth.get(edge.from) + 1));
      }
    }
  }
  const layers = [];
  for (const node of workflow.nodes) {
    const d = depth.get(node.id) ?? 0;
    (layers[d] ||= []).push(node);
  }
  const widest = Math.max(...layers.map((layer) => (layer || []).length));
  const width = widest * (W + GAP_X) + GAP_X;
  const height = layers.length * (H + GAP_Y) + GAP_Y / 2;
  const place = new Map();
  layers.forEach((layer, d) => (layer || []).forEach((node, i) => {
    const offset = (width - layer.length * (W + GAP_X) + GAP_X) / 2;
    place.set(node.id, { x: offset + i * (W + GAP_X), y: GAP_Y / 2 + d * (H + GAP_Y) });
  }));
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "workflow", id: "builder-diagram",
    role: "img", "aria-label": `Workflow of ${workflow.nodes.length} steps` });
  const defs = svg("defs");
  const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "9", refY: "5",
    markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" });
  marker.append(svg("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrow-head" }));
  defs.append(marker);
  root.append(defs);
  for (const edge of edges) {
    const a = place.get(edge.from);
    const b = place.get(edge.to);
    if (!a || !b) continue;
    const x1 = a.x + W / 2;
    const y1 = a.y + H;
    const x2 = b.x + W / 2;
    const y2 = b.y;
    root.append(svg("line", { x1, y1, x2, y2, class: "edge", "marker-end": "url(#arrow)" }));
    if (edge.when) {
      root.append(svg("text", { x: (x1 + x2) / 2 + 4, y: (y1 + y2) / 2, class: "edge-label" }, edge.when));
    }
  }
  for (const node of workflow.nodes) {
    const { x, y } = place.get(node.id);
    const group = svg("g", { class: `wf-node t-${node.type}`, "data-node": node.id });
    const round = node.type === "start" || node.type === "end" ? H / 2 : 6;
    group.append(svg("rect", { x, y, width: W, height: H, rx: round, ry: round }));
    group.append(svg("title", {}, JSON.stringify(node, null, 1)));
    const detail = node.tool || node.check || "";
    group.append(svg("text", { x: x + W / 2, y: y + (detail ? 16 : 24), class: "node-id" },
      `${node.id} · ${words(node.type)}`));
    if (detail) group.append(svg("text", { x: x + W / 2, y: y + 31, class: "node-detail" }, words(detail)));
    root.append(group);
  }
  return el("div", { class: "scroll" }, root);
}
