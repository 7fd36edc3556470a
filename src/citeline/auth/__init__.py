"""Who is calling and what they may do: users, workspaces, roles, tokens, API keys, rate
limits and the audit log.

Other domains use `Access` (who acts, where, with what role) and the audit log."""

from citeline.auth import audit
from citeline.auth.access import DEFAULT_WORKSPACE, Access, Role, Scope
from citeline.auth.call_limits import CallLimit

__all__ = ["DEFAULT_WORKSPACE", "Access", "CallLimit", "Role", "Scope", "audit"]
