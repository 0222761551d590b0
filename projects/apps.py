from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "projects"
    verbose_name = "Projects, classes and assets"

    def ready(self) -> None:
        # Pillow refuses images past its own decompression-bomb threshold (89.5 Mpx, a
        # warning, then an error at twice that) before our limits are checked: make its
        # threshold the configured limit, so TESSERA_MAX_IMAGE_PIXELS is the real one.
        from django.conf import settings
        from PIL import Image

        Image.MAX_IMAGE_PIXELS = settings.TESSERA_MAX_IMAGE_PIXELS
