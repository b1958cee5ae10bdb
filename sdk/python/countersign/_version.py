"""The SDK's version (kept in step with pyproject.toml; a unit test checks)."""

__version__ = "0.1.0"
