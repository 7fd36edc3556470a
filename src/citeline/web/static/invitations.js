// Invitations from the invited person's side: the page an invitation link opens, and a
// banner over every view while invitations wait for an answer.

import { el, toast } from "./dom.js";
import { acceptInvitation, api, session, signedIn } from "./session.js";

/** The page of an invitation link: accept it with the invited account's password, or choose
 * one to make the account. */
export function invitationView(root, token, onJoined) {
  const password = el("input", { type: "password", id: "invite-password", required: true,
    minlength: "10", autocomplete: "current-password" });
  const name = el("input", { type: "text", id: "invite-name", autocomplete: "name" });
  const error = el("p", { class: "error", role: "alert" });
  const submit = el("button", { type: "submit", text: "Accept the invitation" });
  const form = el("form", { class: "card signin", "aria-labelledby": "invitation-title",
    onsubmit: async (event) => {
      event.preventDefault();
      error.textContent = "";
      submit.disabled = true;
      try {
        await acceptInvitation(token, password.value, name.value.trim());
        toast(`You joined ${session.me.workspace.name} as ${session.me.role}`);
        onJoined();
      } catch (failure) {
        error.textContent = failure.message;
        password.value = "";
        password.focus();
      } finally { submit.disabled = false; }
    } },
    el("h1", { id: "invitation-title", text: "You are invited to a Citeline workspace" }),
    el("p", { class: "muted", text: "If the invited email address already has an account, enter " +
      "its password. If not, choose a password of at least 10 characters: accepting makes the " +
      "account." }),
    el("label", { for: "invite-password", text: "Password" }), password,
    el("label", { for: "invite-name", text: "Your name (for a new account)" }), name,
    error, el("div", { class: "row" }, submit));
  root.append(form);
  if (!token) error.textContent = "This link has no invitation in it; ask for a new one.";
  password.focus();
}

/** Invitations waiting for the signed-in person, with Accept and Decline. */
export async function invitationsBanner(root, onJoined) {
  if (!signedIn() || !session.me) return;
  let invitations;
  try {
    ({ invitations } = await api("/v1/invitations"));
  } catch { return; }  // the banner is a convenience; the view itself already loaded
  if (!invitations.length || !root.isConnected) return;
  const box = el("section", { class: "card note", "aria-labelledby": "invites-title" },
    el("h2", { id: "invites-title", text: "Invitations for you" }));
  for (const invitation of invitations) {
    const where = invitation.workspace_name || invitation.workspace_id;
    const answer = (accept) => async () => {
      try {
        await api(`/v1/invitations/${invitation.id}/${accept ? "accept" : "decline"}`, { method: "POST" });
        toast(accept ? `You joined ${where}` : `Declined the invitation to ${where}`);
        line.remove();
        if (accept) onJoined();
      } catch (error) { toast(`Could not answer: ${error.message}`); }
    };
    const line = el("p", { class: "row center" },
      el("span", { class: "grow", text: `Join ${where} as ${invitation.role}?` }),
      el("button", { type: "button", text: "Accept", "aria-label": `Accept the invitation to ${where}`,
        onclick: answer(true) }),
      el("button", { type: "button", class: "secondary", text: "Decline",
        "aria-label": `Decline the invitation to ${where}`, onclick: answer(false) }));
    box.append(line);
  }
  root.prepend(box);
}
