"""Websocket URL patterns gathered from the apps."""
from importlib import import_module

websocket_urlpatterns = []
for _app in ("training", "annotator"):
    try:
        websocket_urlpatterns += import_module(f"{_app}.routing").websocket_urlpatterns
    except ModuleNotFoundError as exc:  # the app has no websocket routes (yet)
        if exc.name != f"{_app}.routing":
            raise
