// The sign-in page: email and password, or single sign-on when the server offers it.

import { el } from "./dom.js";
import { session, signIn } from "./session.js";

export function signinView(root, { notice, onSignedIn }) {
  const email = el("input", { type: "email", id: "signin-email", required: true,
    autocomplete: "username", spellcheck: "false" });
  const password = el("input", { type: "password", id: "signin-password", required: true,
    autocomplete: "current-password" });
  const submit = el("button", { type: "submit", text: "Sign in" });
  const error = el("p", { class: "error", role: "alert", "data-testid": "signin-error" });
  let timer = null;

  function wait(seconds) {
    // Throttled: the button stays off until the server will listen again.
    submit.disabled = true;
    const tick = () => {
      if (seconds <= 0) {
        clearInterval(timer);
        submit.disabled = false;
        error.textContent = "";
        return;
      }
      error.textContent = `Too many attempts; try again in ${seconds} s.`;
      seconds -= 1;
    };
    clearInterval(timer);
    tick();
    timer = setInterval(tick, 1000);
  }

  const form = el("form", { class: "card signin", "aria-labelledby": "signin-title", onsubmit: async (event) => {
    event.preventDefault();
    if (submit.disabled) return;
    submit.disabled = true;
    error.textContent = "";
    submit.textContent = "Signing in…";
    try {
      await signIn(email.value.trim(), password.value);
      onSignedIn();
    } catch (failure) {
      submit.textContent = "Sign in";
      password.value = "";
      if (failure.status === 429) {
        wait(failure.retryAfter || 60);
      } else {
        submit.disabled = false;
        error.textContent = failure.message;
      }
      password.focus();
    }
  } },
    el("h1", { id: "signin-title", text: "Sign in to Citeline" }),
    notice ? el("p", { class: "note", role: "status", text: notice }) : null,
    el("label", { for: "signin-email", text: "Email" }), email,
    el("label", { for: "signin-password", text: "Password" }), password,
    error,
    el("div", { class: "row" }, submit));
  if (session.oidc.enabled) {
    const url = new URL(session.oidc.login_url || "/v1/auth/oidc/login", location.origin);
    url.searchParams.set("return_to", "/");
    form.append(el("p", { class: "or", text: "or" }),
      el("a", { class: "button secondary",
        href: url.origin === location.origin ? url.pathname + url.search : url.href,
        text: "Sign in with single sign-on" }));
  }
  root.append(form);
  email.focus();
  return () => clearInterval(timer);
}
