from django.urls import include, path

from annotator import apis

urlpatterns = [
    path("", include("annotator.intellibrush.urls")),
    path("assets/<id:asset_id>/masks/", apis.AssetMasksApi.as_view(), name="asset-masks"),
    path("assets/<id:asset_id>/masks/revisions/", apis.MaskRevisionListApi.as_view(),
         name="mask-revision-list"),
    path("assets/<id:asset_id>/masks/revisions/<id:revision_id>/",
         apis.MaskRevisionDetailApi.as_view(), name="mask-revision-detail"),
    path("assets/<id:asset_id>/masks/revisions/<id:revision_id>/restore/",
         apis.MaskRevisionRestoreApi.as_view(), name="mask-revision-restore"),
    path("assets/<id:asset_id>/overlay/", apis.AssetOverlayApi.as_view(), name="asset-overlay"),
    path("projects/<id:project_id>/imports/", apis.ProjectImportApi.as_view(),
         name="project-import"),
    path("projects/<id:project_id>/imports/s3/", apis.ProjectImportS3Api.as_view(),
         name="project-import-s3"),
    path("projects/<id:project_id>/export/", apis.ProjectExportApi.as_view(),
         name="project-export"),
]
