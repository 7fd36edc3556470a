// The history of past conversations beside the Ask page: open, search by title, rename, delete.

import { el, errorBox, toast } from "./dom.js";
import { api } from "./session.js";

const when = (iso) => {
  const date = new Date(iso);
  return date.toDateString() === new Date().toDateString()
    ? date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : date.toLocaleDateString();
};

/** The history panel; `onDeleted(id)` runs after a conversation is deleted. */
export function historyPanel(activeId, onDeleted) {
  const search = el("input", { type: "search", id: "history-search", autocomplete: "off",
    placeholder: "Search by title" });
  const list = el("ul", { class: "history-list", "aria-live": "polite" });
  const node = el("nav", { class: "history", "aria-label": "Conversations" },
    el("label", { for: "history-search", class: "visually-hidden", text: "Search conversations" }),
    search, list);
  let timer = null;
  let renaming = false;  // a title being edited is not redrawn under the person typing it
  search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(refresh, 250); });

  async function refresh() {
    if (renaming) return;
    const query = search.value.trim();
    try {
      const { conversations } = await api(`/v1/conversations${query ? `?title=${encodeURIComponent(query)}` : ""}`);
      // A rename may have begun while this list was on its way: it must not be drawn over.
      if (renaming) return;
      if (!conversations.length) {
        list.replaceChildren(el("li", { class: "empty",
          text: query ? "No conversation has that in its title." : "Your conversations will be listed here." }));
        return;
      }
      list.replaceChildren(...conversations.map(item));
    } catch (error) { if (!renaming) list.replaceChildren(el("li", {}, errorBox(error))); }
  }

  function item(conversation) {
    const title = conversation.title || "Untitled";
    const link = el("a", { href: `#/ask/${conversation.id}`, class: "history-link",
      "aria-current": conversation.id === activeId ? "page" : null },
      el("span", { class: "history-title", text: title }),
      el("span", { class: "meta", text: when(conversation.updated_at) }));
    const row = el("li", { "data-conversation": conversation.id }, link,
      el("div", { class: "history-actions" },
        el("button", { type: "button", class: "secondary small", text: "Rename",
          "aria-label": `Rename ${title}`, onclick: () => rename(row, conversation) }),
        el("button", { type: "button", class: "danger small", text: "Delete",
          "aria-label": `Delete ${title}`, onclick: () => remove(conversation) })));
    return row;
  }

  const done = () => { renaming = false; refresh(); };

  function rename(row, conversation) {
    renaming = true;
    const input = el("input", { type: "text", value: conversation.title, maxlength: "200",
      "aria-label": "New title", required: true });
    const form = el("form", { class: "rename", onsubmit: async (event) => {
      event.preventDefault();
      try {
        await api(`/v1/conversations/${conversation.id}`, { method: "PATCH",
          headers: { "Content-Type": "application/json" }, body: JSON.stringify({ title: input.value }) });
        toast("Renamed the conversation");
      } catch (error) { toast(error.message); }
      done();
    } }, input,
    el("button", { type: "submit", class: "small", text: "Save" }),
    el("button", { type: "button", class: "secondary small", text: "Cancel", onclick: done }));
    input.addEventListener("keydown", (event) => { if (event.key === "Escape") { event.stopPropagation(); done(); } });
    row.replaceChildren(form);
    input.focus();
    input.select();
  }

  async function remove(conversation) {
    if (!confirm(`Delete the conversation “${conversation.title || "Untitled"}”? This cannot be undone.`)) return;
    try {
      await api(`/v1/conversations/${conversation.id}`, { method: "DELETE" });
      toast("Deleted the conversation");
      onDeleted(conversation.id);
    } catch (error) { toast(error.message); }
    refresh();
  }

  refresh();
  return { node, refresh };
}
