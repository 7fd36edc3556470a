// Jobs: the latest fifty, refreshed every two seconds, cancellable by members and above.

import { badge, el, errorBox, readOnlyNote, toast } from "./dom.js";
import { api, canWrite } from "./session.js";

export function jobsView(root) {
  const writable = canWrite();
  const list = el("div", { "aria-live": "polite" }, el("p", { class: "spinner", text: "Loading" }));
  root.append(el("h1", { text: "Jobs" }));
  if (!writable) root.append(readOnlyNote("follow the jobs"));
  root.append(el("div", { class: "card" }, list));
  let stopped = false;
  async function refresh() {
    try {
      const { jobs } = await api("/v1/jobs?limit=50");
      if (stopped) return;
      if (!jobs.length) { list.replaceChildren(el("p", { class: "empty", text: "No jobs yet." })); return; }
      list.replaceChildren(el("table", {},
        el("thead", {}, el("tr", {}, el("th", { text: "Kind" }), el("th", { text: "State" }),
          el("th", { text: "Progress" }), el("th", { class: "optional", text: "Created" }), el("th", { text: "" }))),
        el("tbody", {}, jobs.map((job) => el("tr", {},
          el("td", {}, job.kind, el("div", { class: "meta", text: job.id })),
          el("td", {}, badge(job.state), job.error ? el("div", { class: "error", text: job.error }) : null),
          el("td", {}, el("progress", { max: "1", value: String(job.progress), "aria-label": `Progress of job ${job.id}` }),
            job.progress_message ? el("div", { class: "meta", text: job.progress_message }) : null),
          el("td", { class: "optional", text: new Date(job.created_at).toLocaleString() }),
          el("td", {}, writable && ["queued", "scheduled", "started"].includes(job.state)
            ? el("button", { type: "button", class: "danger", text: "Cancel", "aria-label": `Cancel job ${job.id}`,
              onclick: async () => {
                try { await api(`/v1/jobs/${job.id}/cancel`, { method: "POST" }); refresh(); }
                catch (error) { toast(error.message); }
              } }) : null))))));
    } catch (error) { if (!stopped) list.replaceChildren(errorBox(error)); }
  }
  refresh();
  const timer = setInterval(refresh, 2000);
  return () => { stopped = true; clearInterval(timer); };
}
