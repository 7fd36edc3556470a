"""Who is calling and what they may do: users, workspaces, roles, tokens, API keys, rate
limits and the audit log."""
