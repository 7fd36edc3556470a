// Knowledge bases: the list, and one base's documents with upload and live ingestion progress.

import { badge, el, errorBox, readOnlyNote, toast } from "./dom.js";
import { followJob } from "./events.js";
import { api, canAdmin, canWrite } from "./session.js";

export function knowledgeView(root) {
  const writable = canWrite();
  const list = el("div", { "aria-live": "polite" }, el("p", { class: "spinner", text: "Loading" }));
  const detail = el("div");
  root.append(el("h1", { text: "Knowledge bases" }),
    writable ? createForm(refresh) : readOnlyNote("search and read the knowledge bases"),
    el("div", { class: "card" }, list), detail);

  const stops = [];
  async function refresh() {
    try {
      const { knowledge_bases: kbs } = await api("/v1/knowledge-bases");
      if (!kbs.length) {
        list.replaceChildren(el("p", { class: "empty", text: writable
          ? "No knowledge bases yet. Create one above." : "No knowledge bases yet." }));
        return;
      }
      list.replaceChildren(el("table", {},
        el("thead", {}, el("tr", {}, el("th", { text: "Name" }), el("th", { text: "Chunks" }),
          el("th", { class: "optional", text: "Embedding model" }), el("th", { text: "" }))),
        el("tbody", {}, kbs.map((kb) => el("tr", {},
          el("td", {}, el("a", { href: `#/knowledge/${kb.id}`, text: kb.name })),
          el("td", { text: String(kb.chunk_count) }),
          el("td", { class: "optional", text: kb.embedding_model }),
          el("td", {}, canAdmin() ? el("button", { type: "button", class: "danger",
            "aria-label": `Delete ${kb.name}`, text: "Delete", onclick: async () => {
              if (!confirm(`Delete the knowledge base ${kb.name} and all its documents?`)) return;
              try { await api(`/v1/knowledge-bases/${kb.id}`, { method: "DELETE" }); await refresh(); }
              catch (error) { toast(error.message); }
            } }) : null))))));
    } catch (error) { list.replaceChildren(errorBox(error)); }
  }
  refresh();
  const selected = location.hash.split("/")[2];
  if (selected) showKnowledgeBase(detail, selected, stops, refresh, writable);
  return () => stops.forEach((stop) => stop());
}

function createForm(onCreated) {
  const name = el("input", { type: "text", id: "kb-name", required: true, autocomplete: "off" });
  const description = el("input", { type: "text", id: "kb-description" });
  return el("form", { class: "card", onsubmit: async (event) => {
    event.preventDefault();
    try {
      await api("/v1/knowledge-bases", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ name: name.value.trim(), description: description.value }),
      });
      toast(`Created ${name.value.trim()}`);
      name.value = ""; description.value = "";
      await onCreated();
    } catch (error) { toast(error.message); }
  } },
    el("h2", { text: "New knowledge base" }),
    el("div", { class: "row" },
      el("div", { class: "grow" }, el("label", { for: "kb-name", text: "Name" }), name),
      el("div", { class: "grow" }, el("label", { for: "kb-description", text: "Description" }),
        description),
      el("button", { type: "submit", text: "Create" })));
}

function uploader(upload) {
  const input = el("input", { type: "file", id: "files", multiple: true });
  const drop = el("div", { class: "drop", tabindex: "0", role: "button",
    "aria-label": "Upload files: drop them here or press Enter to choose",
    onclick: () => input.click(),
    onkeydown: (event) => { if (event.key === "Enter" || event.key === " ") { event.preventDefault(); input.click(); } },
    ondragover: (event) => { event.preventDefault(); drop.classList.add("over"); },
    ondragleave: () => drop.classList.remove("over"),
    ondrop: (event) => { event.preventDefault(); drop.classList.remove("over"); upload(event.dataTransfer.files); },
  }, "Drop PDF, DOCX, HTML, Markdown or text files here, or click to choose");
  input.addEventListener("change", () => { upload(input.files); });
  return [drop, el("label", { for: "files", class: "muted", text: "Or choose files:" }), input];
}

async function showKnowledgeBase(root, kbId, stops, onChange, writable) {
  root.replaceChildren(el("p", { class: "spinner", text: "Loading" }));
  let kb;
  try { kb = await api(`/v1/knowledge-bases/${kbId}`); }
  catch (error) { root.replaceChildren(errorBox(error)); return; }
  const table = el("div", { "aria-live": "polite" });
  const progress = new Map();
  root.replaceChildren(el("section", { class: "card", "aria-labelledby": "kb-title" },
    el("h2", { id: "kb-title", text: kb.name }),
    kb.description ? el("p", { class: "muted", text: kb.description }) : null,
    writable ? uploader(upload) : null, table));

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
    progress.set(jobId, progress.get(jobId) || 0);
    const settle = () => { progress.delete(jobId); render(); onChange(); };
    stops.push(followJob(jobId, (type, data) => {
      if (type === "progress") { progress.set(jobId, data.progress); render(); }
      if (type === "finished" || type === "failed" || type === "stopped") settle();
    }, settle));
  }

  async function render() {
    let docs;
    try { ({ documents: docs } = await api(`/v1/knowledge-bases/${kbId}/documents`)); }
    catch (error) { table.replaceChildren(errorBox(error)); return; }
    if (!docs.length) {
      table.replaceChildren(el("p", { class: "empty", text: "No documents yet." }));
      return;
    }
    table.replaceChildren(el("table", { "data-testid": "documents" },
      el("thead", {}, el("tr", {}, el("th", { text: "Document" }), el("th", { text: "Status" }),
        el("th", { class: "optional", text: "Chunks" }), el("th", { text: "" }))),
      el("tbody", {}, docs.map((doc) => {
        const fraction = doc.job_id ? progress.get(doc.job_id) : undefined;
        return el("tr", { "data-source": doc.source },
          el("td", {}, el("a", { href: `/v1/knowledge-bases/${kbId}/documents/${doc.id}/file`,
            target: "_blank", rel: "noopener", "data-file": true, text: doc.title || doc.source }),
            el("div", { class: "meta", text: doc.source })),
          el("td", {}, badge(doc.status),
            (doc.status === "queued" || doc.status === "processing")
              ? el("progress", { max: "1", value: String(fraction || 0), "aria-label": `Progress of ${doc.source}` }) : null,
            doc.error ? el("div", { class: "error", text: doc.error }) : null),
          el("td", { class: "optional", text: String(doc.chunk_count) }),
          el("td", {}, writable ? el("button", { type: "button", class: "danger", text: "Delete",
            "aria-label": `Delete ${doc.source}`, onclick: async () => {
              try { await api(`/v1/knowledge-bases/${kbId}/documents/${doc.id}`, { method: "DELETE" }); await render(); onChange(); }
              catch (error) { toast(error.message); }
            } }) : null));
      }))));
    for (const doc of docs) {
      if ((doc.status === "queued" || doc.status === "processing") && doc.job_id && !progress.has(doc.job_id)) {
        watch(doc.job_id);
      }
    }
  }
  render();
}
