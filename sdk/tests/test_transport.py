"""Retries with backoff on 429/503 honouring Retry-After, and errors carrying the API's
code, against a small local HTTP server that answers a scripted sequence."""
from __future__ import annotations

import email.utils
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tessera import Client, RateLimited, ServiceUnavailable, ValidationError


class Scripted:
    """Serves (status, headers, body) answers in order, recording the request times."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.times: list[float] = []
        self.paths: list[str] = []
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                scripted.times.append(time.monotonic())
                scripted.paths.append(self.path)
                status, headers, body = scripted.answers.pop(0)
                data = json.dumps(body).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = do_GET  # noqa: N815

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.httpd.shutdown()


@pytest.fixture
def scripted():
    servers = []

    def make(*answers):
        servers.append(Scripted(answers))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def _throttled(retry_after: str | None = None):
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return 429, headers, {"error": {"code": "throttled", "message": "Request was throttled.", "details": {}}}


OK = (200, {}, {"count": 1, "next": None, "previous": None,
                "results": [{"id": 7, "name": "p", "type": "segmentation"}]})


def test_429_waits_as_long_as_retry_after_says(scripted):
    server = scripted(_throttled("1"), _throttled("1"), OK)
    events = []
    client = Client(server.url, "t", backoff=0.01, on_retry=events.append)
    projects = client.projects.list()
    assert [p.id for p in projects] == [7]
    assert [(e.status, e.retry_after, e.wait_s) for e in events] == [(429, 1.0, 1.0)] * 2
    gaps = [b - a for a, b in zip(server.times, server.times[1:], strict=False)]
    assert all(g >= 0.95 for g in gaps), gaps


def test_503_backs_off_exponentially_without_retry_after_and_http_date_is_understood(scripted):
    unavailable = (503, {}, {"error": {"code": "no_inference_worker", "message": "x", "details": {}}})
    future = email.utils.formatdate(time.time() + 2, usegmt=True)
    server = scripted(unavailable, unavailable, (503, {"Retry-After": future}, {}), OK)
    events = []
    client = Client(server.url, "t", backoff=0.1, on_retry=events.append)
    client.projects.list()
    waits = [e.wait_s for e in events]
    assert 0.1 <= waits[0] < 0.12 and 0.2 <= waits[1] < 0.23  # 0.1 * 2**n plus jitter
    assert 0.5 < waits[2] <= 2.0  # from the HTTP date


def test_errors_after_the_retries_carry_the_code(scripted):
    server = scripted(_throttled("0"), _throttled("3"))
    client = Client(server.url, "t", max_retries=1)
    with pytest.raises(RateLimited) as info:
        client.projects.list()
    assert info.value.code == "throttled" and info.value.status == 429
    assert info.value.retry_after == 3.0

    server = scripted((503, {}, {"error": {"code": "inference_timeout", "message": "slow", "details": {}}}))
    with pytest.raises(ServiceUnavailable) as info:
        Client(server.url, "t", max_retries=0).projects.list()
    assert info.value.code == "inference_timeout"


def test_other_errors_are_not_retried(scripted):
    server = scripted((400, {}, {"error": {"code": "validation_error", "message": "Invalid input.",
                                           "details": {"name": ["This field is required."]}}}))
    with pytest.raises(ValidationError) as info:
        Client(server.url, "t").projects.create("")
    assert info.value.details == {"name": ["This field is required."]}
    assert len(server.times) == 1


def test_pages_are_followed_on_this_server_whatever_host_next_names(scripted):
    page1 = (200, {}, {"count": 2, "previous": None, "results": [{"id": 1}],
                       "next": "http://internal:8000/api/v1/projects/?page=2&page_size=500"})
    page2 = (200, {}, {"count": 2, "next": None, "previous": None, "results": [{"id": 2}]})
    server = scripted(page1, page2)
    assert [p.id for p in Client(server.url, "t").projects.list()] == [1, 2]
    assert server.paths == ["/api/v1/projects/?page_size=500", "/api/v1/projects/?page=2&page_size=500"]
