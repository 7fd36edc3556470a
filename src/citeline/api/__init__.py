"""The HTTP API: app factory, dependencies, middleware and the error handler."""
