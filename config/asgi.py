"""ASGI entry point: Django for HTTP, Channels for websockets.

Websocket routes come from each app's `routing.websocket_urlpatterns`; connections are
authenticated by session cookie or by `?token=<api token>` and origin-checked."""
import os

from django.core.asgi import get_asgi_application

from config.daphne_tuning import skip_twisted_form_parsing

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

# Import every view now (IntelliBrush's server-side decoder brings torch: ~7-10 s on a
# small CPU): the server listens only once this module is loaded, so no request pays it.
from django.urls import get_resolver  # noqa: E402

get_resolver().url_patterns  # noqa: B018

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from common.websocket import SameOriginValidator, TokenOrSessionAuthMiddlewareStack  # noqa: E402
from config.routing import websocket_urlpatterns  # noqa: E402

skip_twisted_form_parsing()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": SameOriginValidator(
            TokenOrSessionAuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
