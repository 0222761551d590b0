from django.urls import path

from annotator.consumers import AssetPresenceConsumer

websocket_urlpatterns = [
    path("ws/assets/<id:asset_id>/presence/", AssetPresenceConsumer.as_asgi()),
]
