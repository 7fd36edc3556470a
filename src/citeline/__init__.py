"""Citeline: answers, reports and agents whose every sentence cites the passage behind it."""

from importlib.metadata import version

__version__ = version("citeline")
__all__ = ["__version__"]
