from django.urls import path

from projects import apis

urlpatterns = [
    path("projects/", apis.ProjectListCreateApi.as_view(), name="project-list"),
    path("projects/<id:project_id>/", apis.ProjectDetailApi.as_view(), name="project-detail"),
    path("projects/<id:project_id>/members/", apis.MemberListCreateApi.as_view(), name="member-list"),
    path("projects/<id:project_id>/members/new-user/", apis.MemberNewUserApi.as_view(),
         name="member-new-user"),
    path("projects/<id:project_id>/members/<id:member_id>/", apis.MemberDetailApi.as_view(),
         name="member-detail"),
    path("projects/<id:project_id>/classes/", apis.ClassListCreateApi.as_view(), name="class-list"),
    path("projects/<id:project_id>/classes/<id:class_id>/", apis.ClassDetailApi.as_view(),
         name="class-detail"),
    path("projects/<id:project_id>/assets/", apis.AssetListUploadApi.as_view(), name="asset-list"),
    path("projects/<id:project_id>/assets/summary/", apis.AssetSummaryApi.as_view(),
         name="asset-summary"),
    path("projects/<id:project_id>/assets/bulk/", apis.AssetBulkApi.as_view(), name="asset-bulk"),
    path("projects/<id:project_id>/assets/next/", apis.AssetNextApi.as_view(), name="asset-next"),
    path("projects/<id:project_id>/splits/auto/", apis.AutoSplitApi.as_view(), name="auto-split"),
    path("assets/<id:asset_id>/review/", apis.AssetReviewApi.as_view(), name="asset-review"),
    path("assets/<id:asset_id>/", apis.AssetDetailApi.as_view(), name="asset-detail"),
    path("assets/<id:asset_id>/file/", apis.AssetFileApi.as_view(), name="asset-file"),
    path("assets/<id:asset_id>/thumbnail/", apis.AssetThumbnailApi.as_view(), name="asset-thumbnail"),
    path("videos/<id:video_id>/", apis.VideoDetailApi.as_view(), name="video-detail"),
    path("projects/<id:project_id>/jobs/", apis.ProjectJobListApi.as_view(), name="project-job-list"),
    path("jobs/<id:job_id>/", apis.JobDetailApi.as_view(), name="job-detail"),
    path("jobs/<id:job_id>/cancel/", apis.JobCancelApi.as_view(), name="job-cancel"),
    path("jobs/<id:job_id>/download/", apis.JobDownloadApi.as_view(), name="job-download"),
]
