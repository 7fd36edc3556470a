"""Logging, metrics and (later) tracing."""
