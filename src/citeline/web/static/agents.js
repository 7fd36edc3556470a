// Agents: the registry with each agent's status, running a task at a priority, watching its
// steps live, approving or rejecting a human-review step, and reading the cited output.
// (The agent builder's conversation has a panel of its own.)

import { badge, el, errorBox, readOnlyNote, toast } from "./dom.js";
import { followJob } from "./events.js";
import { api, canWrite } from "./session.js";

const ACTIVE = new Set(["queued", "running"]);

export function agentsView(root) {
  const parts = location.hash.split("/");
  return parts[2] === "tasks" && parts[3]
    ? taskView(root, decodeURIComponent(parts[3]))
    : registryView(root);
}

// ---------- the registry, the run form, recent tasks ----------

function registryView(root) {
  const writable = canWrite();
  const agents = el("div", { "aria-live": "polite" }, el("p", { class: "spinner", text: "Loading" }));
  const tasks = el("div", { "aria-live": "polite" });
  const form = writable ? el("div") : readOnlyNote("see the agents and their tasks");
  root.append(el("h1", { text: "Agents" }),
    el("section", { class: "card", "aria-labelledby": "agents-title" },
      el("h2", { id: "agents-title", text: "Registry" }), agents),
    form,
    el("section", { class: "card", "aria-labelledby": "tasks-title" },
      el("h2", { id: "tasks-title", text: "Recent tasks" }), tasks));
  let timer = null;
  let stopped = false;
  let formBuilt = false;

  async function refresh() {
    try {
      const [{ agents: listed }, { tasks: recent }] = await Promise.all([
        api("/v1/agents"), api("/v1/agents/tasks?limit=20")]);
      if (stopped) return;
      renderAgents(agents, listed);
      renderTasks(tasks, recent);
      if (writable && !formBuilt && listed.length) {
        formBuilt = true;
        form.replaceWith(runForm(listed));
      }
      clearTimeout(timer);
      const busy = listed.some((a) => a.status === "busy" || a.queued) ||
        recent.some((t) => ACTIVE.has(t.status));
      timer = setTimeout(refresh, busy ? 2000 : 10000);
    } catch (error) { if (!stopped) agents.replaceChildren(errorBox(error)); }
  }
  refresh();
  return () => { stopped = true; clearTimeout(timer); };
}

function renderAgents(root, agents) {
  if (!agents.length) {
    root.replaceChildren(el("p", { class: "empty" },
      "No agents yet. Register one with POST /v1/agents, `citeline agents`, or the agent builder."));
    return;
  }
  root.replaceChildren(el("table", { "data-testid": "agents" },
    el("thead", {}, el("tr", {}, ...["Agent", "Status", "Model", "Running", "Queued", "Review",
      "Tools"].map((text) => el("th", { text })))),
    el("tbody", {}, agents.map((agent) => el("tr", { "data-agent": agent.name },
      el("td", {}, el("strong", { text: agent.label }),
        agent.description ? el("div", { class: "meta", text: agent.description }) : null),
      el("td", { title: agent.status_reason || "" }, badge(agent.status)),
      el("td", { text: agent.model }),
      el("td", { text: String(agent.running) }),
      el("td", { text: String(agent.queued) }),
      el("td", { text: String(agent.waiting_review) }),
      el("td", { text: agent.tools.join(", ") || "-" }))))));
}

function renderTasks(root, tasks) {
  if (!tasks.length) {
    root.replaceChildren(el("p", { class: "empty", text: "No tasks yet." }));
    return;
  }
  root.replaceChildren(el("table", {},
    el("thead", {}, el("tr", {}, ...["Task", "Agent", "Priority", "Status", "Created"]
      .map((text) => el("th", { text })))),
    el("tbody", {}, tasks.map((task) => el("tr", {},
      el("td", {}, el("a", { href: `#/agents/tasks/${task.id}`, text: task.input.slice(0, 80) })),
      el("td", { text: task.agent }),
      el("td", { text: task.priority }),
      el("td", {}, badge(task.status)),
      el("td", { class: "optional", text: new Date(task.created_at).toLocaleString() }))))));
}

