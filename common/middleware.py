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
    """Runs ``_call`` for a sync chain and ``_acall`` for an async one."""

    sync_capable = True
    async_capable = True

    def _set_mode(self, get_response: Callable) -> None:
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):
        return self._acall(request) if self.is_async else self._call(request)


class CrossOriginIsolationMiddleware(_DualMode):
    """Cross-origin isolation headers: onnxruntime-web needs SharedArrayBuffer for
    multithreaded WebAssembly, which browsers only grant to cross-origin-isolated pages."""

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        self._set_mode(get_response)

    def _call(self, request: HttpRequest) -> HttpResponse:
        return self._headers(self.get_response(request))

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        return self._headers(await self.get_response(request))

    @staticmethod
    def _headers(response: HttpResponse) -> HttpResponse:
        response.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        response.setdefault("Cross-Origin-Embedder-Policy", "credentialless")
        response.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        return response


class StaticFilesMiddleware(_DualMode, WhiteNoiseMiddleware):
    """WhiteNoise (built frontend and static files) that lets every other request pass
    on without leaving the event loop."""

    def __init__(self, get_response: Callable) -> None:
        WhiteNoiseMiddleware.__init__(self, get_response)
        self._set_mode(get_response)

    def _call(self, request: HttpRequest) -> HttpResponse:
        return WhiteNoiseMiddleware.__call__(self, request)

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        static_file = self.find_file(path) if self.autorefresh else self.files.get(path)
        if static_file is not None:
            return await sync_to_async(self.serve)(static_file, request)
        return await self.get_response(request)
