from django.urls import path

from common import apis

urlpatterns = [
    path("auth/token/", apis.TokenApi.as_view(), name="auth-token"),
    path("auth/login/", apis.LoginApi.as_view(), name="auth-login"),
    path("auth/logout/", apis.LogoutApi.as_view(), name="auth-logout"),
    path("auth/tokens/", apis.TokenListApi.as_view(), name="auth-tokens"),
    path("auth/tokens/<str:prefix>/", apis.TokenDetailApi.as_view(), name="auth-token-detail"),
    path("auth/me/", apis.MeApi.as_view(), name="auth-me"),
    path("auth/password/", apis.PasswordChangeApi.as_view(), name="auth-password"),
    path("auth/csrf/", apis.CsrfApi.as_view(), name="auth-csrf"),
    path("health/", apis.HealthApi.as_view(), name="health"),
    path("health/live/", apis.LivenessApi.as_view(), name="health-live"),
    path("health/ready/", apis.ReadinessApi.as_view(), name="health-ready"),
]