function runForm(agents) {
  const choice = el("select", { id: "agent-choice" },
    agents.map((agent) => el("option", { value: agent.label, text: `${agent.label} (${agent.status})` })));
  const input = el("textarea", { id: "agent-input", rows: "3", maxlength: "20000", required: true,
    placeholder: "What should the agent do?" });
  const priority = el("select", { id: "agent-priority" },
    ["normal", "high", "low"].map((level) => el("option", { value: level, text: level })));
  const submit = el("button", { type: "submit", text: "Run the task" });
  const error = el("p", { class: "error", role: "alert" });
  return el("form", { class: "card", "aria-labelledby": "run-title", onsubmit: async (event) => {
    event.preventDefault();
    error.textContent = "";
    submit.disabled = true;
    try {
      const task = await api(`/v1/agents/${encodeURIComponent(choice.value)}/tasks`, {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ input: input.value.trim(), priority: priority.value }) });
      location.hash = `#/agents/tasks/${task.id}`;
    } catch (failure) {
      error.textContent = failure.message;
      submit.disabled = false;
    }
  } },
  el("h2", { id: "run-title", text: "Run a task" }),
  el("div", { class: "row" },
    el("div", {}, el("label", { for: "agent-choice", text: "Agent" }), choice),
    el("div", {}, el("label", { for: "agent-priority", text: "Priority" }), priority)),
  el("label", { for: "agent-input", text: "Input" }), input, error, el("div", { class: "row" }, submit));
}

// ---------- one task ----------

function taskView(root, id) {
  const heading = el("h1", { text: "Agent task" });
  const status = el("div", { class: "row center", "aria-live": "polite" });
  const review = el("div");
  const steps = el("section", { class: "card", "aria-labelledby": "steps-title" });
  const output = el("section", { class: "card", "aria-labelledby": "output-title" });
  root.append(el("p", {}, el("a", { href: "#/agents", text: "← All agents" })), heading, status,
    review, steps, output);
  const writable = canWrite();
  let following = null;
  let stopFollowing = () => {};
  let pending = null;
  let stopped = false;

  const refreshSoon = () => {
    if (pending) return;
    pending = setTimeout(() => { pending = null; load(); }, 200);
  };

  async function load() {
    let task;
    try {
      task = await api(`/v1/agents/tasks/${id}`);
    } catch (error) {
      if (!stopped) steps.replaceChildren(errorBox(error));
      return;
    }
    if (stopped) return;
    heading.textContent = `${task.agent}: ${task.input.slice(0, 80)}`;
    status.replaceChildren(badge(task.status), el("span", { class: "meta",
      text: `priority ${task.priority}` + (task.attempt > 1 ? `, attempt ${task.attempt}` : "") }),
    ...(writable && ACTIVE.has(task.status) ? [el("button", { type: "button", class: "danger",
      text: "Cancel", onclick: () => act(`/v1/agents/tasks/${id}/cancel`, {}, "Cancelled") })] : []),
    ...(writable && ["failed", "stopped", "rejected"].includes(task.status) ? [el("button", {
      type: "button", text: "Retry", onclick: async () => {
        try {
          const again = await api(`/v1/agents/tasks/${id}/retry`, { method: "POST" });
          location.hash = `#/agents/tasks/${again.id}`;
        } catch (error) { toast(error.message); }
      } })] : []));
    if (task.error) status.append(el("p", { class: "error", "data-testid": "task-error", text: task.error }));
    renderReview(task);
    renderSteps(steps, task);
    renderOutput(output, task);
    if (task.job_id && ACTIVE.has(task.status) && following !== task.job_id) {
      stopFollowing();
      following = task.job_id;
      stopFollowing = followJob(task.job_id, (type) => {
        refreshSoon();
        if (type === "suspended" || ["finished", "failed", "stopped"].includes(type)) {
          stopFollowing();
          following = null;
        }
      }, (error) => toast(`Lost the task's progress: ${error.message}`));
    }
  }

  function renderReview(task) {
    const waiting = task.steps.find((step) => step.status === "waiting");
    if (task.status !== "waiting_review" || !waiting) {
      review.replaceChildren();
      return;
    }
    const note = el("textarea", { id: "review-note", rows: "2", maxlength: "2000",
      placeholder: "A note for the record (optional)" });
    const decide = (verb, done) => act(`/v1/agents/tasks/${id}/${verb}`,
      { note: note.value.trim() }, done);
    review.replaceChildren(el("section", { class: "card review", "data-testid": "review",
      "aria-labelledby": "review-title" },
    el("h2", { id: "review-title", text: "Waiting for your review" }),
    el("p", { text: waiting.inputs.instructions || "Check the draft before the agent goes on." }),
    el("blockquote", { class: "passage", text: waiting.inputs.draft || "(no draft)" }),
    writable ? [el("label", { for: "review-note", text: "Note" }), note,
      el("div", { class: "row" },
        el("button", { type: "button", text: "Approve", onclick: () => decide("approve", "Approved") }),
        el("button", { type: "button", class: "danger", text: "Reject",
          onclick: () => decide("reject", "Rejected") }))]
      : el("p", { class: "note", text: "A member of this workspace can approve it." })));
  }

  async function act(path, body, done) {
    try {
      await api(path, { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body) });
      toast(done);
      following = null;
      await load();
    } catch (error) { toast(error.message); }
  }

  load();
  return () => { stopped = true; stopFollowing(); clearTimeout(pending); };
}

