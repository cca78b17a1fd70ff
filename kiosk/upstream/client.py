"""The HTTP side of the upstream protocol (docs/protocol.md): one httpx client, errors mapped here.

Everything above this module sees `SyncError` (with the HTTP status when there was one),
never an httpx exception.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import socket
import ssl
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import httpx

from .. import __version__
from ..errors import ConfigError, SyncError
from .limits import Deadline

log = logging.getLogger(__name__)
# httpx logs every request at INFO: a kiosk syncing every minute would fill the journal with them.
logging.getLogger("httpx").setLevel(logging.WARNING)


class UpstreamError(SyncError):
    """The upstream answered, but not with what we asked for. `status` is its HTTP status."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ClientSettings:
    url: str
    token_file: str
    ca_file: str
    timeout_s: float
    device: str
    config_file: str = "<config>"

    @classmethod
    def from_config(cls, config: Any) -> "ClientSettings":
        up = config.upstream
        if not up.url:
            raise ConfigError(config.source, "upstream.url", "is empty; set the upstream's base URL")
        if not up.token_file:
            raise ConfigError(config.source, "upstream.token_file", "is empty; name the file holding the bearer token")
        return cls(url=up.url.rstrip("/"), token_file=up.token_file, ca_file=up.ca_file, timeout_s=float(up.timeout_s),
                   device=config.device, config_file=config.source)


def read_token(path: str, config_file: str = "<config>", key: str = "upstream.token_file") -> str:
    """The bearer token, refusing a file that group or others can read (it is a password).

    `key` names the config key in errors: the venue's broker password file follows the same rules."""
    try:
        st = os.stat(path)
        if st.st_mode & (stat.S_IRGRP | stat.S_IROTH):
            raise ConfigError(config_file, key, f"{path} is readable by group or others "
                              f"(mode {stat.filemode(st.st_mode)}); run: chmod 600 {path}")
        # utf-8-sig: an editor's byte order mark is not part of the token; nor is a trailing newline or space.
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(config_file, key, f"{path} does not exist") from None
    except PermissionError:
        raise ConfigError(config_file, key, f"{path}: permission denied; make it readable by the kiosk user") from None
    except IsADirectoryError:
        raise ConfigError(config_file, key, f"{path} is a directory; name the file holding the token") from None
    except UnicodeDecodeError:
        raise ConfigError(config_file, key, f"{path} is not a UTF-8 text file") from None
    token = text.strip()
    if problem := token_problem(token):
        raise ConfigError(config_file, key, f"{path} {problem}")
    return token


def token_problem(token: str) -> str | None:
    """What is wrong with a bearer token (it travels in an HTTP header: printable ASCII, no spaces), or None."""
    if not token or any(c.isspace() for c in token):
        return "must hold one token on one line"
    bad = next((i for i, c in enumerate(token) if not "!" <= c <= "~"), None)
    if bad is not None:
        return (f"holds a character a bearer token cannot have (U+{ord(token[bad]):04X} at position {bad + 1}); "
                "a token is printable ASCII: letters, digits and - . _ ~ + / =")
    return None


def url_warnings(url: str) -> list[str]:
    """What is risky about an upstream URL that still works: said at start and by `kiosk doctor`."""
    parts = httpx.URL(url)
    warnings = []
    if parts.scheme == "http" and not _loopback(parts.host):
        warnings.append(f"upstream.url is plain http:// to {parts.host}: the token and the scans cross the network "
                        "unencrypted; use https://")
    if parts.userinfo:
        warnings.append("upstream.url holds a user name or password; they are not sent (the kiosk authenticates "
                        "with the bearer token in upstream.token_file); remove them")
    return warnings


def _loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _verify(settings: ClientSettings) -> ssl.SSLContext | bool:
    if not settings.ca_file:
        return True
    try:
        return ssl.create_default_context(cafile=settings.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(settings.config_file, "upstream.ca_file", f"cannot load {settings.ca_file} ({exc})") from None


def describe(exc: httpx.HTTPError) -> str:
    """Plain words for a transport failure (these end up on the screen and in status)."""
    if isinstance(exc, httpx.ConnectTimeout):
        return "cannot reach the upstream (connect timed out)"
    if isinstance(exc, httpx.ConnectError):
        text = str(exc)
        if "CERTIFICATE_VERIFY_FAILED" in text or "certificate" in text.lower():
            return f"the upstream's TLS certificate is not trusted ({text})"
        return f"cannot reach the upstream ({text or 'connection failed'})"
    if isinstance(exc, httpx.ReadTimeout):
        return "the upstream stopped answering (read timed out)"
    if isinstance(exc, httpx.TimeoutException):
        return f"the upstream timed out ({type(exc).__name__})"
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)):
        return f"the upstream closed the connection mid-answer ({str(exc) or type(exc).__name__})"
    if isinstance(exc, httpx.DecodingError):
        return f"the upstream's answer could not be decoded ({exc})"
    return f"talking to the upstream failed ({type(exc).__name__}: {exc})"


