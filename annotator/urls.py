from django.urls import include, path

urlpatterns = [
    path("", include("annotator.intellibrush.urls")),
]
