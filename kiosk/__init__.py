"""Membership gate kiosk: scan, decide, act, record."""

__version__ = "0.1.0"
