"""The auth API: sign-in (password, refresh, OIDC), the caller, users, workspaces, members,
API keys and the audit log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request, Response, status
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from citeline.api.deps import (
    AccessDep,
    AccountsDep,
    ApiKeysDep,
    GatekeeperDep,
    InvitationsDep,
    ResourcesDep,
    SettingsDep,
    get_access,
)
from citeline.auth import audit
from citeline.auth.access import Role
from citeline.auth.invitations import accept_with_token
from citeline.auth.oidc import OidcClient
from citeline.auth.schemas import (
    AcceptIn,
    ApiKeyIn,
    ApiKeyList,
    ApiKeyOut,
    AuditList,
    AuditOut,
    AuthConfigOut,
    InvitationIn,
    InvitationList,
    InvitationOut,
    LogoutIn,
    MemberIn,
    MemberList,
    MeOut,
    OidcConfigOut,
    TokenOut,
    UserIn,
    UserList,
    UserOut,
    UserPatch,
    WorkspaceIn,
    WorkspaceList,
    WorkspaceOut,
)
from citeline.auth.signin import OidcIdentity, TokenPair
from citeline.errors import InvalidInput, NotFound
from citeline.resources import Resources
from citeline.settings import Settings

LOGIN_CODE_GRANT = "urn:citeline:login-code"

public = APIRouter(prefix="/v1/auth", tags=["auth"])
router = APIRouter(prefix="/v1", tags=["auth"], dependencies=[Depends(get_access)])


def _tokens(pair: TokenPair) -> TokenOut:
    return TokenOut(
        access_token=pair.access_token,
        expires_in=pair.expires_in,
        refresh_token=pair.refresh_token,
        workspace_id=pair.workspace_id,
        role=pair.role,
    )


@public.get("/config")
def auth_config(settings: SettingsDep) -> AuthConfigOut:
    """How to sign in here; public, so the web page knows what to show."""
    return AuthConfigOut(
        mode=settings.auth,
        oidc=OidcConfigOut(enabled=_oidc_enabled(settings), login_url="/v1/auth/oidc/login"),
    )


@public.post(
    "/token",
    responses={401: {"description": "wrong credentials"}, 429: {"description": "throttled"}},
)
async def token(
    request: Request,
    gatekeeper: GatekeeperDep,
    grant_type: Annotated[str, Form(max_length=100)],
    username: Annotated[str | None, Form(max_length=320)] = None,
    password: Annotated[str | None, Form(max_length=1024)] = None,
    refresh_token: Annotated[str | None, Form(max_length=200)] = None,
    code: Annotated[str | None, Form(max_length=200)] = None,
    workspace: Annotated[str | None, Form(max_length=64)] = None,
) -> TokenOut:
    """OAuth2 token endpoint: `password` (username is the email), `refresh_token` (the old
    refresh token stops working), or a one-time login code after single sign-on."""
    signin, client = gatekeeper.signin, gatekeeper.client(request)
    if grant_type == "password":
        if not username or password is None:
            raise InvalidInput("the password grant needs username and password", field="username")
        pair = await run_in_threadpool(signin.password, username, password, client, workspace)
    elif grant_type == "refresh_token":
        if not refresh_token:
            raise InvalidInput("send the refresh_token", field="refresh_token")
        pair = await run_in_threadpool(signin.refresh, refresh_token, client)
    elif grant_type == LOGIN_CODE_GRANT:
        if not code:
            raise InvalidInput("send the login code", field="code")
        pair = await run_in_threadpool(signin.redeem, code, client)
    else:
        raise InvalidInput(
            f"unsupported grant_type {grant_type!r}; use password, refresh_token or "
            f"{LOGIN_CODE_GRANT}",
            field="grant_type",
        )
    return _tokens(pair)


@public.post(
    "/invitations/accept",
    responses={401: {"description": "the password does not match the invited account"}},
)
async def accept_invitation_link(
    body: AcceptIn, request: Request, gatekeeper: GatekeeperDep
) -> TokenOut:
    """Accept an invitation from its link: with the invited address's password, or, when it
    has no account yet, making one with that password. Signs the person in to the workspace."""
    signin, client = gatekeeper.signin, gatekeeper.client(request)
    accepted = await run_in_threadpool(
        accept_with_token,
        signin.sessions,
        signin.throttle,
        body.token,
        body.password,
        name=body.name,
        client=client,
    )
    pair = await run_in_threadpool(
        signin.issue, accepted.user_id, accepted.workspace_id, client=client, method="invitation"
    )
    return _tokens(pair)


@public.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(body: LogoutIn, gatekeeper: GatekeeperDep) -> Response:
    """Revoke the sign-in the refresh token belongs to (every token rotated from it)."""
    gatekeeper.signin.logout(body.refresh_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _oidc_enabled(settings: Settings) -> bool:
    return bool(settings.oidc_issuer and settings.oidc_client_id)


def _oidc_client(request: Request, resources: Resources, settings: Settings) -> OidcClient:
    if not _oidc_enabled(settings):
        raise NotFound("single sign-on is not configured (CITELINE_OIDC_ISSUER)")
    client: OidcClient | None = getattr(request.app.state, "oidc_client", None)
    if client is None:
        assert settings.oidc_issuer is not None and settings.oidc_client_id is not None
        secret = settings.oidc_client_secret
        client = OidcClient(
            settings.oidc_issuer,
            settings.oidc_client_id,
            secret.get_secret_value() if secret else None,
            settings.oidc_redirect_url or str(request.url_for("oidc_callback")),
            resources.redis,
        )
        request.app.state.oidc_client = client
    return client


@public.get("/oidc/login", response_class=RedirectResponse, status_code=302)
def oidc_login(
    request: Request,
    resources: ResourcesDep,
    settings: SettingsDep,
    return_to: Annotated[str, Query(max_length=2000)] = "/",
) -> RedirectResponse:
    """Start single sign-on: off to the identity provider, with PKCE."""
    client = _oidc_client(request, resources, settings)
    return RedirectResponse(client.authorization_url(return_to), status_code=302)


@public.get(
    "/oidc/callback", name="oidc_callback", response_class=RedirectResponse, status_code=302
)
def oidc_callback(
    request: Request,
    resources: ResourcesDep,
    settings: SettingsDep,
    gatekeeper: GatekeeperDep,
    code: Annotated[str, Query(max_length=2000)],
    state: Annotated[str, Query(max_length=200)],
) -> RedirectResponse:
    """The provider sends the browser back here; it goes on to `return_to` with a one-time
    login code the page exchanges for tokens (tokens never travel in a URL)."""
    identity = _oidc_client(request, resources, settings).complete(code, state)
    # An unverified address could claim someone else's; such users get a placeholder.
    email = identity.email if identity.email_verified else None
    user_id = gatekeeper.signin.oidc_user(
        OidcIdentity(identity.issuer, identity.subject, email, identity.name)
    )
    login_code = gatekeeper.signin.login_code(user_id)
    place, hash_, fragment = identity.return_to.partition("#")
    separator = "&" if "?" in place else "?"
    target = f"{place}{separator}{urlencode({'login_code': login_code})}{hash_}{fragment}"
    return RedirectResponse(target, status_code=302)


# signed in


@router.get("/auth/me")
def me(access: AccessDep, accounts: AccountsDep, settings: SettingsDep) -> MeOut:
    if access.user_id is None:
        raise NotFound("an API key has no user; see /v1/api-keys")
    user = accounts.user(access.user_id)
    workspaces = [WorkspaceOut.of(ws, role) for ws, role in accounts.workspaces()]
    current = next(w for w in workspaces if w.id == access.workspace_id)
    return MeOut(
        user=UserOut.of(user),
        workspace=current,
        role=access.role,
        mode=settings.auth,
        workspaces=[w for w in workspaces if w.role is not None or w.id == current.id],
    )


@router.get("/users")
def list_users(accounts: AccountsDep) -> UserList:
    return UserList(users=[UserOut.of(m.user, m.role) for m in accounts.users()])


@router.post("/users", status_code=status.HTTP_201_CREATED)
def create_user(body: UserIn, accounts: AccountsDep) -> UserOut:
    user = accounts.create_user(
        body.email,
        body.password,
        name=body.name,
        is_admin=body.is_admin,
        workspace_id=body.workspace_id,
        role=body.role,
    )
    return UserOut.of(user, body.role)


@router.get("/users/{user_id}")
def get_user(user_id: uuid.UUID, accounts: AccountsDep) -> UserOut:
    return UserOut.of(accounts.user(user_id))


@router.patch("/users/{user_id}")
def update_user(user_id: uuid.UUID, body: UserPatch, accounts: AccountsDep) -> UserOut:
    return UserOut.of(accounts.update_user(user_id, **body.model_dump(exclude_none=True)))


@router.delete("/users/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_user(user_id: uuid.UUID, accounts: AccountsDep) -> Response:
    accounts.delete_user(user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/workspaces")
def list_workspaces(accounts: AccountsDep) -> WorkspaceList:
    return WorkspaceList(
        workspaces=[WorkspaceOut.of(ws, role) for ws, role in accounts.workspaces()]
    )


@router.post("/workspaces", status_code=status.HTTP_201_CREATED)
def create_workspace(body: WorkspaceIn, accounts: AccountsDep) -> WorkspaceOut:
    """A new workspace (instance administrators); its owner is `owner_id`, else you."""
    workspace = accounts.create_workspace(body.name, body.id, owner_id=body.owner_id)
    mine = body.owner_id in (None, accounts.access.user_id)
    return WorkspaceOut.of(workspace, Role.owner if mine else None)


@router.delete("/workspaces/{workspace_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_workspace(workspace_id: str, accounts: AccountsDep) -> Response:
    accounts.delete_workspace(workspace_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/workspaces/{workspace_id}/members")
def list_members(workspace_id: str, accounts: AccountsDep) -> MemberList:
    return MemberList(members=[UserOut.of(m.user, m.role) for m in accounts.members(workspace_id)])


@router.put("/workspaces/{workspace_id}/members/{user_id}")
def set_member(
    workspace_id: str, user_id: uuid.UUID, body: MemberIn, accounts: AccountsDep
) -> UserOut:
    """Change a member's role. Only instance administrators add people directly; workspace
    admins invite them (`POST /v1/workspaces/{id}/invitations`)."""
    accounts.set_member(workspace_id, user_id, body.role)
    return UserOut.of(accounts.user(user_id), body.role)


@router.delete(
    "/workspaces/{workspace_id}/members/{user_id}", status_code=status.HTTP_204_NO_CONTENT
)
def remove_member(workspace_id: str, user_id: uuid.UUID, accounts: AccountsDep) -> Response:
    accounts.remove_member(workspace_id, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/workspaces/{workspace_id}/invitations", status_code=status.HTTP_201_CREATED)
def invite(
    workspace_id: str, body: InvitationIn, request: Request, invitations: InvitationsDep
) -> InvitationOut:
    """Invite an email address; the answer is the same whether or not it has an account.
    Send the person `accept_url` (shown only now); they join when they accept."""
    row, token = invitations.invite(workspace_id, body.email, body.role)
    return InvitationOut.of(row, token, str(request.base_url).rstrip("/"))


@router.get("/workspaces/{workspace_id}/invitations")
def list_invitations(workspace_id: str, invitations: InvitationsDep) -> InvitationList:
    return InvitationList(
        invitations=[InvitationOut.of(row) for row in invitations.pending(workspace_id)]
    )


@router.delete(
    "/workspaces/{workspace_id}/invitations/{invitation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
)
def revoke_invitation(
    workspace_id: str, invitation_id: uuid.UUID, invitations: InvitationsDep
) -> Response:
    invitations.revoke(workspace_id, invitation_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/invitations")
def my_invitations(invitations: InvitationsDep, accounts: AccountsDep) -> InvitationList:
    """Invitations waiting for your answer."""
    rows = invitations.mine()
    names = accounts.workspace_names({row.workspace_id for row in rows})
    out = []
    for row in rows:
        item = InvitationOut.of(row)
        item.workspace_name = names.get(row.workspace_id)
        out.append(item)
    return InvitationList(invitations=out)


@router.post("/invitations/{invitation_id}/accept")
def accept_invitation(invitation_id: uuid.UUID, invitations: InvitationsDep) -> InvitationOut:
    return InvitationOut.of(invitations.respond(invitation_id, accept=True))


@router.post("/invitations/{invitation_id}/decline")
def decline_invitation(invitation_id: uuid.UUID, invitations: InvitationsDep) -> InvitationOut:
    return InvitationOut.of(invitations.respond(invitation_id, accept=False))


@router.get("/api-keys")
def list_api_keys(keys: ApiKeysDep, accounts: AccountsDep) -> ApiKeyList:
    rows = keys.list()
    labels = accounts.labels(keys.access.workspace_id, {row.created_by for row in rows})
    return ApiKeyList(
        api_keys=[ApiKeyOut.of(row, created_by=labels.get(row.created_by)) for row in rows]
    )


@router.post("/api-keys", status_code=status.HTTP_201_CREATED)
def create_api_key(body: ApiKeyIn, keys: ApiKeysDep) -> ApiKeyOut:
    """A key for your workspace with at most your role and scopes; `key` is shown this once
    only. The key acts with at most its maker's role at the time it is used."""
    row, secret = keys.create(
        body.name, body.role, expires_in_days=body.expires_in_days, scopes=body.scopes
    )
    return ApiKeyOut.of(row, secret)


@router.delete("/api-keys/{key_id}")
def revoke_api_key(key_id: uuid.UUID, keys: ApiKeysDep) -> ApiKeyOut:
    return ApiKeyOut.of(keys.revoke(key_id))


@router.get("/audit")
def audit_log(
    access: AccessDep,
    resources: ResourcesDep,
    accounts: AccountsDep,
    action: Annotated[str | None, Query(max_length=64)] = None,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    since: datetime | None = None,
    before_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=audit.MAX_PAGE)] = 100,
) -> AuditList:
    """Sign-ins, failed sign-ins, key and role changes, deletions, tool runs; newest first.
    Page with `before_id` (the last id of the previous page)."""
    events = audit.query(
        resources.sessions,
        access,
        action=action,
        actor=actor,
        since=since,
        before_id=before_id,
        limit=limit,
    )
    subjects = {event.actor for event in events} | {event.target or "" for event in events}
    labels = accounts.labels(access.workspace_id, subjects)
    return AuditList(events=[AuditOut.of(event, labels) for event in events])
