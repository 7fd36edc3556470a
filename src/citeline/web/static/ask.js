// The Ask page: past conversations beside the open one, whose turns come back from the server
// after a reload or a visit elsewhere. A question shows the best passage's key sentences, each
// checked sentence as soon as it is verified (the raw draft beneath, dimmed), then the answer.
// While it is written the page shows the stage and the time so far, and a Stop button.

import { copyButton, renderResult } from "./answer.js";
import { historyPanel } from "./conversations.js";
import { el, errorBox, toast } from "./dom.js";
import { followJob } from "./events.js";
import { api } from "./session.js";

export { closeSource } from "./answer.js";

const CURRENT = "citeline.conversation";  // the conversation this tab has open
const PENDING = "citeline.pending";        // an answer still being written, to resume after a reload

const pending = () => { try { return JSON.parse(sessionStorage.getItem(PENDING) || "null"); } catch { return null; } };

export function askView(root) {
  const fromHash = location.hash.split("/")[2] || null;
  let conversationId = fromHash || sessionStorage.getItem(CURRENT);
  if (!fromHash && conversationId) history.replaceState(history.state, "", `#/ask/${conversationId}`);
  let busy = false;
  let stopFollowing = () => {};
  let timer = null;
  let job = null;  // the job being followed

  const select = el("select", { id: "ask-kb", required: true });
  const question = el("textarea", { id: "ask-question", required: true, maxlength: "2000", rows: "2",
    placeholder: "Ask a question about your documents" });
  const submit = el("button", { type: "submit", text: "Ask" });
  const stop = el("button", { type: "button", class: "danger", text: "Stop", hidden: true, onclick: stopAnswer });
  const thread = el("div", { class: "thread" });
  const form = el("form", { class: "composer card", onsubmit: (event) => { event.preventDefault(); ask(question.value.trim()); } },
    el("div", { class: "row" },
      el("div", { class: "grow" }, el("label", { for: "ask-kb", text: "Knowledge base" }), select)),
    el("label", { for: "ask-question", text: "Question" }), question,
    el("div", { class: "row center" }, submit, stop,
      el("span", { class: "meta keys-hint", text: "Ctrl+Enter sends" })));
  question.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); ask(question.value.trim()); }
  });
  const history_ = historyPanel(conversationId, (id) => { if (id === conversationId) startNew(); });
  const narrow = matchMedia("(max-width: 800px)").matches;
  root.append(el("div", { class: "ask-layout" },
    el("details", { class: "history-box", open: !narrow }, el("summary", {}, el("h2", { text: "Conversations" })), history_.node),
    el("section", { class: "conversation", "aria-labelledby": "ask-title" },
      el("div", { class: "row center spread" }, el("h1", { id: "ask-title", text: "Ask" }),
        el("button", { type: "button", class: "secondary", text: "New conversation", onclick: startNew })),
      thread, form)));

  function startNew() {
    sessionStorage.removeItem(CURRENT);
    if (location.hash !== "#/ask") { location.hash = "#/ask"; return; }  // the router renders afresh
    conversationId = null;
    thread.replaceChildren();
    select.disabled = false;
    question.focus();
  }

  // ---------- loading ----------

  select.replaceChildren(el("option", { value: "", text: "Loading…" }));
  submit.disabled = true;
  (async () => {
    let kbs;
    try { ({ knowledge_bases: kbs } = await api("/v1/knowledge-bases")); }
    catch (error) {
      select.replaceChildren(el("option", { value: "", text: "Unavailable" }));
      form.append(errorBox(error));
      return;
    }
    if (!kbs.length) {
      select.replaceChildren(el("option", { value: "", text: "No knowledge bases yet" }));
      form.append(el("p", { class: "empty" }, "Create one under ",
        el("a", { href: "#/knowledge", text: "Knowledge bases" }), " first."));
      return;
    }
    select.replaceChildren(...kbs.map((kb) => el("option", { value: kb.id, text: kb.name })));
    submit.disabled = false;
    if (conversationId) await openConversation(conversationId);
  })();

  async function openConversation(id) {
    thread.replaceChildren(el("p", { class: "spinner", text: "Loading the conversation" }));
    let conversation;
    try { conversation = await api(`/v1/conversations/${id}`); }
    catch (error) {
      sessionStorage.removeItem(CURRENT);
      conversationId = null;
      history.replaceState(history.state, "", "#/ask");
      thread.replaceChildren(el("p", { class: "error", role: "alert", text: error.status === 404
        ? "This conversation no longer exists: it may have been deleted. Ask a new question below."
        : `Could not load the conversation: ${error.message}` }));
      return;
    }
    sessionStorage.setItem(CURRENT, id);
    keepTo(conversation.knowledge_base_id);
    const results = await Promise.all(conversation.turns.map((turn) => turn.job_id
      ? api(`/v1/answers/${turn.job_id}/result`).catch(() => null) : null));
    thread.replaceChildren();
    conversation.turns.forEach((turn, i) => {
      const node = turnNode(turn.question);
      finish(node, results[i] || { ...turn, knowledge_base_id: conversation.knowledge_base_id,
        sentences: [], passages: [], timings: {} }, turn.question);
    });
    const waiting = pending();
    if (waiting && waiting.conversation === id) {
      if (conversation.turns.some((turn) => turn.job_id === waiting.job)) sessionStorage.removeItem(PENDING);
      else follow(waiting.job, turnNode(waiting.question), waiting.question, waiting.started);
    }
  }

  function keepTo(kbId) {
    // A conversation stays with its knowledge base: a follow-up is searched there.
    if ([...select.options].some((o) => o.value === kbId)) select.value = kbId;
    select.disabled = true;
    select.title = "A conversation stays with one knowledge base; start a new conversation to ask another";
  }

  // ---------- asking ----------

  function turnNode(text) {
    const node = el("article", { class: "turn", "data-testid": "turn" }, el("h2", { class: "question", text }));
    thread.append(node);
    return node;
  }

  async function ask(text) {
    if (!text || busy || submit.disabled) return;
    busy = true;
    submit.disabled = true;
    const turn = turnNode(text);
    try {
      const body = { query: text, knowledge_base: select.value };
      if (conversationId) body.conversation_id = conversationId;
      const accepted = await api("/v1/answers", { method: "POST",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      const started = Date.now();
      if (accepted.conversation_id && accepted.conversation_id !== conversationId) {
        conversationId = accepted.conversation_id;
        sessionStorage.setItem(CURRENT, conversationId);
        history.replaceState(history.state, "", `#/ask/${conversationId}`);
        keepTo(select.value);
        history_.refresh();
      }
      sessionStorage.setItem(PENDING, JSON.stringify({ conversation: conversationId, job: accepted.job_id,
        question: text, started }));
      follow(accepted.job_id, turn, text, started);
    } catch (error) {
      turn.append(el("p", { class: "error", role: "alert", text: `Could not ask: ${error.message}` }));
      busy = false;
      submit.disabled = false;
    }
  }

  function follow(jobId, turn, text, started) {
    busy = true;
    job = jobId;
    submit.disabled = true;
    submit.hidden = true;
    stop.hidden = false;
    const stage = el("span", { text: "Searching the documents" });
    const clock = el("span", { class: "elapsed", "aria-hidden": "true" });
    const status = el("p", { class: "stage", role: "status", "data-testid": "stage" }, stage, " · ", clock);
    const quoted = el("div", { "data-testid": "preview" });
    const label = el("p", { class: "verdict draft-label", hidden: true, text: "Draft — checking citations…" });
    const checked = el("p", { class: "answer checked", "data-testid": "checked" });
    const draft = el("div", { class: "draft", "data-testid": "draft" });
    turn.append(status, quoted, label, checked, draft);
    const tick = () => { clock.textContent = `${Math.max(0, Math.round((Date.now() - started) / 1000))} s`; };
    tick();
    timer = setInterval(tick, 1000);
    const end = () => {
      clearInterval(timer);
      status.remove();
      label.remove();
      busy = false;
      job = null;
      submit.disabled = false;
      submit.hidden = false;
      stop.hidden = true;
      const waiting = pending();
      if (waiting && waiting.job === jobId) sessionStorage.removeItem(PENDING);
    };
    const fail = (message) => {
      end();
      turn.append(el("p", { class: "error", role: "alert", text: message }));
      if (!question.value.trim()) question.value = text;  // the question stays, to edit or ask again
      history_.refresh();
    };
    stopFollowing = followJob(jobId, (type, data) => {
      if (type === "retrieval") stage.textContent = `Reading ${data.passages.length} passages`;
      if (type === "preview" && data.sentences && data.sentences.length) {
        quoted.replaceChildren(el("blockquote", { class: "passage" },
          el("div", { class: "meta", text: `While the answer is written, from ${data.sentences[0].source}:` }),
          data.sentences.map((s) => s.text).join(" … ")));
      }
      if (type === "sentence") checked.append(checked.textContent ? " " : "", data.text);
      if (type === "token") {
        if (label.hidden) {
          label.hidden = false;
          stage.textContent = "Writing the answer";
          if (question.value.trim() === text) question.value = "";  // the answer has started
        }
        draft.append(data.text);
      }
      if (type === "verifying") stage.textContent = "Checking citations";
      if (type === "complete") {
        end();
        if (question.value.trim() === text) question.value = "";
        for (const part of [quoted, checked, draft]) part.hidden = true;
        finish(turn, data, text);
        history_.refresh();
      }
      if (type === "failed") fail(`The answer failed: ${data.reason || data.error || "the job failed"}. Your question is still in the box.`);
      if (type === "stopped") fail("Stopped. Your question is still in the box: edit it or ask again.");
    }, (error) => fail(`Lost the answer's progress: ${error.message}`));
  }

  function finish(turn, result, text) {
    renderResult(turn, result);
    const actions = el("div", { class: "turn-actions" }, copyButton(result.answer || ""),
      el("button", { type: "button", class: "secondary small", text: "Regenerate",
        "aria-label": `Ask again: ${text}`, onclick: () => ask(text) }));
    turn.append(actions);
  }

  async function stopAnswer() {
    if (!job) return;
    stop.disabled = true;
    try {
      await api(`/v1/jobs/${job}/cancel`, { method: "POST" });
    } catch (error) {
      toast(error.status === 409 ? "The answer had already finished." : `Could not stop: ${error.message}`);
    } finally { stop.disabled = false; }
  }

  return () => { stopFollowing(); clearInterval(timer); };
}
