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


def test_the_middleware_chain_runs_in_one_thread(settings):
    """Under ASGI the whole chain is adapted once, at its top (one hop into the request's
    thread); no middleware runs its methods through sync_to_async one by one."""
    from asgiref.sync import AsyncToSync, SyncToAsync, iscoroutinefunction
    from django.core.handlers.asgi import ASGIHandler

    chain = ASGIHandler()._middleware_chain
    assert isinstance(chain, SyncToAsync)
    layer, names = chain.func, []
    while not isinstance(layer, AsyncToSync):  # the view dispatcher, reached from the thread
        layer = layer.__wrapped__  # convert_exception_to_response around each middleware
        assert not iscoroutinefunction(layer), type(layer)
        names.append(type(layer).__name__)
        layer = layer.get_response
    assert names == [path.rsplit(".", 1)[1] for path in settings.MIDDLEWARE]


def test_static_files_and_isolation_headers(tmp_path, settings):
    from django.http import HttpResponse
    from django.test import RequestFactory

    from common.middleware import CrossOriginIsolationMiddleware, StaticFilesMiddleware

    (tmp_path / "app.js").write_text("console.log('tessera')")
    settings.WHITENOISE_ROOT = tmp_path
    requests = RequestFactory()
    chain = CrossOriginIsolationMiddleware(StaticFilesMiddleware(lambda request: HttpResponse("api")))

    script = chain(requests.get("/app.js"))
    assert b"".join(script.streaming_content) == b"console.log('tessera')"
    assert script["Cross-Origin-Embedder-Policy"] == "credentialless"
    api = chain(requests.get("/api/v1/x/"))
    assert api.content == b"api" and api["Cross-Origin-Opener-Policy"] == "same-origin"
