"""Fixtures for tests/kiosk beyond the generic ones in tests/conftest.py."""

from refserver import ref  # noqa: F401 -- the reference upstream, a fixture found by its name
