// Reports: start one on a topic, watch its outline and sections fill in live, read it with
// clickable citations that open the cited span, retry the sections that failed, download it.

import { badge, el, errorBox, readOnlyNote, toast } from "./dom.js";
import { followJob } from "./events.js";
import { api, canWrite, request, toError } from "./session.js";

const RUNNING = new Set(["queued", "started"]);
const RETRYABLE = new Set(["failed", "stopped", "not_found"]);
const FORMATS = [["md", "Markdown"], ["html", "HTML"], ["pdf", "PDF"], ["docx", "Word (DOCX)"]];

export function reportsView(root) {
  const id = location.hash.split("/")[2];
  return id ? reportView(root, decodeURIComponent(id)) : listView(root);
}

// ---------- the list and the start form ----------

function listView(root) {
  const writable = canWrite();
  const list = el("div", { "aria-live": "polite" }, el("p", { class: "spinner", text: "Loading" }));
  root.append(el("h1", { text: "Reports" }),
    writable ? startForm() : readOnlyNote("read the reports"),
    el("div", { class: "card" }, el("h2", { text: "Your reports" }), list));
  let timer = null;
  let stopped = false;
  async function refresh() {
    try {
      const { reports } = await api("/v1/reports?limit=100");
      if (stopped) return;
      if (!reports.length) {
        list.replaceChildren(el("p", { class: "empty", text: "No reports yet." }));
        return;
      }
      list.replaceChildren(el("table", {},
        el("thead", {}, el("tr", {}, el("th", { text: "Report" }), el("th", { text: "Status" }),
          el("th", { class: "optional", text: "Started" }))),
        el("tbody", {}, reports.map((report) => el("tr", {},
          el("td", {}, el("a", { href: `#/reports/${report.id}`, text: report.title || report.topic })),
          el("td", {}, badge(report.status)),
          el("td", { class: "optional", text: new Date(report.created_at).toLocaleString() }))))));
      clearTimeout(timer);
      if (reports.some((r) => RUNNING.has(r.status))) timer = setTimeout(refresh, 3000);
    } catch (error) { if (!stopped) list.replaceChildren(errorBox(error)); }
  }
  refresh();
  return () => { stopped = true; clearTimeout(timer); };
}

