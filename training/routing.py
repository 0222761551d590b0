from django.urls import path

from training.consumers import TrainingRunConsumer

websocket_urlpatterns = [
    path("ws/trainings/<id:run_id>/", TrainingRunConsumer.as_asgi()),
]
