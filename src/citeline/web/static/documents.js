// One document as it was indexed: its extracted text with its headings, page starts and the
// boundaries of the passages that search and answers cite. Document text only ever goes into
// the page as text (textContent), never as markup, whatever its format.

import { badge, el, errorBox } from "./dom.js";
import { api } from "./session.js";

const HEADING = /^(#{1,6})\s+(.*)$/;

export function documentView(root, kbId, documentId) {
  const body = el("div", {}, el("p", { class: "spinner", text: "Loading the document" }));
  const back = el("a", { href: `#/knowledge/${kbId}`, text: "← Back to the knowledge base" });
  root.append(el("p", {}, back), body);
  (async () => {
    let kb = null;
    try { kb = await api(`/v1/knowledge-bases/${kbId}`); back.textContent = `← Back to ${kb.name}`; }
    catch { /* the preview below says what is wrong */ }
    let preview;
    try { preview = await api(`/v1/knowledge-bases/${kbId}/documents/${documentId}/preview`); }
    catch (error) {
      let doc = null;
      try { doc = await api(`/v1/knowledge-bases/${kbId}/documents/${documentId}`); } catch { /* gone */ }
      body.replaceChildren(...[el("h1", { text: doc ? doc.title || doc.source : "Document" }),
        doc ? el("p", {}, badge(doc.status)) : null,
        el("p", { class: "error", role: "alert", text: error.status === 409 ? error.message
          : error.status === 404 ? "This document no longer exists." : `Could not show the document: ${error.message}` }),
        doc ? original(kbId, documentId) : null].filter(Boolean));
      return;
    }
    const doc = preview.document;
    const pages = preview.page_starts && preview.page_starts.length > 1 ? preview.page_starts.length : null;
    body.replaceChildren(...[
      el("h1", { text: doc.title || doc.source }),
      el("p", { class: "meta" }, badge(doc.status), ` ${doc.source} · ${preview.chunks.length} passages`,
        pages ? ` · ${pages} pages` : ""),
      doc.error ? el("p", { class: "error", text: doc.error }) : null,
      el("p", {}, original(kbId, documentId)),
      el("article", { class: "card preview", "data-testid": "preview", "aria-label": `Text of ${doc.source}` },
        ...segments(preview)),
      preview.truncated ? el("p", { class: "note", text: "The preview stops here; the document is longer. Download the original to read the rest." }) : null,
    ].filter(Boolean));
  })();
}

function original(kbId, documentId) {
  return el("a", { href: `/v1/knowledge-bases/${kbId}/documents/${documentId}/file`, "data-file": true,
    class: "button secondary", text: "Open or download the original" });
}

/** The text cut where each passage and each page starts, each piece under its marker. */
function segments(preview) {
  const { text } = preview;
  const cuts = new Map();
  (preview.page_starts || []).forEach((start, i) => {
    if (preview.page_starts.length > 1) cuts.set(start, { page: i + 1 });
  });
  for (const chunk of preview.chunks) {
    // A passage may start at a heading's words: its mark goes before the heading's "#".
    const lineStart = text.lastIndexOf("\n", chunk.start - 1) + 1;
    const at = /^#{1,6}\s+$/.test(text.slice(lineStart, chunk.start)) ? lineStart : chunk.start;
    cuts.set(at, { ...(cuts.get(at) || {}), chunk });
  }
  const starts = [...cuts.keys()].filter((s) => s < text.length).sort((a, b) => a - b);
  if (!starts.length || starts[0] > 0) starts.unshift(0);
  const out = [];
  starts.forEach((start, i) => {
    const mark = cuts.get(start) || {};
    if (mark.page) out.push(el("div", { class: "page-mark", text: `Page ${mark.page}` }));
    if (mark.chunk) {
      const where = mark.chunk.heading_path.length ? ` · ${mark.chunk.heading_path.join(" › ")}` : "";
      out.push(el("div", { class: "chunk-mark", "data-testid": "chunk-mark",
        text: `Passage ${mark.chunk.ordinal + 1}${where}` }));
    }
    out.push(...lines(text.slice(start, starts[i + 1] ?? text.length)));
  });
  return out;
}

function lines(piece) {
  const out = [];
  let para = [];
  const flush = () => { if (para.length) out.push(el("p", { class: "preview-text", text: para.join("\n") })); para = []; };
  for (const line of piece.split("\n")) {
    const heading = HEADING.exec(line);
    if (heading) {
      flush();
      out.push(el(`h${Math.min(6, heading[1].length + 1)}`, { class: "preview-heading", text: heading[2] }));
    } else if (!line.trim()) {
      flush();
    } else para.push(line);
  }
  flush();
  return out;
}
