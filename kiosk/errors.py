"""The project's errors. Adapters translate their library's errors into these at their edge."""


class KioskError(Exception):
    """Root of every error the kiosk raises on purpose."""


class ConfigError(KioskError):
    """A config file, key or value is wrong. The message names the file, the key and the fix."""

    def __init__(self, file: str, key: str, problem: str):
        self.file = file
        self.key = key
        self.problem = problem
        super().__init__(f"{file}: {key}: {problem}")


class SnapshotError(KioskError):
    """The snapshot store cannot be read or a load was rejected."""


class ImportRejected(KioskError):
    """A CSV import was rejected whole; the message names the file and line."""


class JournalError(KioskError):
    """The scan journal cannot be written."""


class StateError(KioskError):
    """The kiosk's small state file (last sync, settings) cannot be read or written."""


class ScannerError(KioskError):
    """A scanner (serial, HID) failed or went away."""


class CameraError(KioskError):
    """The camera failed or is not available."""


class OutputError(KioskError):
    """A light, buzzer, relay or screen failed."""


class SyncError(KioskError):
    """Talking to the upstream failed; the last good snapshot stays."""
