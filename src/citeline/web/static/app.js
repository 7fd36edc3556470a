// Citeline's browser UI: hash-routed views over the HTTP API, live through job event streams.
// Text from the server is always set with textContent, never parsed as HTML.

const main = document.getElementById("main");
const views = { ask: askView, knowledge: knowledgeView, jobs: jobsView, models: modelsView };
let leaveView = () => {};

// ---------- small helpers ----------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

async function api(path, options = {}) {
  const response = await fetch(path, options);
  if (response.status === 204) return null;
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = body && (body.detail || (body.error && body.error.message));
    throw new Error(detail || `${response.status} ${response.statusText}`);
  }
  return body;
}

function toast(message) {
  const box = document.getElementById("toast");
  box.textContent = message;
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, 4000);
}

function badge(state) {
  return el("span", { class: `badge s-${state}`, text: state.replace("_", " ") });
}

function errorBox(error) {
  return el("p", { class: "error", role: "alert", text: `Error: ${error.message}` });
}

// Follows a job's events; the browser reconnects with Last-Event-ID after a dropped
// connection, and events already seen are skipped, so none is lost or shown twice.
function followJob(jobId, onEvent) {
  const source = new EventSource(`/v1/jobs/${jobId}/events`);
  let last = 0;
  const terminal = new Set(["finished", "failed", "stopped"]);
  const handle = (message) => {
    const seq = Number(message.lastEventId);
    if (seq && seq <= last) return;
    last = seq || last;
    const event = JSON.parse(message.data);
    onEvent(message.type, event.data || {}, event);
    if (terminal.has(message.type)) source.close();
  };
  for (const type of ["queued", "started", "progress", "retrieval", "token", "citation",
    "error", "complete", "finished", "failed", "stopped", "retrying"]) {
    source.addEventListener(type, handle);
  }
  return () => source.close();
}

// ---------- router ----------

function route() {
  leaveView();
  leaveView = () => {};
  const name = (location.hash.replace(/^#\//, "").split("/")[0]) || "ask";
  const view = views[name] || askView;
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  main.replaceChildren();
  closeSource();
  const cleanup = view(main);
  if (typeof cleanup === "function") leaveView = cleanup;
  main.focus();
}

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", route);

// ---------- knowledge bases ----------

function knowledgeView(root) {
  const list = el("div", { "aria-live": "polite" }, el("p", { class: "spinner", text: "Loading" }));
  const name = el("input", { type: "text", id: "kb-name", required: true, autocomplete: "off" });
  const description = el("input", { type: "text", id: "kb-description" });
  const form = el("form", { class: "card", onsubmit: async (event) => {
    event.preventDefault();
    try {
      await api("/v1/knowledge-bases", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ name: name.value.trim(), description: description.value }),
      });
      toast(`Created ${name.value.trim()}`);
      name.value = ""; description.value = "";
      await refresh();
    } catch (error) { toast(error.message); }
  } },
    el("h2", { text: "New knowledge base" }),
    el("div", { class: "row" },
      el("div", { class: "grow" }, el("label", { for: "kb-name", text: "Name" }), name),
      el("div", { class: "grow" }, el("label", { for: "kb-description", text: "Description" }),
        description),
      el("button", { type: "submit", text: "Create" })));
  const detail = el("div");
  root.append(el("h1", { text: "Knowledge bases" }), form, el("div", { class: "card" }, list), detail);

  const stops = [];
  async function refresh() {
    try {
      const { knowledge_bases: kbs } = await api("/v1/knowledge-bases");
      if (!kbs.length) {
        list.replaceChildren(el("p", { class: "empty", text: "No knowledge bases yet. Create one above." }));
        return;
      }
      list.replaceChildren(el("table", {},
        el("thead", {}, el("tr", {}, el("th", { text: "Name" }), el("th", { text: "Chunks" }),
          el("th", { class: "optional", text: "Embedding model" }), el("th", { text: "" }))),
        el("tbody", {}, kbs.map((kb) => el("tr", {},
          el("td", {}, el("a", { href: `#/knowledge/${kb.id}`, text: kb.name })),
          el("td", { text: String(kb.chunk_count) }),
          el("td", { class: "optional", text: kb.embedding_model }),
          el("td", {}, el("button", { type: "button", class: "danger", "aria-label": `Delete ${kb.name}`,
            text: "Delete", onclick: async () => {
              if (!confirm(`Delete the knowledge base ${kb.name} and all its documents?`)) return;
              try { await api(`/v1/knowledge-bases/${kb.id}`, { method: "DELETE" }); await refresh(); }
              catch (error) { toast(error.message); }
            } })))))));
    } catch (error) { list.replaceChildren(errorBox(error)); }
  }
  refresh();
  const selected = location.hash.split("/")[2];
  if (selected) showKnowledgeBase(detail, selected, stops, refresh);
  return () => stops.forEach((stop) => stop());
}

