// Activity: what the workers are doing, in words ("Indexing garden.md into Research"), failures
// first with their reasons, filters, a link to what each job is about, and the raw job one
// click away for operators. Refreshed every two seconds; members and above can cancel.

import { el, errorBox, readOnlyNote, toast } from "./dom.js";
import { api, canWrite } from "./session.js";

const STATES = { queued: "Waiting", scheduled: "Waiting to retry", started: "Running", finished: "Done",
  failed: "Failed", stopped: "Stopped" };
const RUNNING = new Set(["queued", "scheduled", "started"]);
const GROUPS = { knowledge: "Indexing documents", answers: "Answering questions", reports: "Writing reports",
  llm: "Model requests" };

const group = (kind) => kind.split(".")[0];
const short = (text, max = 60) => (text.length > max ? `${text.slice(0, max - 1).trimEnd()}…` : text);

function ago(iso) {
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return new Date(iso).toLocaleDateString();
}

/** A job's reason in plain words: no exception class in front of it. */
const reason = (error) => {
  const text = (error || "").replace(/^([A-Z][A-Za-z]+)(Error|Exception|Document|Input|Unavailable)?: /, "");
  return text.charAt(0).toUpperCase() + text.slice(1);
};

export function jobsView(root) {
  const writable = canWrite();
  const list = el("div", { "aria-live": "polite" }, el("p", { class: "spinner", text: "Loading" }));
  const show = el("select", { id: "activity-state" },
    el("option", { value: "", text: "Everything" }), el("option", { value: "failed", text: "Failures" }),
    el("option", { value: "running", text: "Waiting or running" }), el("option", { value: "finished", text: "Done" }));
  const kind = el("select", { id: "activity-kind" }, el("option", { value: "", text: "All kinds" }),
    Object.entries(GROUPS).map(([value, text]) => el("option", { value, text })));
  root.append(el("h1", { text: "Activity" }));
  if (!writable) root.append(readOnlyNote("follow the activity"));
  root.append(el("div", { class: "row filters" },
    el("div", {}, el("label", { for: "activity-state", text: "Show" }), show),
    el("div", {}, el("label", { for: "activity-kind", text: "Kind" }), kind)),
  el("div", { class: "card" }, list));
  show.addEventListener("change", () => refresh());
  kind.addEventListener("change", () => refresh());

  let stopped = false;
  let names = { documents: new Map(), kbs: new Map(), loadedAt: 0 };
  const open = new Set();  // jobs whose details are shown, kept across refreshes

  async function loadNames() {
    const { knowledge_bases: kbs } = await api("/v1/knowledge-bases");
    const lists = await Promise.all(kbs.map((kb) => api(`/v1/knowledge-bases/${kb.id}/documents`)
      .then((body) => body.documents).catch(() => [])));
    names = { documents: new Map(lists.flat().map((d) => [d.id, d])), kbs: new Map(kbs.map((kb) => [kb.id, kb])),
      loadedAt: Date.now() };
  }

  function describe(job) {
    const args = job.args || {};
    if (job.kind === "knowledge.ingest") {
      const doc = names.documents.get(args.document_id);
      const kb = doc && names.kbs.get(doc.knowledge_base_id);
      return {
        text: doc ? `Indexing ${doc.source}${kb ? ` into ${kb.name}` : ""}` : "Indexing a document that was since deleted",
        href: doc ? `#/knowledge/${doc.knowledge_base_id}/documents/${doc.id}` : null,
        link: "Open the document",
      };
    }
    if (job.kind === "answers.answer") {
      return { text: `Answering “${short(args.query || "a question")}”`,
        href: args.conversation_id ? `#/ask/${args.conversation_id}` : null, link: "Open the conversation" };
    }
    if (group(job.kind) === "reports") {
      const what = { "reports.plan": "Planning a report", "reports.section": "Writing a section of a report",
        "reports.assemble": "Putting a report together", "reports.rerun": "Writing report sections again" }[job.kind];
      return { text: what || "Working on a report", href: args.report_id ? `#/reports/${args.report_id}` : null,
        link: "Open the report" };
    }
    if (group(job.kind) === "llm") return { text: "A request to a model", href: null };
    if (job.kind === "assistant.run") {
      return { text: "The assistant writing a reply", href: args.conversation_id
        ? `#/assistant/${args.conversation_id}` : null, link: "Open the conversation" };
    }
    return { text: job.kind, href: null };
  }

  function card(job) {
    const about = describe(job);
    const details = el("details", { class: "raw", open: open.has(job.id),
      ontoggle: () => { if (details.open) open.add(job.id); else open.delete(job.id); } },
      el("summary", { text: "Details for operators" }),
      el("dl", {},
        ["id", "kind", "queue", "attempt", "created_at", "started_at", "finished_at"].flatMap((key) => [
          el("dt", { text: key }), el("dd", { text: key === "attempt" ? `${job.attempt} of ${job.max_attempts}` : String(job[key] ?? "—") })]),
        el("dt", { text: "args" }), el("dd", {}, el("code", { text: JSON.stringify(job.args) })),
        job.error ? [el("dt", { text: "error" }), el("dd", {}, el("code", { text: job.error }))] : []));
    return el("li", { class: `activity s-row-${job.state}`, "data-job": job.id, "data-kind": job.kind },
      el("div", { class: "activity-head" },
        el("span", { class: `badge s-${job.state}`, text: STATES[job.state] || job.state }),
        el("span", { class: "activity-what", text: about.text })),
      job.state === "failed" && job.error ? el("p", { class: "error", text: reason(job.error) }) : null,
      RUNNING.has(job.state) ? el("div", {},
        el("progress", { max: "1", value: String(job.progress), "aria-label": `Progress: ${about.text}` }),
        job.progress_message ? el("span", { class: "meta", text: ` ${job.progress_message}` }) : null) : null,
      el("div", { class: "activity-foot" },
        el("span", { class: "meta", text: ago(job.created_at) }),
        about.href ? el("a", { href: about.href, text: about.link }) : null,
        writable && RUNNING.has(job.state) ? el("button", { type: "button", class: "danger small", text: "Cancel",
          "aria-label": `Cancel: ${about.text}`, onclick: async () => {
            try { await api(`/v1/jobs/${job.id}/cancel`, { method: "POST" }); refresh(); }
            catch (error) { toast(error.status === 409 ? "It had already ended." : error.message); }
          } }) : null),
      details);
  }

  async function refresh() {
    try {
      const { jobs } = await api("/v1/jobs?limit=100");
      if (stopped) return;
      const unknown = jobs.some((j) => j.kind === "knowledge.ingest" && !names.documents.has((j.args || {}).document_id));
      if (!names.loadedAt || (unknown && Date.now() - names.loadedAt > 5000)) await loadNames().catch(() => {});
      const shown = jobs.filter((job) => (!kind.value || group(job.kind) === kind.value)
        && (!show.value || (show.value === "running" ? RUNNING.has(job.state) : job.state === show.value)));
      // Failures first, then the newest.
      shown.sort((a, b) => (b.state === "failed") - (a.state === "failed") || Date.parse(b.created_at) - Date.parse(a.created_at));
      if (!shown.length) {
        list.replaceChildren(el("p", { class: "empty", text: jobs.length ? "Nothing matches these filters." : "Nothing has happened yet." }));
        return;
      }
      list.replaceChildren(el("ul", { class: "activity-list", "data-testid": "activity" }, shown.map(card)));
    } catch (error) { if (!stopped) list.replaceChildren(errorBox(error)); }
  }
  refresh();
  const timer = setInterval(refresh, 2000);
  return () => { stopped = true; clearInterval(timer); };
}
