// One finished answer in the page: labelled verified or not, its sentences with citation
// buttons, a list of its sources, and the side panel that shows a cited span in its passage.

import { el, toast } from "./dom.js";

const place = (c) => (c.page !== null && c.page !== undefined ? `page ${c.page} of ${c.source}` : c.source);
const quote = (text, max = 140) => (text.length > max ? `${text.slice(0, max - 1).trimEnd()}…` : text);

/** Appends the answer `result` (an /v1/answers/{id}/result body) to `turn`. */
export function renderResult(turn, result) {
  if (result.status === "not_found") {
    turn.append(el("p", { class: "verdict not-found", "data-testid": "verdict",
      text: "No answer found in the documents" }),
      el("p", { class: "answer", "data-testid": "answer", text: result.answer }));
    if (result.passages && result.passages.length) {
      turn.append(el("h3", { text: "Closest passages" }), ...result.passages.map((p) =>
        el("blockquote", { class: "passage" }, el("div", { class: "meta", text: place(p) }), p.text)));
    }
    return;
  }
  const sentences = result.sentences || [];
  // Unsupported claims are left out of the answer (listed in `dropped`); older answers kept them.
  const left = (result.dropped || []).filter((s) => s.dropped === "unsupported");
  const unverified = [...sentences.filter((s) => s.unsupported), ...left];
  turn.append(unverified.length
    ? el("p", { class: "verdict partly", "data-testid": "verdict", text: unverified.length === 1
      ? "1 sentence could not be verified"
      : `${unverified.length} sentences could not be verified` })
    : el("p", { class: "verdict verified", "data-testid": "verdict",
      text: "Verified: every sentence cited" }));

  const byMarker = new Map(result.citations.map((c) => [c.marker, c]));
  const passages = new Map((result.passages || []).map((p) => [p.chunk_id, p]));
  const buttons = [];
  const cite = (marker) => {
    const citation = byMarker.get(marker);
    const button = el("button", { type: "button", class: "cite", "data-marker": String(marker),
      "aria-label": `Source ${marker}: ${place(citation)}`, text: String(marker),
      onclick: () => openSource(citation, passages.get(citation.chunk_id), result, button) });
    buttons.push(button);
    return button;
  };
  const withMarkers = (text) => text.split(/(\[\d+\])/).map((part) => {
    const match = /^\[(\d+)\]$/.exec(part);
    return match && byMarker.has(Number(match[1])) ? cite(Number(match[1])) : part;
  });

  const answer = el("p", { class: "answer", "data-testid": "answer" });
  if (!sentences.length) {
    answer.append(...withMarkers(result.answer));
  } else {
    let cursor = 0;
    for (const sentence of sentences) {
      answer.append(result.answer.slice(cursor, sentence.start));
      if (sentence.unsupported) {
        answer.append(el("span", { class: "unsupported" }, ...withMarkers(sentence.text)),
          el("span", { class: "unsupported-note", text: " (not verified: no passage supports this)" }));
      } else {
        answer.append(el("span", {}, ...withMarkers(sentence.text)));
      }
      cursor = sentence.end;
    }
    answer.append(result.answer.slice(cursor));
  }
  turn.append(answer);
  if (left.length) {
    turn.append(el("div", { class: "left-out", "data-testid": "left-out" },
      el("p", { class: "meta", text: left.length === 1
        ? "Left out of the answer, because no passage supports it:"
        : "Left out of the answer, because no passage supports them:" }),
      el("ul", {}, left.map((s) => el("li", { class: "unsupported", text: s.text })))));
  }

  if (result.citations.length) {
    turn.append(el("h3", { class: "sources-title", text: "Sources" }),
      el("ol", { class: "sources", "data-testid": "sources" }, result.citations.map((c) =>
        el("li", { value: String(c.marker) },
          el("button", { type: "button", class: "link", text: place(c),
            onclick: () => buttons.find((b) => b.dataset.marker === String(c.marker))?.click() }),
          el("q", { text: quote(c.text) })))));
  }
  const timing = result.timings && result.timings.total_ms
    ? `Answered in ${(result.timings.total_ms / 1000).toFixed(1)} s` : "Answered";
  turn.append(el("p", { class: "meta", text: result.model ? `${timing} by ${result.model}` : timing }));
}

/** A Copy button for the answer's text, markers left out. */
export function copyButton(text) {
  return el("button", { type: "button", class: "secondary small", text: "Copy", onclick: async () => {
    try {
      await navigator.clipboard.writeText(text.replace(/\s*\[\d+\]/g, ""));
      toast("Copied the answer");
    } catch (error) { toast(`Could not copy: ${error.message}`); }
  } });
}

// ---------- source panel ----------

let panelOpener = null;

function openSource(citation, passage, result, button) {
  const panel = document.getElementById("source-panel");
  for (const active of document.querySelectorAll(".cite.active")) {
    active.classList.remove("active");
    active.removeAttribute("aria-pressed");
  }
  button.classList.add("active");
  button.setAttribute("aria-pressed", "true");
  panelOpener = button;
  document.getElementById("source-title").textContent = `Source ${citation.marker}: ${citation.title}`;
  document.getElementById("source-meta").textContent = `Quoted from ${place(citation)}`;
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
  const link = document.getElementById("source-link");
  link.href = `#/knowledge/${result.knowledge_base_id}/documents/${citation.document_id}`;
  panel.hidden = false;
  document.body.classList.add("panel-open");
  document.getElementById("source-close").focus();
}

export function closeSource() {
  const panel = document.getElementById("source-panel");
  if (panel.hidden) return;
  panel.hidden = true;
  document.body.classList.remove("panel-open");
  for (const active of document.querySelectorAll(".cite.active")) {
    active.classList.remove("active");
    active.removeAttribute("aria-pressed");
  }
  if (panelOpener && panelOpener.isConnected) panelOpener.focus();
}