class UpstreamClient:
    """One connection pool to the upstream. Use one per thread."""

    def __init__(self, settings: ClientSettings, transport: httpx.BaseTransport | None = None):
        self.settings = settings
        self._token_path = settings.token_file
        self._token_stamp: tuple[float, int] | None = None
        self._token = ""
        self._load_token()
        t = settings.timeout_s
        if transport is None:
            # No Nagle: a POST goes out as headers + body, and waiting for the ACK of the first
            # (delayed ACK, ~40 ms) would throttle a backlog drain to a crawl.
            transport = httpx.HTTPTransport(verify=_verify(settings),
                                            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
        self.http = httpx.Client(
            base_url=settings.url + "/", transport=transport,
            timeout=httpx.Timeout(t, connect=t, read=t, write=t, pool=t),
            headers={"Kiosk-Device": settings.device, "User-Agent": f"kiosk/{__version__}",
                     "Accept-Encoding": "gzip"},
            follow_redirects=False,
            # No auth from the URL's user:password: httpx would send it as Basic in place of the bearer token.
            auth=httpx.Auth(),
        )

    def _load_token(self) -> None:
        """Re-read the token when its file changed, so a renewed token needs no restart."""
        try:
            st = os.stat(self._token_path)
            stamp = (st.st_mtime, st.st_size)
        except OSError:
            stamp = None
        if stamp is None or stamp != self._token_stamp:
            self._token = read_token(self._token_path, self.settings.config_file)
            self._token_stamp = stamp

    def _auth(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        self._load_token()
        return {"Authorization": f"Bearer {self._token}", **(extra or {})}

    def close(self) -> None:
        self.http.close()

    # -- requests ----------------------------------------------------------------------
    @contextlib.contextmanager
    def snapshot(self, since: str = "", etag: str = "", deadline: Deadline | None = None,
                 accept: str = "") -> Iterator[httpx.Response]:
        """GET /snapshot, streamed. Yields the response (200 or 304); the body is read by the caller.

        httpx errors raised while the caller reads the body are mapped here too. With a `deadline`, the
        connection is shut when it passes, even mid-read, and SyncDeadline is raised. `accept` lists the
        answers the kiosk can read besides NDJSON (a snapshot file's manifest, docs/protocol.md).
        """
        headers = {"If-None-Match": etag} if etag else {}
        if accept:
            headers["Accept"] = accept
        with self._stream("snapshot", {"since": since} if since else None, headers, deadline) as response:
            yield response

    @contextlib.contextmanager
    def snapshot_file(self, path: str, deadline: Deadline | None = None) -> Iterator[httpx.Response]:
        """GET a snapshot file a manifest named (`path` relative to the upstream's URL), streamed like /snapshot."""
        with self._stream(path, None, {}, deadline) as response:
            if response.status_code != 200:
                raise UpstreamError(f"the upstream answered {response.status_code} for its snapshot file",
                                    response.status_code)
            yield response

    @contextlib.contextmanager
    def _stream(self, path: str, params: dict[str, str] | None, headers: dict[str, str],
                deadline: Deadline | None) -> Iterator[httpx.Response]:
        extensions = None
        if deadline is not None:
            # A new connection per snapshot, so the deadline's watchdog always holds its socket.
            headers["Connection"] = "close"
            extensions = {"trace": deadline.trace}
        with deadline.armed() if deadline is not None else contextlib.nullcontext():
            try:
                with self.http.stream("GET", path, params=params, headers=self._auth(headers),
                                      extensions=extensions) as response:
                    if response.status_code not in (200, 304):
                        response.read()
                        raise _status_error(path, response)
                    yield response
            except httpx.HTTPError as exc:
                if deadline is not None and deadline.expired.is_set():
                    raise deadline.error() from exc
                raise SyncError(describe(exc)) from exc

    def post_scans(self, scans: list[dict[str, Any]]) -> list[str]:
        """POST /scans; the ids the upstream says it stored."""
        # Encoded event by event: one json.dumps of 500 events holds the GIL for milliseconds in C,
        # which the gate's thread would wait out in the middle of a scan.
        body = b'{"device":%s,"scans":[%s]}' % (json.dumps(self.settings.device).encode(),
                                                b",".join(json.dumps(e).encode() for e in scans))
        response = self._post("scans", content=body)
        try:
            accepted = response.json().get("accepted")
        except (ValueError, AttributeError):
            accepted = None
        if not isinstance(accepted, list) or not all(isinstance(i, str) for i in accepted):
            raise UpstreamError("the upstream's answer to /scans has no 'accepted' list of ids", response.status_code)
        return accepted

    def heartbeat(self, payload: dict[str, Any]) -> None:
        self._post("heartbeat", content=json.dumps(payload).encode())

    def _post(self, path: str, content: bytes) -> httpx.Response:
        try:
            response = self.http.post(path, content=content,
                                      headers=self._auth({"Content-Type": "application/json"}))
        except httpx.HTTPError as exc:
            raise SyncError(describe(exc)) from exc
        if not 200 <= response.status_code < 300:
            raise _status_error(path, response)
        return response


def _status_error(path: str, response: httpx.Response) -> UpstreamError:
    status = response.status_code
    detail = ""
    with contextlib.suppress(Exception):
        body = response.json()
        detail = str(body.get("error", "")) if isinstance(body, dict) else ""
    if not detail:
        with contextlib.suppress(Exception):
            detail = response.text.strip()[:200]
    if status == 401:
        what = "the upstream refused the token (401); renew upstream.token_file"
    elif status == 403:
        what = "the upstream refused this kiosk (403)"
    elif status >= 500:
        what = f"the upstream failed ({status})"
    else:
        what = f"the upstream rejected /{path} ({status})"
    return UpstreamError(what + (f": {detail}" if detail else ""), status)
