// The Assistant page: conversations beside the open one; a reply streams in, each tool call
// shows as it runs (name, arguments, result, duration), a call that needs approval gets
// Approve and Deny buttons, and the reply's citations open the cited document span or the
// quoted part of a tool's result in the side panel.

import { closeSource } from "./answer.js";
import { el, errorBox, toast } from "./dom.js";
import { followJob } from "./events.js";
import { api, canWrite } from "./session.js";

const CURRENT = "citeline.assistant";  // the conversation this tab has open
const json = (body) => ({ method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
const short = (text, max = 600) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

export function assistantView(root) {
  let conversationId = location.hash.split("/")[2] || sessionStorage.getItem(CURRENT);
  let stopFollowing = () => {};
  let busy = false;

  const list = el("ul", { class: "history-list", "aria-live": "polite" });
  const kbs = el("fieldset", { class: "kb-choice" }, el("legend", { text: "Knowledge bases it may search" }));
  const thread = el("div", { class: "thread", "data-testid": "assistant-thread" });
  const message = el("textarea", { id: "assistant-message", rows: "2", required: true,
    placeholder: "Ask the assistant" });
  const send = el("button", { type: "submit", text: "Send" });
  const stop = el("button", { type: "button", class: "danger", text: "Stop", hidden: true });
  const form = el("form", { class: "composer card", onsubmit: (event) => { event.preventDefault(); submit(); } },
    kbs, el("label", { for: "assistant-message", text: "Message" }), message,
    el("div", { class: "row center" }, send, stop));
  message.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); submit(); }
  });
  if (!canWrite()) { send.disabled = true; message.disabled = true; }
  root.append(el("div", { class: "ask-layout" },
    el("details", { class: "history-box", open: true },
      el("summary", {}, el("h2", { text: "Conversations" })),
      el("nav", { class: "history", "aria-label": "Assistant conversations" }, list)),
    el("section", { class: "conversation", "aria-labelledby": "assistant-title" },
      el("div", { class: "row center spread" }, el("h1", { id: "assistant-title", text: "Assistant" }),
        el("button", { type: "button", class: "secondary", text: "New conversation", onclick: startNew })),
      thread, form)));

  async function refreshList() {
    try {
      const { conversations } = await api("/v1/assistant/conversations");
      list.replaceChildren(...(conversations.length ? conversations.map((c) => el("li", {},
        el("a", { href: `#/assistant/${c.id}`, class: "history-link",
          "aria-current": c.id === conversationId ? "page" : undefined, text: c.title || "Untitled" }),
        el("button", { type: "button", class: "secondary small", text: "Delete",
          "aria-label": `Delete ${c.title || "Untitled"}`, onclick: () => remove(c.id) })))
        : [el("li", { class: "empty", text: "Your conversations with the assistant will be listed here." })]));
    } catch (error) { list.replaceChildren(el("li", {}, errorBox(error))); }
  }

  async function remove(id) {
    if (!confirm("Delete this conversation?")) return;
    try {
      await api(`/v1/assistant/conversations/${id}`, { method: "DELETE" });
      if (id === conversationId) startNew();
      refreshList();
    } catch (error) { toast(`Could not delete: ${error.message}`); }
  }

  function startNew() {
    sessionStorage.removeItem(CURRENT);
    if (location.hash !== "#/assistant") { location.hash = "#/assistant"; return; }
    conversationId = null;
    thread.replaceChildren();
    kbs.disabled = false;
    message.focus();
  }

  // ---------- loading ----------

  (async () => {
    try {
      const { knowledge_bases: found } = await api("/v1/knowledge-bases");
      kbs.append(...found.map((kb) => el("label", { class: "check" },
        el("input", { type: "checkbox", value: kb.id, name: "kb" }), ` ${kb.name}`)));
      if (!found.length) kbs.append(el("p", { class: "meta", text: "No knowledge bases yet: the assistant can still use its tools." }));
    } catch (error) { kbs.append(errorBox(error)); }
    refreshList();
    if (conversationId) openConversation(conversationId);
  })();

  async function openConversation(id) {
    let conversation;
    try { conversation = await api(`/v1/assistant/conversations/${id}`); }
    catch (error) {
      sessionStorage.removeItem(CURRENT);
      conversationId = null;
      thread.replaceChildren(el("p", { class: "error", role: "alert", text: error.status === 404
        ? "This conversation no longer exists. Start a new one below." : `Could not load it: ${error.message}` }));
      return;
    }
    sessionStorage.setItem(CURRENT, id);
    for (const box of kbs.querySelectorAll("input")) box.checked = conversation.knowledge_base_ids.includes(box.value);
    kbs.disabled = true;
    thread.replaceChildren();
    let turn = null;
    for (const m of conversation.messages) {
      if (m.role === "user") {
        turn = turnNode(m.content);
        if (m.run_id) {
          const run = await api(`/v1/assistant/runs/${m.run_id}`).catch(() => null);
          for (const call of run ? run.tool_calls : []) {
            const item = showCall(turn, call);
            if (call.status === "pending") askApproval(item, run.id);  // waiting since before the reload
          }
          if (run && !["complete", "error", "cancelled"].includes(run.state)) follow(turn, run.id, run.job_id);
        }
      } else if (turn) {
        reply(turn).replaceChildren(...withCitations(m.content, m.citations));
        sources(turn, m.citations);
      }
    }
  }

  // ---------- a turn ----------

  function turnNode(text) {
    const node = el("article", { class: "turn", "data-testid": "assistant-turn" },
      el("h2", { class: "question", text }), el("ol", { class: "tool-calls", "data-testid": "tool-calls" }));
    thread.append(node);
    return node;
  }

  function reply(turn) {
    let node = turn.querySelector(".answer");
    if (!node) { node = el("p", { class: "answer", "data-testid": "assistant-reply" }); turn.append(node); }
    return node;
  }

  function showCall(turn, call) {
    const id = call.call_id || call.tool_call_id;
    const item = el("li", { class: "tool-call", "data-testid": "tool-call", "data-call": id },
      el("strong", { text: call.name }), " ",
      el("code", { class: "arguments", text: JSON.stringify(call.arguments || {}) }),
      el("span", { class: "meta status", text: call.status ? ` ${call.status}` : " running…" }));
    turn.querySelector(".tool-calls").append(item);
    if (call.result !== undefined && call.result !== null) showResult(item, call.result, call.duration_ms, call.is_error);
    return item;
  }

  function showResult(item, text, ms, isError) {
    item.querySelector(".status").textContent = ` ${isError ? "failed" : "done"} in ${ms ?? "?"} ms`;
    for (const button of item.querySelectorAll("button")) button.remove();
    item.append(el("pre", { class: isError ? "tool-result error" : "tool-result", "data-testid": "tool-result",
      text: short(text) }));
  }

  function askApproval(item, runId) {
    item.querySelector(".status").textContent = " waiting for your approval";
    const decide = async (verb) => {
      try { await api(`/v1/assistant/runs/${runId}/${verb}`, { method: "POST" }); }
      catch (error) { toast(`Could not ${verb}: ${error.message}`); return; }
      item.querySelector(".status").textContent = verb === "approve" ? " approved, running…" : " denied";
      for (const button of item.querySelectorAll("button")) button.remove();
    };
    item.append(" ", el("button", { type: "button", class: "small", text: "Approve", onclick: () => decide("approve") }),
      " ", el("button", { type: "button", class: "secondary small", text: "Deny", onclick: () => decide("deny") }));
  }

  async function submit() {
    const text = message.value.trim();
    if (!text || busy) return;
    busy = true;
    send.disabled = true;
    const turn = turnNode(text);
    try {
      if (!conversationId) {
        const chosen = [...kbs.querySelectorAll("input:checked")].map((box) => box.value);
        const made = await api("/v1/assistant/conversations", json({ knowledge_bases: chosen }));
        conversationId = made.id;
        sessionStorage.setItem(CURRENT, conversationId);
        history.replaceState(history.state, "", `#/assistant/${conversationId}`);
        kbs.disabled = true;
      }
      const run = await api(`/v1/assistant/conversations/${conversationId}/messages`, json({ content: text }));
      message.value = "";
      refreshList();
      follow(turn, run.run_id, run.job_id);
    } catch (error) {
      turn.append(el("p", { class: "error", role: "alert", text: `Could not send: ${error.message}` }));
      busy = false;
      send.disabled = false;
    }
  }

  function follow(turn, runId, jobId) {
    busy = true;
    send.disabled = true;
    stop.hidden = false;
    stop.onclick = async () => {
      try { await api(`/v1/assistant/runs/${runId}/cancel`, { method: "POST" }); }
      catch (error) { toast(error.status === 409 ? "The reply had already ended." : `Could not stop: ${error.message}`); }
    };
    const stage = el("p", { class: "stage", role: "status", "data-testid": "assistant-stage", text: "Thinking" });
    turn.insertBefore(stage, turn.querySelector(".tool-calls").nextSibling);
    const calls = new Map([...turn.querySelectorAll(".tool-call")].map((item) => [item.dataset.call, item]));
    const end = () => { stage.remove(); busy = false; send.disabled = !canWrite(); stop.hidden = true; };
    stopFollowing = followJob(jobId, (type, data) => {
      const meta = data.metadata || {};
      if (type === "thinking") stage.textContent = data.content;
      if (type === "token") reply(turn).append(data.content);
      if (type === "tool_request" && !calls.has(meta.tool_call_id)) {
        const item = showCall(turn, { call_id: meta.tool_call_id, name: meta.name, arguments: meta.arguments });
        calls.set(meta.tool_call_id, item);
        if (meta.needs_approval) askApproval(item, runId);
      }
      if (type === "tool_result") {
        const item = calls.get(meta.tool_call_id);
        if (item) showResult(item, data.content, meta.duration_ms, meta.is_error);
      }
      if (type === "error") turn.append(el("p", { class: "error", role: "alert", text: data.content }));
      if (type === "complete") {
        reply(turn).replaceChildren(...withCitations(data.content, meta.citations || []));
        sources(turn, meta.citations || []);
      }
      if (type === "stopped") turn.append(el("p", { class: "meta", text: "Stopped." }));
      if (type === "failed") turn.append(el("p", { class: "error", role: "alert", text: `The reply failed: ${data.error || data.reason || "the job failed"}` }));
      if (["finished", "failed", "stopped"].includes(type)) { end(); refreshList(); }
    }, (error) => { end(); turn.append(errorBox(error)); });
  }

  return () => { stopFollowing(); };
}

