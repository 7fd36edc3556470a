// DOM helpers shared by the views. Text from the server is always set with textContent.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

export function toast(message) {
  const box = document.getElementById("toast");
  box.textContent = message;
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, 4000);
}

export function badge(state) {
  return el("span", { class: `badge s-${state}`, text: state.replace("_", " ") });
}

export function errorBox(error) {
  return el("p", { class: "error", role: "alert", text: `Error: ${error.message}` });
}

export function readOnlyNote(what) {
  return el("p", { class: "note", text: `Your role in this workspace is viewer: you can ${what}, ` +
    "but not change anything. Ask a workspace admin for the member role." });
}
