// Knowledge bases: the list with a create form (a new base opens at once), a page per base
// with upload, live ingestion progress, retry or replace of failed documents, delete with
// undo; and, under documents.js, each document's preview.

import { badge, el, errorBox, readOnlyNote, toast } from "./dom.js";
import { documentView } from "./documents.js";
import { followJob } from "./events.js";
import { api, canAdmin, canWrite } from "./session.js";

// What the server parses, asked once (GET /v1/knowledge-bases/formats); anything dropped that
// is not one of these is refused with a reason.
let accepted = null;
const formats = () => {
  accepted ??= api("/v1/knowledge-bases/formats").then((body) => body.suffixes.join(","))
    .catch(() => { accepted = null; return ""; });
  return accepted;
};
const UNDO_MS = 8000;
const inFlight = new Set();  // deletes sent when a page was left: the next listing waits for them

export function knowledgeView(root) {
  const [, , kbId, section, documentId] = location.hash.split("/");
  if (kbId && section === "documents" && documentId) return documentView(root, kbId, documentId);
  if (kbId) return knowledgeBasePage(root, kbId);
  return listPage(root);
}

function listPage(root) {
  const writable = canWrite();
  const list = el("div", { "aria-live": "polite" }, el("p", { class: "spinner", text: "Loading" }));
  root.append(el("h1", { text: "Knowledge bases" }), el("div", { class: "card" }, list),
    writable ? createForm() : readOnlyNote("search and read the knowledge bases"));

  async function refresh() {
    try {
      const { knowledge_bases: kbs } = await api("/v1/knowledge-bases");
      if (!kbs.length) {
        list.replaceChildren(el("p", { class: "empty", text: writable
          ? "No knowledge bases yet. Create one below: give it a name, then add documents." : "No knowledge bases yet." }));
        return;
      }
      list.replaceChildren(el("table", {},
        el("thead", {}, el("tr", {}, el("th", { text: "Name" }), el("th", { text: "Passages" }),
          el("th", { class: "optional", text: "Description" }), el("th", { text: "" }))),
        el("tbody", {}, kbs.map((kb) => el("tr", {},
          el("td", {}, el("a", { href: `#/knowledge/${kb.id}`, text: kb.name })),
          el("td", { text: String(kb.chunk_count) }),
          el("td", { class: "optional", text: kb.description || "" }),
          el("td", {}, canAdmin() ? el("button", { type: "button", class: "danger",
            "aria-label": `Delete ${kb.name}`, text: "Delete", onclick: async () => {
              if (!confirm(`Delete the knowledge base ${kb.name} and all its documents?`)) return;
              try { await api(`/v1/knowledge-bases/${kb.id}`, { method: "DELETE" }); await refresh(); }
              catch (error) { toast(error.message); }
            } }) : null))))));
    } catch (error) { list.replaceChildren(errorBox(error)); }
  }
  refresh();
}

