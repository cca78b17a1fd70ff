"""The reference upstream: the protocol's other end (docs/protocol.md), beside the client that speaks it.

`kiosk upstream` and `./scripts/demo --upstream` run it; the tests use it as a real HTTP server on
127.0.0.1. The gate itself never imports this package.
"""

from .server import FAULTS, DataError, RefStore, RefUpstream, read_records

__all__ = ["FAULTS", "DataError", "RefStore", "RefUpstream", "read_records"]