async function showKnowledgeBase(root, kbId, stops, onChange) {
  let kb;
  try { kb = await api(`/v1/knowledge-bases/${kbId}`); }
  catch (error) { root.replaceChildren(errorBox(error)); return; }
  const table = el("div", { "aria-live": "polite" });
  const progress = new Map();
  const input = el("input", { type: "file", id: "files", multiple: true });
  const drop = el("div", { class: "drop", tabindex: "0", role: "button",
    "aria-label": "Upload files: drop them here or press Enter to choose",
    onclick: () => input.click(),
    onkeydown: (event) => { if (event.key === "Enter" || event.key === " ") { event.preventDefault(); input.click(); } },
    ondragover: (event) => { event.preventDefault(); drop.classList.add("over"); },
    ondragleave: () => drop.classList.remove("over"),
    ondrop: (event) => { event.preventDefault(); drop.classList.remove("over"); upload(event.dataTransfer.files); },
  }, "Drop PDF, DOCX, HTML, Markdown or text files here, or click to choose");
  input.addEventListener("change", () => upload(input.files));
  root.replaceChildren(el("section", { class: "card", "aria-labelledby": "kb-title" },
    el("h2", { id: "kb-title", text: kb.name }),
    kb.description ? el("p", { class: "muted", text: kb.description }) : null,
    drop, el("label", { for: "files", class: "muted", text: "Or choose files:" }), input, table));

  async function upload(files) {
    if (!files || !files.length) return;
    const form = new FormData();
    for (const file of files) form.append("files", file, file.name);
    try {
      const result = await api(`/v1/knowledge-bases/${kbId}/documents`, { method: "POST", body: form });
      for (const item of result.documents) {
        if (item.status === "rejected") toast(`${item.source}: ${item.error}`);
        if (item.status === "unchanged") toast(`${item.source} is unchanged`);
      }
      for (const jobId of result.job_ids) watch(jobId);
      await render();
    } catch (error) { toast(error.message); }
  }

  function watch(jobId) {
    stops.push(followJob(jobId, (type, data) => {
      if (type === "progress") { progress.set(jobId, data.progress); render(); }
      if (type === "finished" || type === "failed" || type === "stopped") { progress.delete(jobId); render(); onChange(); }
    }));
  }

  async function render() {
    let docs;
    try { ({ documents: docs } = await api(`/v1/knowledge-bases/${kbId}/documents`)); }
    catch (error) { table.replaceChildren(errorBox(error)); return; }
    if (!docs.length) { table.replaceChildren(el("p", { class: "empty", text: "No documents yet." })); return; }
    table.replaceChildren(el("table", { "data-testid": "documents" },
      el("thead", {}, el("tr", {}, el("th", { text: "Document" }), el("th", { text: "Status" }),
        el("th", { class: "optional", text: "Chunks" }), el("th", { text: "" }))),
      el("tbody", {}, docs.map((doc) => {
        const fraction = doc.job_id ? progress.get(doc.job_id) : undefined;
        return el("tr", { "data-source": doc.source },
          el("td", {}, el("a", { href: `/v1/knowledge-bases/${kbId}/documents/${doc.id}/file`,
            target: "_blank", rel: "noopener", text: doc.title || doc.source }),
            el("div", { class: "meta", text: doc.source })),
          el("td", {}, badge(doc.status),
            (doc.status === "queued" || doc.status === "processing")
              ? el("progress", { max: "1", value: String(fraction || 0), "aria-label": `Progress of ${doc.source}` }) : null,
            doc.error ? el("div", { class: "error", text: doc.error }) : null),
          el("td", { class: "optional", text: String(doc.chunk_count) }),
          el("td", {}, el("button", { type: "button", class: "danger", text: "Delete",
            "aria-label": `Delete ${doc.source}`, onclick: async () => {
              try { await api(`/v1/knowledge-bases/${kbId}/documents/${doc.id}`, { method: "DELETE" }); await render(); onChange(); }
              catch (error) { toast(error.message); }
            } })));
      }))));
    for (const doc of docs) {
      if ((doc.status === "queued" || doc.status === "processing") && doc.job_id && !progress.has(doc.job_id)) {
        progress.set(doc.job_id, 0);
        watch(doc.job_id);
      }
    }
  }
  render();
}

