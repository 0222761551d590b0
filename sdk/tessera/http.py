"""HTTP transport: one ``requests.Session``, API errors turned into exceptions, and
retries with exponential backoff on 429 and 503 (and on connection failures of reads)
that honour the server's ``Retry-After``."""
from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from tessera.errors import ConnectionFailed, RateLimited, error_for_status

RETRY_STATUSES = (429, 503)
IDEMPOTENT = ("GET", "HEAD", "PUT", "DELETE", "OPTIONS")


@dataclass
class RetryPolicy:
    """``max_retries`` extra attempts; the wait is ``Retry-After`` when the server sends it,
    else ``backoff * 2**attempt`` (+ up to 10% jitter), never more than ``max_wait`` s."""

    max_retries: int = 5
    backoff: float = 0.5
    max_wait: float = 60.0

    def wait(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_wait)
        delay = self.backoff * (2 ** attempt)
        return min(delay * (1 + random.random() * 0.1), self.max_wait)


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` is seconds or an HTTP date."""
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _same_server(url: str | None) -> str | None:
    """Path and query of a ``next`` link: behind a proxy the server may spell its own
    scheme or host differently from the URL this client was given."""
    if not url:
        return None
    parts = urlsplit(url)
    path = parts.path[max(parts.path.find("/api/"), 0):]
    return path + (f"?{parts.query}" if parts.query else "")


@dataclass
class RetryEvent:
    """Passed to ``on_retry`` before each wait: what failed and how long we wait."""

    method: str
    url: str
    attempt: int
    status: int | None
    wait_s: float
    retry_after: float | None


class Transport:
    def __init__(self, base_url: str, *, token: str | None = None, timeout: float = 120.0,
                 retry: RetryPolicy | None = None,
                 on_retry: Callable[[RetryEvent], None] | None = None,
                 user_agent: str = "tessera-client") -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.on_retry = on_retry
        self.session = requests.Session()
        self.session.headers["User-Agent"] = user_agent
        self.session.headers["Accept"] = "application/json"
        self.token = token

    @property
    def token(self) -> str | None:
        return self._token

    @token.setter
    def token(self, value: str | None) -> None:
        self._token = value
        if value:
            self.session.headers["Authorization"] = f"Token {value}"
        else:
            self.session.headers.pop("Authorization", None)

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        if not path.startswith("/api/"):
            path = "/api/v1/" + path.lstrip("/")
        return self.base_url + path

    def request(self, method: str, path: str, *, params: dict | None = None, json: Any = None,
                files: Any = None, data: Any = None, headers: dict | None = None,
                stream: bool = False, timeout: float | None = None) -> requests.Response:
        """Send, retrying 429/503 (any method: the server refused before doing anything)
        and connection errors of idempotent methods. Raises an ApiError subclass for
        any 4xx/5xx answer left after the retries."""
        url = self.url(path)
        attempt = 0
        while True:
            try:
                response = self.session.request(method, url, params=params, json=json, files=files,
                                                data=data, headers=headers, stream=stream,
                                                timeout=timeout or self.timeout)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if method.upper() in IDEMPOTENT and attempt < self.retry.max_retries:
                    self._sleep(method, url, attempt, None, None)
                    attempt += 1
                    continue
                raise ConnectionFailed(f"{method} {url}: {exc}", code="connection_failed") from exc
            if response.status_code in RETRY_STATUSES and attempt < self.retry.max_retries:
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                response.close()
                self._sleep(method, url, attempt, response.status_code, retry_after)
                attempt += 1
                continue
            if response.status_code >= 400:
                raise self._error(response)
            return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def paginate(self, path: str, params: dict | None = None, page_size: int = 500):
        """Yield every item of a paginated list (``count/next/results``) or a plain list."""
        params = {**(params or {}), "page_size": page_size}
        url: str | None = path
        while url:
            body = self.json("GET", url, params=params)
            if isinstance(body, list):
                yield from body
                return
            yield from body["results"]
            url, params = _same_server(body.get("next")), None  # `next` carries the query

    def _sleep(self, method: str, url: str, attempt: int, status: int | None,
               retry_after: float | None) -> None:
        wait = self.retry.wait(attempt, retry_after)
        if self.on_retry:
            self.on_retry(RetryEvent(method, url, attempt + 1, status, wait, retry_after))
        time.sleep(wait)

    @staticmethod
    def _error(response: requests.Response):
        try:
            body = response.json()
        except ValueError:
            body = None
        error = error_for_status(response.status_code, body, response.text)
        if isinstance(error, RateLimited):
            error.retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return error
