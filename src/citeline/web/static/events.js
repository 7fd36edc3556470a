// A job's Server-Sent Events, read with fetch() because EventSource cannot send the
// Authorization header. After a dropped connection it reconnects with Last-Event-ID, and
// events already seen are skipped, so none is lost or shown twice.

import { ApiError, request, toError } from "./session.js";

const TERMINAL = new Set(["finished", "failed", "stopped"]);
const MAX_RETRY_MS = 15_000;

/** Calls `onEvent(type, data, event)` for each event of the job, in order, until a terminal
 * event or until the returned function is called; `onError(error)` if the stream cannot be
 * followed at all (the job does not exist, or the session ended). */
export function followJob(jobId, onEvent, onError = () => {}) {
  const controller = new AbortController();
  let last = 0;
  let retryMs = 1000;
  let failures = 0;
  let done = false;
  const stop = () => { done = true; controller.abort(); };

  function dispatch(message) {
    const seq = Number(message.id);
    if (seq && seq <= last) return;
    last = seq || last;
    failures = 0;
    try {
      const event = JSON.parse(message.data);
      onEvent(message.type, event.data || {}, event);
    } catch (error) {
      reportError(error);  // a bug in a view; the stream itself is fine
    }
    if (TERMINAL.has(message.type)) stop();
  }

  async function readOnce() {
    const headers = { Accept: "text/event-stream" };
    if (last) headers["Last-Event-ID"] = String(last);
    const response = await request(`/v1/jobs/${jobId}/events`, { headers, signal: controller.signal });
    if (!response.ok) {
      const error = await toError(response);
      error.retryable = response.status >= 500 || response.status === 429;
      throw error;
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let message = { id: "", type: "message", data: [] };
    for (;;) {
      const { value, done: ended } = await reader.read();
      if (ended) return;  // an event cut off mid-way is dropped and asked for again
      buffer += value;
      // A trailing "\r" may be the first half of "\r\n": it waits for the next chunk.
      const lines = buffer.split(/\r\n|\r(?!$)|\n/);
      buffer = lines.pop();
      for (const line of lines) {
        if (line === "") {
          if (message.data.length) dispatch({ ...message, data: message.data.join("\n") });
          message = { id: "", type: "message", data: [] };
          if (done) return;
          continue;
        }
        if (line.startsWith(":")) continue;  // a heartbeat
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let text = colon < 0 ? "" : line.slice(colon + 1);
        if (text.startsWith(" ")) text = text.slice(1);
        if (field === "data") message.data.push(text);
        else if (field === "event") message.type = text || "message";
        else if (field === "id" && !text.includes("\0")) message.id = text;
        else if (field === "retry" && /^\d+$/.test(text)) retryMs = Number(text);
      }
    }
  }

  (async () => {
    while (!done) {
      try {
        await readOnce();
      } catch (error) {
        if (done) return;
        if (error instanceof ApiError && !error.retryable) {
          done = true;
          onError(error);
          return;
        }
      }
      if (done) return;
      failures += 1;
      const delay = Math.min(MAX_RETRY_MS, retryMs * 2 ** Math.max(0, failures - 1));
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  })();
  return stop;
}