function createForm() {
  const name = el("input", { type: "text", id: "kb-name", required: true, autocomplete: "off" });
  const description = el("input", { type: "text", id: "kb-description" });
  return el("form", { class: "card", onsubmit: async (event) => {
    event.preventDefault();
    try {
      const kb = await api("/v1/knowledge-bases", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ name: name.value.trim(), description: description.value }),
      });
      toast(`Created ${kb.name}: now add documents`);
      location.hash = `#/knowledge/${kb.id}`;
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
  formats().then((suffixes) => { if (suffixes) input.accept = suffixes; });
  const drop = el("div", { class: "drop", tabindex: "0", role: "button",
    "aria-label": "Upload files: drop them here or press Enter to choose",
    onclick: () => input.click(),
    onkeydown: (event) => { if (event.key === "Enter" || event.key === " ") { event.preventDefault(); input.click(); } },
    ondragover: (event) => { event.preventDefault(); drop.classList.add("over"); },
    ondragleave: () => drop.classList.remove("over"),
    ondrop: (event) => { event.preventDefault(); drop.classList.remove("over"); upload(event.dataTransfer.files); },
  }, "Drop PDF, Word (.docx), HTML, Markdown or text files here, or click to choose");
  input.addEventListener("change", () => { upload([...input.files]); input.value = ""; });
  return [drop, el("label", { for: "files", class: "muted", text: "Or choose files:" }), input];
}

function knowledgeBasePage(root, kbId) {
  const writable = canWrite();
  const stops = [];
  const progress = new Map();
  const deleting = new Map();  // document id -> the pending delete, until its undo time is over
  const table = el("div", { "aria-live": "polite" });
  const rejected = el("div", { "data-testid": "rejected", "aria-live": "polite" });
  const undo = el("div", { class: "undo", role: "status" });
  const head = el("div", {}, el("p", { class: "spinner", text: "Loading" }));
  root.append(el("p", {}, el("a", { href: "#/knowledge", text: "← All knowledge bases" })), head);

  (async () => {
    let kb;
    try { kb = await api(`/v1/knowledge-bases/${kbId}`); }
    catch (error) { head.replaceChildren(errorBox(error)); return; }
    head.replaceChildren(el("div", {}, el("h1", { text: kb.name }),
      kb.description ? el("p", { class: "muted", text: kb.description }) : null),
      el("section", { class: "card", "aria-label": "Documents" },
        writable ? uploader(upload) : readOnlyNote("read its documents"), rejected, undo, table),
      el("p", {}, el("a", { href: "#/ask", class: "button secondary", text: `Ask about ${kb.name}` })));
    render();
  })();

  async function upload(files, as) {
    if (!files || !files.length) return;
    const form = new FormData();
    for (const file of files) form.append("files", file, as || file.name);
    try {
      const result = await api(`/v1/knowledge-bases/${kbId}/documents`, { method: "POST", body: form });
      const refused = result.documents.filter((item) => item.status === "rejected");
      const same = result.documents.filter((item) => item.status === "unchanged");
      showRejected(refused, same);
      for (const jobId of result.job_ids) watch(jobId);
      await render();
    } catch (error) { showRejected([{ source: [...files].map((f) => f.name).join(", "), error: error.message }], []); }
  }

  function showRejected(refused, same) {
    if (!refused.length && !same.length) { rejected.replaceChildren(); return; }
    rejected.replaceChildren(el("div", { class: "note" },
      refused.length ? el("p", { text: refused.length === 1 ? "This file was not added:" : `These ${refused.length} files were not added:` }) : null,
      refused.length ? el("ul", {}, refused.map((item) => el("li", {}, el("strong", { text: item.source }), ` — ${plain(item.error)}`))) : null,
      same.length ? el("p", { text: `Already here and unchanged: ${same.map((item) => item.source).join(", ")}.` }) : null,
      el("button", { type: "button", class: "secondary small", text: "Dismiss", onclick: () => rejected.replaceChildren() })));
  }

  function watch(jobId) {
    progress.set(jobId, progress.get(jobId) || 0);
    const settle = () => { progress.delete(jobId); render(); };
    stops.push(followJob(jobId, (type, data) => {
      if (type === "progress") { progress.set(jobId, data.progress); render(); }
      if (type === "finished" || type === "failed" || type === "stopped") settle();
    }, settle));
  }

  async function remove(doc) {
    const timer = setTimeout(() => commitDelete(doc.id), UNDO_MS);
    deleting.set(doc.id, { doc, timer });
    await render();
    undo.replaceChildren(el("p", {}, `Deleted ${doc.source}. `,
      el("button", { type: "button", class: "secondary small", text: "Undo", onclick: () => {
        clearTimeout(timer);
        deleting.delete(doc.id);
        undo.replaceChildren(el("p", { text: `Kept ${doc.source}.` }));
        render();
      } })));
  }

  async function commitDelete(id) {
    const pending = deleting.get(id);
    if (!pending) return;
    deleting.delete(id);
    const sent = api(`/v1/knowledge-bases/${kbId}/documents/${id}`, { method: "DELETE" });
    inFlight.add(sent);
    try {
      await sent;
      if (undo.isConnected) undo.replaceChildren();
    } catch (error) { toast(`Could not delete ${pending.doc.source}: ${error.message}`); }
    finally { inFlight.delete(sent); }
    if (table.isConnected) render();
  }

  async function retry(doc) {
    try {
      const updated = await api(`/v1/knowledge-bases/${kbId}/documents/${doc.id}/retry`, { method: "POST" });
      if (updated.job_id) watch(updated.job_id);
      await render();
    } catch (error) { toast(error.message); }
  }

  function replacer(doc) {
    const suffix = doc.source.includes(".") ? doc.source.slice(doc.source.lastIndexOf(".")) : "";
    const input = el("input", { type: "file", accept: suffix, hidden: true });
    input.addEventListener("change", () => { if (input.files.length) upload([input.files[0]], doc.source); });
    return [input, el("button", { type: "button", class: "secondary small", text: "Replace",
      "aria-label": `Replace ${doc.source} with another file`, onclick: () => input.click() })];
  }

  async function render() {
    let docs;
    await Promise.allSettled([...inFlight]);
    try { ({ documents: docs } = await api(`/v1/knowledge-bases/${kbId}/documents`)); }
    catch (error) { table.replaceChildren(errorBox(error)); return; }
    docs = docs.filter((doc) => !deleting.has(doc.id));
    if (!docs.length) {
      table.replaceChildren(el("p", { class: "empty", text: "No documents yet." }));
      return;
    }
    table.replaceChildren(el("table", { "data-testid": "documents" },
      el("thead", {}, el("tr", {}, el("th", { text: "Document" }), el("th", { text: "Status" }),
        el("th", { class: "optional", text: "Passages" }), el("th", { text: "" }))),
      el("tbody", {}, docs.map((doc) => {
        const fraction = doc.job_id ? progress.get(doc.job_id) : undefined;
        const busy = doc.status === "queued" || doc.status === "processing";
        return el("tr", { "data-source": doc.source },
          el("td", { class: "wrap" }, el("a", { href: `#/knowledge/${kbId}/documents/${doc.id}`,
            text: doc.title || doc.source }), el("div", { class: "meta", text: doc.source })),
          el("td", {}, badge(doc.status),
            busy ? el("progress", { max: "1", value: String(fraction || 0), "aria-label": `Progress of ${doc.source}` }) : null,
            doc.error ? el("div", { class: "error", text: plain(doc.error) }) : null),
          el("td", { class: "optional", text: String(doc.chunk_count) }),
          el("td", {}, writable ? el("div", { class: "actions-cell" },
            doc.status === "failed" ? [
              el("button", { type: "button", class: "small", text: "Retry", "aria-label": `Retry ${doc.source}`,
                onclick: () => retry(doc) }),
              ...replacer(doc)] : [],
            el("button", { type: "button", class: "danger small", text: "Delete",
              "aria-label": `Delete ${doc.source}`, onclick: () => remove(doc) })) : null));
      }))));
    for (const doc of docs) {
      if ((doc.status === "queued" || doc.status === "processing") && doc.job_id && !progress.has(doc.job_id)) {
        watch(doc.job_id);
      }
    }
  }

  return () => {
    stops.forEach((stop) => stop());
    // Leaving the page ends the time to undo: the deletes happen now.
    for (const [id, pending] of deleting) { clearTimeout(pending.timer); commitDelete(id); }
  };
}

/** A server's reason in words a reader can act on. */
function plain(reason) {
  if (!reason) return "";
  const text = reason.replace(/^[A-Z][A-Za-z]+Error: /, "");
  return text.charAt(0).toUpperCase() + text.slice(1);
}