// ---------- ask ----------

function askView(root) {
  const select = el("select", { id: "ask-kb", required: true });
  const question = el("textarea", { id: "ask-question", required: true, maxlength: "2000",
    placeholder: "Ask a question about your documents" });
  const submit = el("button", { type: "submit", text: "Ask" });
  const thread = el("div", { class: "thread", "aria-live": "polite" });
  let conversationId = null;
  let stop = () => {};
  const form = el("form", { class: "card", onsubmit: (event) => { event.preventDefault(); ask(); } },
    el("div", { class: "row" },
      el("div", { class: "grow" }, el("label", { for: "ask-kb", text: "Knowledge base" }), select),
      el("button", { type: "button", class: "secondary", text: "New conversation",
        onclick: () => { conversationId = null; thread.replaceChildren(); } })),
    el("label", { for: "ask-question", text: "Question" }), question,
    el("div", { class: "row" }, submit));
  question.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); ask(); }
  });
  root.append(el("h1", { text: "Ask" }), form, thread);

  api("/v1/knowledge-bases").then(({ knowledge_bases: kbs }) => {
    if (!kbs.length) {
      select.replaceChildren(el("option", { value: "", text: "No knowledge bases yet" }));
      submit.disabled = true;
      form.append(el("p", { class: "empty" }, "Create one under ",
        el("a", { href: "#/knowledge", text: "Knowledge bases" }), " first."));
      return;
    }
    select.replaceChildren(...kbs.map((kb) => el("option", { value: kb.id, text: kb.name })));
  }).catch((error) => form.append(errorBox(error)));

  async function ask() {
    const text = question.value.trim();
    if (!text || submit.disabled) return;
    submit.disabled = true;
    const turn = el("article", { class: "turn" }, el("h2", { text: text }));
    const status = el("p", { class: "meta spinner", text: "Searching" });
    const draft = el("div", { class: "draft", "data-testid": "draft" });
    turn.append(status, draft);
    thread.append(turn);
    try {
      const body = { query: text, knowledge_base: select.value };
      if (conversationId) body.conversation_id = conversationId;
      const accepted = await api("/v1/answers", { method: "POST",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      conversationId = accepted.conversation_id;
      question.value = "";
      stop = followJob(accepted.job_id, (type, data) => {
        if (type === "retrieval") status.textContent = `Found ${data.passages.length} passages; writing`;
        if (type === "token") draft.append(data.text);
        if (type === "complete") { status.classList.remove("spinner"); showAnswer(turn, status, draft, data); }
        if (type === "failed" || type === "stopped") {
          status.classList.remove("spinner");
          status.replaceChildren(el("span", { class: "error", role: "alert",
            text: `The answer failed: ${data.reason || type}` }));
        }
        if (["complete", "failed", "stopped"].includes(type)) submit.disabled = false;
      });
    } catch (error) {
      status.classList.remove("spinner");
      status.replaceChildren(errorBox(error));
      submit.disabled = false;
    }
  }
  return () => stop();
}

function showAnswer(turn, status, draft, result) {
  // The verified answer replaces the streamed draft, which stays in the page, hidden.
  draft.hidden = true;
  const passages = new Map(result.passages.map((p) => [p.chunk_id, p]));
  if (result.status === "not_found") {
    status.replaceChildren(badge("not_found"));
    turn.append(el("p", { class: "answer", "data-testid": "answer", text: result.answer }),
      result.passages.length ? el("h3", { text: "Closest passages" }) : null,
      ...result.passages.map((p) => el("blockquote", { class: "passage" },
        el("div", { class: "meta", text: `${p.title} (${p.source})` }), p.text)));
    return;
  }
  const timing = result.timings && result.timings.total_ms ? ` in ${(result.timings.total_ms / 1000).toFixed(1)} s` : "";
  status.replaceChildren(badge("answered"), ` ${result.model || ""}${timing}`);
  const byMarker = new Map(result.citations.map((c) => [c.marker, c]));
  const answer = el("p", { class: "answer", "data-testid": "answer" });
  let cursor = 0;
  for (const sentence of result.sentences) {
    answer.append(result.answer.slice(cursor, sentence.start));
    const span = el("span", sentence.unsupported
      ? { class: "unsupported", title: "No passage supports this sentence" } : {});
    const parts = sentence.text.split(/(\[\d+\])/);
    for (const part of parts) {
      const match = /^\[(\d+)\]$/.exec(part);
      const citation = match && byMarker.get(Number(match[1]));
      if (citation) {
        span.append(el("button", { type: "button", class: "cite", "data-marker": match[1],
          "aria-label": `Source ${match[1]}: ${citation.title}`, text: `[${match[1]}]`,
          onclick: () => openSource(citation, passages.get(citation.chunk_id), result) }));
      } else span.append(part);
    }
    answer.append(span);
    cursor = sentence.end;
  }
  answer.append(result.answer.slice(cursor));
  turn.append(answer);
}

// ---------- source panel ----------

let panelOpener = null;

function openSource(citation, passage, result) {
  const panel = document.getElementById("source-panel");
  panelOpener = document.activeElement;
  document.getElementById("source-title").textContent = `[${citation.marker}] ${citation.title}`;
  const page = citation.page !== null && citation.page !== undefined ? `, page ${citation.page}` : "";
  document.getElementById("source-meta").textContent =
    `${citation.source}${page} · characters ${citation.start}–${citation.end} · support ${citation.support.toFixed(2)}`;
  const text = document.getElementById("source-text");
  if (passage) {
    const from = citation.start - passage.start;
    const to = citation.end - passage.start;
    text.replaceChildren(passage.text.slice(0, from),
      el("mark", { "data-testid": "cited-span", text: passage.text.slice(from, to) }),
      passage.text.slice(to));
  } else {
    text.replaceChildren(el("mark", { "data-testid": "cited-span", text: citation.text }));
  }
  document.getElementById("source-link").href =
    `/v1/knowledge-bases/${result.knowledge_base_id}/documents/${citation.document_id}/file`;
  panel.hidden = false;
  document.getElementById("source-close").focus();
}

function closeSource() {
  const panel = document.getElementById("source-panel");
  if (panel.hidden) return;
  panel.hidden = true;
  if (panelOpener) panelOpener.focus();
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("source-close").addEventListener("click", closeSource);
  document.addEventListener("keydown", (event) => { if (event.key === "Escape") closeSource(); });
});

