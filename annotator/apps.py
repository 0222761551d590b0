from django.apps import AppConfig


class AnnotatorConfig(AppConfig):
    name = "annotator"

    def ready(self) -> None:
        # IntelliBrush listens to the assets ``projects`` announces (it never calls us).
        from projects import signals

        from .intellibrush import services as intellibrush

        signals.assets_created.connect(intellibrush.on_assets_created, dispatch_uid="intellibrush-created")
        signals.assets_deleted.connect(intellibrush.on_assets_deleted, dispatch_uid="intellibrush-deleted")
