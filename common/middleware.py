"""Middleware that stays on the event loop under ASGI.

Django runs a sync-only middleware under ASGI by hopping to a thread and back around it;
two of them (ours and WhiteNoise 6, which is sync-only) cost every API request through
daphne about 4 ms of thread switching before any view code ran. Both classes below work
in either mode and only leave the event loop for the sync view itself.
"""
from collections.abc import Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.http import HttpRequest, HttpResponse
from whitenoise.middleware import WhiteNoiseMiddleware


class _DualMode:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)


class CrossOriginIsolationMiddleware(_DualMode):
    """Cross-origin isolation headers: onnxruntime-web needs SharedArrayBuffer for
    multithreaded WebAssembly, which browsers only grant to cross-origin-isolated pages."""

    def __call__(self, request: HttpRequest):
        if self.is_async:
            return self._acall(request)
        return self._headers(self.get_response(request))

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        return self._headers(await self.get_response(request))

    @staticmethod
    def _headers(response: HttpResponse) -> HttpResponse:
        response.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        response.setdefault("Cross-Origin-Embedder-Policy", "credentialless")
        response.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        return response


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise (built frontend and static files) that lets every other request pass
    on without leaving the event loop."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable) -> None:
        super().__init__(get_response)
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):
        if self.is_async:
            return self._acall(request)
        return super().__call__(request)

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        static_file = self.find_file(path) if self.autorefresh else self.files.get(path)
        if static_file is not None:
            return await sync_to_async(self.serve)(static_file, request)
        return await self.get_response(request)
