"""The reference upstream against hostile clients: the token is checked before a body is read, bodies are capped."""

from __future__ import annotations

import http.client
import json
import socket

import pytest

from .conftest import TOKEN

HUGE = 500 * 1024 * 1024


def post_headers_only(ref, token: str, length: int, path: str = "/kiosk/v1/scans") -> tuple[int, bytes]:
    """Send a POST's headers announcing `length` body bytes, send none of them, and read the answer.

    A server that reads the body before answering never answers: the read below times out.
    """
    with socket.create_connection(("127.0.0.1", ref.port), timeout=10) as sock:
        sock.sendall((f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                      f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n").encode())
        answer = b""
        while chunk := sock.recv(65536):  # until the server hangs up: it must, the body is unread
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.mark.parametrize("path", ["/kiosk/v1/scans", "/kiosk/v1/heartbeat", "/kiosk/v1/admin/records"])
def test_a_wrong_token_is_refused_before_the_body_is_read(ref, path):
    status, body = post_headers_only(ref, "wrong", HUGE, path)
    assert status == 401
    assert "bearer token" in json.loads(body)["error"]
    assert ref.store.scan_count() == 0


def test_a_body_over_the_cap_is_refused_unread_with_413(ref):
    status, body = post_headers_only(ref, TOKEN, HUGE)
    assert status == 413
    assert "at most 16,777,216" in json.loads(body)["error"]


def test_a_small_refused_body_is_read_so_the_connection_stays_usable(ref):
    conn = http.client.HTTPConnection("127.0.0.1", ref.port, timeout=10)
    try:
        conn.request("POST", "/kiosk/v1/scans", body=b'{"device": "d", "scans": []}',
                     headers={"Authorization": "Bearer wrong", "Content-Type": "application/json"})
        refused = conn.getresponse()
        refused.read()
        assert refused.status == 401 and not refused.will_close
        conn.request("POST", "/kiosk/v1/scans", body=b'{"device": "d", "scans": []}',
                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        accepted = conn.getresponse()
        assert accepted.status == 200 and json.loads(accepted.read()) == {"accepted": []}
    finally:
        conn.close()


@pytest.mark.parametrize("headers, status", [({"Content-Length": "12x"}, 400),
                                             ({"Transfer-Encoding": "chunked"}, 411)])
def test_a_body_without_a_usable_length_is_refused(ref, headers, status):
    conn = http.client.HTTPConnection("127.0.0.1", ref.port, timeout=10)
    try:
        conn.putrequest("POST", "/kiosk/v1/scans")
        conn.putheader("Authorization", f"Bearer {TOKEN}")
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.endheaders()
        answer = conn.getresponse()
        assert answer.status == status and answer.will_close
    finally:
        conn.close()