// ---------- citations ----------

const label = (c) => (c.kind === "tool" ? `${c.tool} (call ${c.tool_call_id})`
  : c.page !== null && c.page !== undefined ? `page ${c.page} of ${c.source}` : (c.source || c.title));

function citeButton(citation) {
  const button = el("button", { type: "button", class: "cite", "data-marker": String(citation.marker),
    "aria-label": `Source ${citation.marker}: ${label(citation)}`, text: String(citation.marker) });
  button.addEventListener("click", () => openPanel(citation, button));
  return button;
}

function withCitations(text, citations) {
  const byMarker = new Map(citations.map((c) => [String(c.marker), c]));
  const parts = text.split(/(\[T?\d+\])/).map((part) => {
    const match = /^\[(T?\d+)\]$/.exec(part);
    return match && byMarker.has(match[1]) ? citeButton(byMarker.get(match[1])) : part;
  });
  // A claim a tool's result supports carries no marker in the text: its button follows it.
  for (const c of citations) {
    if (c.kind === "tool" && !text.includes(`[${c.marker}]`)) parts.push(" ", citeButton(c));
  }
  return parts;
}

function sources(turn, citations) {
  turn.querySelector(".sources")?.remove();
  if (!citations.length) return;
  turn.append(el("ol", { class: "sources", "data-testid": "sources" }, citations.map((c) =>
    el("li", {}, el("span", { class: "meta", text: `[${c.marker}] ${c.kind === "tool" ? "tool result" : "document"}: ${label(c)} ` }),
      el("q", { text: short(c.quote || c.text || "", 140) })))));
}

function openPanel(citation, button) {
  closeSource();
  const panel = document.getElementById("source-panel");
  for (const active of document.querySelectorAll(".cite.active")) active.classList.remove("active");
  button.classList.add("active");
  const tool = citation.kind === "tool";
  document.getElementById("source-title").textContent = tool
    ? `Source ${citation.marker}: the result of ${citation.tool}` : `Source ${citation.marker}: ${citation.title}`;
  document.getElementById("source-meta").textContent = tool
    ? `Quoted from tool call ${citation.tool_call_id}` : `Quoted from ${label(citation)}`;
  document.getElementById("source-text").replaceChildren(
    el("mark", { "data-testid": "cited-span", text: tool ? citation.quote : citation.text }));
  const link = document.getElementById("source-link");
  link.hidden = tool || !citation.knowledge_base_id;
  if (!link.hidden) link.href = `#/knowledge/${citation.knowledge_base_id}/documents/${citation.document_id}`;
  panel.hidden = false;
  document.body.classList.add("panel-open");
  document.getElementById("source-close").focus();
}
