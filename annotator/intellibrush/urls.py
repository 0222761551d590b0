"""IntelliBrush routes (included under /api/v1/ by annotator.urls)."""

urlpatterns: list = []
