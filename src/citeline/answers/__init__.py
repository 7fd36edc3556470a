"""Grounded answers: retrieve, pack, generate, and cite only what the passages support."""
