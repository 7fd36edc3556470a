// The ask view: a question, the best passage's key sentences as a preview, each verified
// sentence as soon as it is checked (the raw draft beneath, dimmed), then the verified answer
// whose citation markers open the cited passage in the side panel.

import { badge, el, errorBox } from "./dom.js";
import { followJob } from "./events.js";
import { api } from "./session.js";

export function askView(root) {
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
    el("div", { class: "row center" }, submit, el("span", { class: "meta", text: "Ctrl+Enter sends" })));
  question.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); ask(); }
  });
  root.append(el("h1", { text: "Ask" }), form, thread);

  select.replaceChildren(el("option", { value: "", text: "Loading…" }));
  submit.disabled = true;
  api("/v1/knowledge-bases").then(({ knowledge_bases: kbs }) => {
    if (!kbs.length) {
      select.replaceChildren(el("option", { value: "", text: "No knowledge bases yet" }));
      form.append(el("p", { class: "empty" }, "Create one under ",
        el("a", { href: "#/knowledge", text: "Knowledge bases" }), " first."));
      return;
    }
    select.replaceChildren(...kbs.map((kb) => el("option", { value: kb.id, text: kb.name })));
    submit.disabled = false;
  }).catch((error) => {
    select.replaceChildren(el("option", { value: "", text: "Unavailable" }));
    form.append(errorBox(error));
  });

  async function ask() {
    const text = question.value.trim();
    if (!text || submit.disabled) return;
    submit.disabled = true;
    const turn = el("article", { class: "turn" }, el("h2", { text: text }));
    const status = el("p", { class: "meta spinner", text: "Searching" });
    const quoted = el("div", { "data-testid": "preview" });
    const checked = el("p", { class: "answer", "data-testid": "checked" });
    const draft = el("div", { class: "draft", "data-testid": "draft" });
    turn.append(status, quoted, checked, draft);
    thread.append(turn);
    const fail = (message) => {
      status.classList.remove("spinner");
      status.replaceChildren(el("span", { class: "error", role: "alert", text: message }));
      submit.disabled = false;
    };
    try {
      const body = { query: text, knowledge_base: select.value };
      if (conversationId) body.conversation_id = conversationId;
      const accepted = await api("/v1/answers", { method: "POST",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      conversationId = accepted.conversation_id;
      question.value = "";
      stop = followJob(accepted.job_id, (type, data) => {
        if (type === "retrieval") status.textContent = `Found ${data.passages.length} passages; writing`;
        if (type === "preview" && data.sentences.length) {
          quoted.replaceChildren(el("blockquote", { class: "passage" },
            el("div", { class: "meta", text: `While the answer is written: ${data.sentences[0].title}` }),
            data.sentences.map((s) => s.text).join(" … ")));
        }
        if (type === "sentence") checked.append(checked.textContent ? " " : "", data.text);
        if (type === "token") draft.append(data.text);
        if (type === "complete") {
          status.classList.remove("spinner");
          quoted.hidden = true;
          checked.hidden = true;
          showAnswer(turn, status, draft, data);
          submit.disabled = false;
        }
        if (type === "failed" || type === "stopped") fail(`The answer failed: ${data.reason || type}`);
      }, (error) => fail(`Lost the answer's progress: ${error.message}`));
    } catch (error) {
      fail(`Error: ${error.message}`);
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
    turn.append(el("p", { class: "answer", "data-testid": "answer", text: result.answer }));
    if (result.passages.length) turn.append(el("h3", { text: "Closest passages" }));
    turn.append(...result.passages.map((p) => el("blockquote", { class: "passage" },
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
    for (const part of sentence.text.split(/(\[\d+\])/)) {
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

export function closeSource() {
  const panel = document.getElementById("source-panel");
  if (panel.hidden) return;
  panel.hidden = true;
  if (panelOpener && panelOpener.isConnected) panelOpener.focus();
}