// ---------- jobs ----------

function jobsView(root) {
  const list = el("div", { "aria-live": "polite" }, el("p", { class: "spinner", text: "Loading" }));
  root.append(el("h1", { text: "Jobs" }), el("div", { class: "card" }, list));
  async function refresh() {
    try {
      const { jobs } = await api("/v1/jobs?limit=50");
      if (!jobs.length) { list.replaceChildren(el("p", { class: "empty", text: "No jobs yet." })); return; }
      list.replaceChildren(el("table", {},
        el("thead", {}, el("tr", {}, el("th", { text: "Kind" }), el("th", { text: "State" }),
          el("th", { text: "Progress" }), el("th", { class: "optional", text: "Created" }), el("th", { text: "" }))),
        el("tbody", {}, jobs.map((job) => el("tr", {},
          el("td", {}, job.kind, el("div", { class: "meta", text: job.id })),
          el("td", {}, badge(job.state), job.error ? el("div", { class: "error", text: job.error }) : null),
          el("td", {}, el("progress", { max: "1", value: String(job.progress), "aria-label": `Progress of job ${job.id}` }),
            job.progress_message ? el("div", { class: "meta", text: job.progress_message }) : null),
          el("td", { class: "optional", text: new Date(job.created_at).toLocaleString() }),
          el("td", {}, ["queued", "scheduled", "started"].includes(job.state)
            ? el("button", { type: "button", class: "danger", text: "Cancel", "aria-label": `Cancel job ${job.id}`,
              onclick: async () => {
                try { await api(`/v1/jobs/${job.id}/cancel`, { method: "POST" }); refresh(); }
                catch (error) { toast(error.message); }
              } }) : null))))));
    } catch (error) { list.replaceChildren(errorBox(error)); }
  }
  refresh();
  const timer = setInterval(refresh, 2000);
  return () => clearInterval(timer);
}

