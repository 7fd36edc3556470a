"""The `citeline` command line."""
