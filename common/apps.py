from django.apps import AppConfig


class CommonConfig(AppConfig):
    name = "common"
    verbose_name = "Tessera common"

    def ready(self) -> None:
        from django.urls import register_converter

        from common.converters import IdConverter

        register_converter(IdConverter, "id")  # before any URLconf or websocket route loads
