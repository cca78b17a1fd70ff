"""Adapters: one per file, each translating its library's errors into the kiosk's own at its edge."""
