"""The web server's own handling of request bodies (daphne on Twisted)."""
from __future__ import annotations

from types import SimpleNamespace

from twisted.web import http
from twisted.web.test.requesthelper import DummyChannel

BOUNDARY = "tessera-boundary"
BODY = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n"
        f"Content-Type: image/png\r\n\r\n").encode() + b"\x89PNG" + b"x" * 5000 + (
        f"\r\n--{BOUNDARY}--\r\n").encode()


def _post(request_class):
    """Feed a multipart POST to a Twisted request whose process() only records."""
    seen = {}

    class Recording(request_class):
        def process(self):
            seen["args"] = dict(self.args)
            self.content.seek(0)
            seen["body"] = self.content.read()

    channel = DummyChannel()
    channel.factory = SimpleNamespace(server=SimpleNamespace(protocol_connected=lambda request: None))
    request = Recording(channel)
    request.requestHeaders.setRawHeaders(b"content-type",
                                         [f"multipart/form-data; boundary={BOUNDARY}".encode()])
    request.gotLength(len(BODY))
    request.handleContentChunk(BODY)
    request.requestReceived(b"POST", b"/api/v1/deployments/1/predict/", b"HTTP/1.1")
    return seen


def test_daphne_leaves_multipart_bodies_to_django():
    from daphne.http_protocol import WebRequest

    import config.asgi  # noqa: F401 - applies the daphne tuning, as `daphne config.asgi:...` does

    # Plain Twisted parses the form into request.args (a second, slow multipart parse) ...
    assert _post(http.Request)["args"] == {b"image": [b"\x89PNG" + b"x" * 5000]}
    # ... daphne's requests no longer do, and the raw body still reaches the application.
    seen = _post(WebRequest)
    assert seen["args"] == {} and seen["body"] == BODY


def test_middleware_keeps_api_requests_on_the_event_loop(caplog, settings):
    """Under ASGI no middleware needs a sync<->async adapter (each one is a thread hop)."""
    import logging

    from django.core.handlers.asgi import ASGIHandler

    settings.DEBUG = True  # Django names the adapters it adds only in debug mode
    with caplog.at_level(logging.DEBUG, logger="django.request"):
        ASGIHandler()
    adapted = [r.getMessage() for r in caplog.records if "adapted for" in r.getMessage()]
    # Only the (sync) views are run in a thread; no middleware is.
    assert [m for m in adapted if "middleware" in m] == [], adapted


def test_static_files_and_isolation_headers_in_both_modes(tmp_path, settings):
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from asgiref.sync import iscoroutinefunction
    from django.http import HttpResponse
    from django.test import RequestFactory

    from common.middleware import CrossOriginIsolationMiddleware, StaticFilesMiddleware

    (tmp_path / "app.js").write_text("console.log('tessera')")
    settings.WHITENOISE_ROOT = tmp_path
    requests = RequestFactory()

    async def async_view(request):
        return HttpResponse("api")

    sync_chain = CrossOriginIsolationMiddleware(StaticFilesMiddleware(lambda request: HttpResponse("api")))
    async_chain = CrossOriginIsolationMiddleware(StaticFilesMiddleware(async_view))
    assert not iscoroutinefunction(sync_chain) and iscoroutinefunction(async_chain)

    async def call_async(path):
        response = await async_chain(requests.get(path))
        if response.streaming:  # a file: a sync iterator, the ASGI handler reads it in a thread
            return response, b"".join(response.streaming_content)
        return response, response.content

    def run_async(path):  # in its own thread: another test may have left a loop running here
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, call_async(path)).result()

    for response, body in [
        (lambda r: (r, b"".join(r.streaming_content)))(sync_chain(requests.get("/app.js"))),
        run_async("/app.js"),
    ]:
        assert body == b"console.log('tessera')"
        assert response["Cross-Origin-Embedder-Policy"] == "credentialless"
    for response, body in [(sync_chain(requests.get("/api/v1/x/")), None), run_async("/api/v1/x/")]:
        assert (body or response.content) == b"api"
        assert response["Cross-Origin-Opener-Policy"] == "same-origin"
