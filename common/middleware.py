"""Cross-origin isolation headers: onnxruntime-web needs SharedArrayBuffer for
multithreaded WebAssembly, which browsers only grant to cross-origin-isolated pages."""
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


class CrossOriginIsolationMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        response.setdefault("Cross-Origin-Embedder-Policy", "credentialless")
        response.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        return response