function startForm() {
  const topic = el("input", { type: "text", id: "report-topic", required: true, maxlength: "500",
    placeholder: "What should the report be about?" });
  const bases = el("fieldset", { id: "report-kbs" }, el("legend", { text: "Knowledge bases" }),
    el("p", { class: "spinner", text: "Loading" }));
  const sections = el("input", { type: "number", id: "report-sections", min: "1", max: "12", value: "5" });
  const outline = el("textarea", { id: "report-outline", rows: "4",
    placeholder: "One section title per line (optional: leave empty and the model plans the sections)" });
  const instructions = el("textarea", { id: "report-instructions", rows: "2", maxlength: "2000",
    placeholder: "For example: for new staff, in plain words (optional)" });
  const submit = el("button", { type: "submit", text: "Start the report" });
  const error = el("p", { class: "error", role: "alert" });
  const form = el("form", { class: "card", onsubmit: async (event) => {
    event.preventDefault();
    error.textContent = "";
    const chosen = [...bases.querySelectorAll("input:checked")].map((box) => box.value);
    if (!chosen.length) { error.textContent = "Choose at least one knowledge base."; return; }
    const titles = outline.value.split("\n").map((line) => line.trim()).filter(Boolean);
    const body = { topic: topic.value.trim(), knowledge_bases: chosen,
      sections: Number(sections.value) || 5, instructions: instructions.value.trim() };
    if (titles.length) body.outline = titles;
    submit.disabled = true;
    try {
      const created = await api("/v1/reports", { method: "POST",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      location.hash = `#/reports/${created.report_id}`;
    } catch (failure) {
      error.textContent = failure.message;
      submit.disabled = false;
    }
  } },
  el("label", { for: "report-topic", text: "Topic" }), topic, bases,
  el("div", { class: "row" },
    el("div", {}, el("label", { for: "report-sections", text: "Number of sections" }), sections),
    el("div", { class: "grow" }, el("label", { for: "report-outline", text: "Your outline" }), outline)),
  el("label", { for: "report-instructions", text: "Instructions" }), instructions,
  error, el("div", { class: "row" }, submit));
  api("/v1/knowledge-bases").then(({ knowledge_bases: kbs }) => {
    const ready = kbs.filter((kb) => kb.chunk_count > 0);
    if (!ready.length) {
      bases.replaceChildren(el("legend", { text: "Knowledge bases" }), el("p", { class: "empty" },
        "No knowledge base has indexed documents yet. Add some under ",
        el("a", { href: "#/knowledge", text: "Knowledge bases" }), " first."));
      submit.disabled = true;
      return;
    }
    bases.replaceChildren(el("legend", { text: "Knowledge bases" }), ...ready.map((kb, index) =>
      el("label", { class: "inline" }, el("input", { type: "checkbox", value: kb.id,
        checked: ready.length === 1 || index === 0 }), `${kb.name} (${kb.chunk_count} passages)`)));
  }).catch((failure) => bases.append(errorBox(failure)));
  return form;
}

// ---------- one report ----------

function reportView(root, id) {
  const heading = el("h1", { text: "Report" });
  const status = el("div", { class: "row center", "aria-live": "polite" });
  const actions = el("div", { class: "row center actions" });
  const outline = el("section", { class: "card", "aria-labelledby": "outline-title" });
  const body = el("div");
  root.append(el("p", {}, el("a", { href: "#/reports", text: "← All reports" })), heading, status,
    actions, outline, body);
  const writable = canWrite();
  let following = null;
  let stopFollowing = () => {};
  let pending = null;
  let stopped = false;
  let passages = new Map();  // chunk id -> the passage a section read, for the source panel
  let auditVersion = -1;

  const refreshSoon = () => {
    if (pending) return;
    pending = setTimeout(() => { pending = null; load(); }, 250);
  };

  async function load() {
    let report;
    try {
      report = await api(`/v1/reports/${id}`);
    } catch (error) {
      if (!stopped) body.replaceChildren(errorBox(error));
      return;
    }
    if (stopped) return;
    heading.textContent = report.title || report.topic;
    renderStatus(status, report);
    renderActions(report);
    renderOutline(outline, report);
    if (report.document && auditVersion !== report.finished_at) {
      auditVersion = report.finished_at;
      passages = await readPassages(id);
    }
    renderBody(body, report, passages);
    if (RUNNING.has(report.status) && report.job_id && report.job_id !== following) {
      stopFollowing();
      following = report.job_id;
      stopFollowing = followJob(report.job_id, (type) => {
        refreshSoon();
        if (["finished", "failed", "stopped"].includes(type)) following = null;
      }, (error) => toast(`Lost the report's progress: ${error.message}`));
    }
  }

  function renderActions(report) {
    const buttons = [];
    if (writable && RUNNING.has(report.status)) {
      buttons.push(el("button", { type: "button", class: "danger", text: "Cancel", onclick: () =>
        act(`/v1/reports/${id}/cancel`, "POST", "Cancelled") }));
    }
    if (writable && !RUNNING.has(report.status) && report.sections.some((s) => RETRYABLE.has(s.status))) {
      const count = report.sections.filter((s) => RETRYABLE.has(s.status)).length;
      buttons.push(el("button", { type: "button", text: `Retry ${count} section${count > 1 ? "s" : ""}`,
        onclick: () => act(`/v1/reports/${id}/retry`, "POST", "Retrying") }));
    }
    if (report.document) {
      buttons.push(el("span", { class: "meta", text: "Download:" }),
        ...FORMATS.map(([format, label]) => el("button", { type: "button", class: "secondary",
          text: label, "aria-label": `Download as ${label}`,
          onclick: () => download(`/v1/reports/${id}/export?format=${format}`) })));
    }
    if (writable) {
      buttons.push(el("button", { type: "button", class: "danger", text: "Delete", onclick: async () => {
        if (!confirm("Delete this report and its exports?")) return;
        try {
          await api(`/v1/reports/${id}`, { method: "DELETE" });
          toast("Report deleted");
          location.hash = "#/reports";
        } catch (error) { toast(error.message); }
      } }));
    }
    actions.replaceChildren(...buttons);
  }

  async function act(path, method, done) {
    try {
      await api(path, { method });
      toast(done);
      following = null;
      await load();
    } catch (error) { toast(error.message); }
  }

  const closeListener = () => {
    document.getElementById("source-link").hidden = false;
    if (opener && opener.isConnected) opener.focus();
  };
  document.getElementById("source-close").addEventListener("click", closeListener);
  load();
  return () => {
    stopped = true;
    clearTimeout(pending);
    stopFollowing();
    document.getElementById("source-close").removeEventListener("click", closeListener);
  };
}

function renderStatus(root, report) {
  const parts = [badge(report.status)];
  if (RUNNING.has(report.status)) {
    parts.push(el("progress", { max: "1", value: String(report.progress), "aria-label": "Progress of the report" }));
  }
  const t = report.timings || {};
  if (t.first_section_s !== null && t.first_section_s !== undefined) {
    parts.push(el("span", { class: "meta", text: `first section after ${t.first_section_s} s` }));
  }
  if (t.total_s !== null && t.total_s !== undefined && !RUNNING.has(report.status)) {
    parts.push(el("span", { class: "meta", text: `written in ${t.total_s} s` }));
  }
  if (report.error) parts.push(el("p", { class: "note", "data-testid": "report-error", text: report.error }));
  root.replaceChildren(...parts);
}

function renderOutline(root, report) {
  const title = el("h2", { id: "outline-title", text: "Outline" });
  if (!report.sections.length) {
    const waiting = RUNNING.has(report.status) ? "Planning the sections" : "No sections.";
    root.replaceChildren(title, el("p", { class: RUNNING.has(report.status) ? "meta spinner" : "empty", text: waiting }));
    return;
  }
  root.replaceChildren(title, el("ol", { class: "outline" }, report.sections.map((section) =>
    el("li", { "data-testid": "report-section", "data-status": section.status },
      el("div", { class: "row center" }, el("strong", { text: section.title }), badge(section.status),
        section.status === "started"
          ? el("progress", { max: "1", value: String(section.progress), "aria-label": `Progress of ${section.title}` })
          : null),
      el("div", { class: "meta", text: section.questions.join(" · ") }),
      section.error ? el("div", { class: "error", text: section.error }) : null))));
}

function renderBody(root, report, passages) {
  if (report.status === "not_found") {
    root.replaceChildren(el("section", { class: "card" },
      el("h2", { text: "Nothing found on this topic" }),
      el("p", { text: "The knowledge bases say nothing relevant about it, so no report was written. " +
        "The closest passages were:" }),
      ...(report.closest || []).map((p) => el("blockquote", { class: "passage" },
        el("div", { class: "meta", text: `${p.title} (${p.source})` }), p.text))));
    return;
  }
  if (!report.document) { root.replaceChildren(); return; }
  const doc = report.document;
  const references = new Map(doc.references.map((r) => [r.number, r]));
  const article = el("article", { class: "card report", "data-testid": "report-document" });
  if (doc.summary.length) {
    article.append(el("h2", { text: "Summary" }), ...doc.summary.map((p) => paragraph(p, references, passages)));
  }
  for (const section of doc.sections) {
    article.append(el("h2", { text: section.title }), ...section.paragraphs.map((p) => paragraph(p, references, passages)));
  }
  article.append(el("h2", { id: "references", text: "References" }), el("ol", { class: "references" },
    doc.references.map((r) => el("li", { id: `ref-${r.number}`, value: String(r.number) },
      el("cite", { text: r.document_title }), ` — ${where(r)}: `, el("q", { text: r.quote })))));
  root.replaceChildren(article);
}

function paragraph(sentences, references, passages) {
  const node = el("p", { class: "answer" });
  sentences.forEach((sentence, index) => {
    if (index) node.append(" ");
    node.append(sentence.text);
    for (const number of sentence.citations) {
      const reference = references.get(number);
      node.append(el("button", { type: "button", class: "cite", "data-ref": String(number),
        "aria-label": `Source ${number}: ${reference.document_title}`, text: `[${number}]`,
        onclick: () => openReference(reference, passages.get(reference.chunk_id)) }));
    }
  });
  return node;
}

function where(reference) {
  const page = reference.page !== null && reference.page !== undefined ? `, page ${reference.page}` : "";
  return `${reference.source}${page}`;
}

async function readPassages(id) {
  try {
    const audit = await api(`/v1/reports/${id}/audit`);
    return new Map(audit.sections.flatMap((s) => s.passages).map((p) => [p.chunk_id, p]));
  } catch {
    return new Map();  // the panel then shows the quoted span alone
  }
}

// ---------- the source panel (shared with the Ask page) ----------

let opener = null;

function openReference(reference, passage) {
  opener = document.activeElement;
  document.getElementById("source-title").textContent = `[${reference.number}] ${reference.document_title}`;
  document.getElementById("source-meta").textContent =
    `Quoted from ${where(reference)} · characters ${reference.start}–${reference.end}`;
  const text = document.getElementById("source-text");
  if (passage && reference.start >= passage.start && reference.end <= passage.end) {
    const from = reference.start - passage.start;
    const to = reference.end - passage.start;
    text.replaceChildren(passage.text.slice(0, from),
      el("mark", { "data-testid": "cited-span", text: passage.text.slice(from, to) }), passage.text.slice(to));
  } else {
    text.replaceChildren(el("mark", { "data-testid": "cited-span", text: reference.quote }));
  }
  const link = document.getElementById("source-link");
  link.hidden = !reference.knowledge_base_id;
  if (reference.knowledge_base_id) {
    link.href = `#/knowledge/${reference.knowledge_base_id}/documents/${reference.document_id}`;
  }
  document.getElementById("source-panel").hidden = false;
  document.getElementById("source-close").focus();
}

/** Fetches an export with the caller's credentials and saves it under the server's file name. */
async function download(url) {
  try {
    const response = await request(url);
    if (!response.ok) throw await toError(response);
    const blob = await response.blob();
    const match = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(response.headers.get("Content-Disposition") || "");
    const objectUrl = URL.createObjectURL(blob);
    const link = Object.assign(document.createElement("a"), {
      href: objectUrl, download: match ? decodeURIComponent(match[1]) : "report" });
    link.click();
    setTimeout(() => URL.revokeObjectURL(objectUrl), 60_000);
  } catch (error) {
    toast(`Could not download: ${error.message}`);
  }
}