function renderSteps(root, task) {
  const items = task.steps.map((step) => {
    const calls = step.model_calls.map((call) =>
      `${call.model}: ${call.input_tokens} in, ${call.output_tokens} out, ${Math.round(call.latency_ms)} ms`);
    const tools = step.tool_calls.map((call) =>
      `${call.tool}${call.ok ? "" : ` failed: ${call.error}`} (${Math.round(call.latency_ms)} ms)`);
    const text = step.outputs.text || step.outputs.note || "";
    return el("li", { "data-testid": "task-step", "data-node": step.node, "data-status": step.status },
      el("strong", { text: step.node }), " ", el("span", { class: "meta", text: step.type }), " ",
      badge(step.status),
      calls.length ? el("div", { class: "meta", text: `model ${calls.join("; ")}` }) : null,
      tools.length ? el("div", { class: "meta", text: `tool ${tools.join("; ")}` }) : null,
      step.citations.length ? el("div", { class: "meta", text: `${step.citations.length} citations` }) : null,
      text ? el("details", {}, el("summary", { text: "Output" }), el("p", { text: text.slice(0, 2000) })) : null);
  });
  if (ACTIVE.has(task.status)) {
    items.push(el("li", { class: "spinner", text: task.status === "queued" ? "Queued" : `Running ${task.cursor || ""}` }));
  }
  root.replaceChildren(el("h2", { id: "steps-title", text: "Steps" }),
    items.length ? el("ol", { class: "steps" }, items) : el("p", { class: "empty", text: "No steps yet." }));
}

function renderOutput(root, task) {
  if (task.output === null || task.output === undefined) {
    root.replaceChildren(el("h2", { id: "output-title", text: "Output" }),
      el("p", { class: "empty", text: task.status === "finished" ? "No output." : "Not yet." }));
    return;
  }
  const references = task.citations.map((citation) => el("li", { id: `task-ref-${citation.marker}`,
    "data-testid": "task-citation" },
  el("strong", { text: `[${citation.marker}] ${citation.title}` }),
  citation.page ? el("span", { class: "meta", text: `, page ${citation.page}` }) : null,
  el("blockquote", { class: "passage", text: citation.text })));
  root.replaceChildren(el("h2", { id: "output-title", text: "Output" }),
    el("p", { "data-testid": "task-output", text: task.output || "(nothing the passages support)" }),
    references.length ? [el("h3", { text: "Sources" }), el("ol", { class: "references" }, references)] : null);
}