// ---------- models ----------

function modelsView(root) {
  const list = el("div", {}, el("p", { class: "spinner", text: "Loading" }));
  root.append(el("h1", { text: "Models" }), el("div", { class: "card" }, list));
  const head = (...names) => el("thead", {}, el("tr", {}, names.map((n) => el("th", { text: n }))));
  const usage = (stat) => {
    if (!stat || !stat.variants.length) return el("span", { class: "empty", text: "no traffic" });
    return stat.variants.map((v) => el("div", { class: "meta", text:
      `${v.version}: ${v.requests} requests, ${(v.error_rate * 100).toFixed(0)}% errors, ` +
      `p50 ${Math.round(v.latency_ms_p50)} ms` }));
  };
  (async () => {
    try {
      const { data } = await api("/v1/models");
      const aliases = data.filter((m) => m.kind === "alias");
      const models = data.filter((m) => m.kind === "model");
      const stats = await Promise.all(
        aliases.map((a) => api(`/v1/models/${a.id}/stats`).catch(() => null)));
      const aliasRows = aliases.map((alias, i) => {
        const routes = alias.routes.map((r) => `${r.model} (weight ${r.weight})`).join(", ");
        const fallback = alias.fallback ? `; fallback ${alias.fallback}` : "";
        return el("tr", {}, el("td", { text: alias.id }), el("td", { text: routes + fallback }),
          el("td", {}, usage(stats[i])));
      });
      const modelRows = models.map((m) => el("tr", {},
        el("td", { text: m.id }), el("td", { text: m.latest }), el("td", { text: m.provider })));
      list.replaceChildren(
        el("h2", { text: "Aliases" }),
        el("table", {}, head("Alias", "Routes", "Last 24 h"), el("tbody", {}, aliasRows)),
        el("h2", { text: "Models" }),
        el("table", {}, head("Model", "Latest version", "Provider"), el("tbody", {}, modelRows)));
    } catch (error) { list.replaceChildren(errorBox(error)); }
  })();
}
