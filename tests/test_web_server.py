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
