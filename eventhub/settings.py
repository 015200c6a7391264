"""Django settings for EventHub.

Every value comes from the environment through the typed helpers in ``core.env``;
``.env.example`` lists each variable with its default. A ``.env`` file in the project root,
when present, is read first (real environment variables win).
"""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from dotenv import load_dotenv

from core.correlation import logging_config
from core.env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
load_dotenv(BASE_DIR / ".env", override=False)

DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off")
    SECRET_KEY = "insecure-local-development-key-do-not-use-in-production"
# Keys of the secrets kept encrypted in PostgreSQL (signing secrets, subscription header values),
# newest first: Fernet keys, every one decrypts, the first encrypts (core.encryption). Required
# when DEBUG is off; in local development a key is derived from the secret key.
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEYS")
if not FIELD_ENCRYPTION_KEYS:
    if not DEBUG:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS must be set when DJANGO_DEBUG is off")
    FIELD_ENCRYPTION_KEYS = [
        base64.urlsafe_b64encode(hashlib.sha256(SECRET_KEY.encode()).digest()).decode()
    ]
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "eventhub.apps.ConsoleAdminConfig",  # django.contrib.admin, the dashboard as its index
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django_prometheus",
    "rest_framework",
    "rest_framework_simplejwt",
    "django_filters",
    "drf_spectacular",
    "graphene_django",
    "eventhub",  # the project: its management commands (seed_demo)
    "accounts",
    "events",
    "pipeline",
    "subscriptions",
    "rules",
    "webhooks",
    "analytics",
    "axes",  # failed logins, lockout (accounts.lockout)
]

# Requests are counted and timed by eventhub.middleware (http_requests_total and
# http_request_duration_seconds by view); django-prometheus' own request middleware would count
# each request a second time, in a dozen more series, on every API call.
MIDDLEWARE = [
    # outside the others, so the errors they answer (a disallowed Host) become problems too
    "core.problems.ApiProblemMiddleware",
    # the request id (X-Request-ID) of every log line and answer; http_requests_total
    "eventhub.middleware.RequestObservation",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # last: it answers for a login that axes refused (accounts.lockout)
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "eventhub.urls"
WSGI_APPLICATION = "eventhub.wsgi.application"
ASGI_APPLICATION = "eventhub.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- PostgreSQL --------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/eventhub")
try:
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0)
        )
    }
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from exc
DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env_int(
    "DATABASE_CONNECT_TIMEOUT", 5, minimum=1
)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Every app's migrations live under the top-level migrations/ package.
MIGRATION_MODULES = {
    app: f"migrations.{app}"
    for app in ("accounts", "events", "subscriptions", "rules", "webhooks", "analytics")
}

# --- Redis: Celery broker, caches, rate-limit buckets, idempotency keys --------------------------
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
REDIS_TIMEOUT = env_float("REDIS_TIMEOUT", 2.0)
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env_str("CACHE_URL", REDIS_URL),
        "KEY_PREFIX": "eventhub",
    }
}

# --- Celery ------------------------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", "") or None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 4
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULE: dict = {
    # events accepted in async mode that the broker refused wait in Redis for another try
    "republish-spooled-events": {"task": "events.tasks.republish_spooled", "schedule": 10.0},
}

# Each Celery worker serves its own /metrics on this port when set (0: off); `make up` gives
# the pipeline worker 9101 and the webhook worker 9102.
WORKER_METRICS_PORT = env_int("WORKER_METRICS_PORT", 0, minimum=0)
WORKER_METRICS_HOST = env_str("WORKER_METRICS_HOST", "127.0.0.1")
# Workers hand logging to Django's LOGGING below (JSON lines), not to Celery's own format.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- MongoDB -----------------------------------------------------------------------------------
MONGO_URL = env_str("MONGO_URL", "mongodb://127.0.0.1:27017/?replicaSet=rs0")
MONGO_DB = env_str("MONGO_DB", "eventhub")
MONGO_TIMEOUT_MS = env_int("MONGO_TIMEOUT_MS", 2000, minimum=100)

# --- Kafka -------------------------------------------------------------------------------------
KAFKA_BOOTSTRAP_SERVERS = env_str("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
KAFKA_TOPIC_EVENTS = env_str("KAFKA_TOPIC_EVENTS", "eventhub.events")
KAFKA_TOPIC_DLQ = env_str("KAFKA_TOPIC_DLQ", "eventhub.dlq")
KAFKA_TOPIC_QUARANTINE = env_str("KAFKA_TOPIC_QUARANTINE", "eventhub.quarantine")
KAFKA_PARTITIONS = env_int("KAFKA_PARTITIONS", 6, minimum=1)
KAFKA_DLQ_PARTITIONS = env_int("KAFKA_DLQ_PARTITIONS", 1, minimum=1)
KAFKA_REPLICATION_FACTOR = env_int("KAFKA_REPLICATION_FACTOR", 1, minimum=1)
# How long the broker keeps the events and quarantine topics, and the dead letters (hours);
# `manage.py ensure_kafka_topics` sets it on the topics.
KAFKA_RETENTION_HOURS = env_int("KAFKA_RETENTION_HOURS", 168, minimum=1)
KAFKA_DLQ_RETENTION_HOURS = env_int("KAFKA_DLQ_RETENTION_HOURS", 720, minimum=1)
KAFKA_SESSION_TIMEOUT_MS = env_int("KAFKA_SESSION_TIMEOUT_MS", 6000, minimum=1000)
# How long the producer keeps trying to hand a message to the broker before giving up;
# a synchronous publish answers 503 after at most this long.
KAFKA_MESSAGE_TIMEOUT_MS = env_int("KAFKA_MESSAGE_TIMEOUT_MS", 5000, minimum=100)
KAFKA_LINGER_MS = env_int("KAFKA_LINGER_MS", 2, minimum=0)

# --- Pipeline ----------------------------------------------------------------------------------
PIPELINE_GROUP_ID = env_str("PIPELINE_GROUP_ID", "eventhub-pipeline")
# A batch takes what has arrived, up to this many messages, without waiting for more; the
# consumer waits at most the timeout for the first one (then checks its lag and stop signal).
PIPELINE_BATCH_SIZE = env_int("PIPELINE_BATCH_SIZE", 2000, minimum=1)
PIPELINE_BATCH_TIMEOUT_MS = env_int("PIPELINE_BATCH_TIMEOUT_MS", 200, minimum=1)
# Longest a fetch waits at the broker when there is nothing new (librdkafka's
# fetch.wait.max.ms); new messages are answered at once whatever it is.
PIPELINE_FETCH_WAIT_MS = env_int("PIPELINE_FETCH_WAIT_MS", 100, minimum=1)
# How often the consumer compares its position with the broker's high watermarks, and how long
# it may be behind without fetching anything before it reports itself stalled.
PIPELINE_LAG_CHECK_SECONDS = env_float("PIPELINE_LAG_CHECK_SECONDS", 5.0)
PIPELINE_STALL_SECONDS = env_float("PIPELINE_STALL_SECONDS", 30.0)
# Run the pipeline consumer inside every Celery worker (also: `celery worker --pipeline`).
PIPELINE_IN_WORKER = env_bool("PIPELINE_IN_WORKER", False)
# Retention of events whose type was deleted after they were published.
DEFAULT_RETENTION_DAYS = env_int("DEFAULT_RETENTION_DAYS", 30, minimum=1)

# --- Analytics ---------------------------------------------------------------------------------
# Days a rollup of each period is kept after its period ends (MongoDB's TTL index drops it).
ANALYTICS_ROLLUP_RETENTION_DAYS = {
    "1m": env_int("ANALYTICS_ROLLUP_1M_DAYS", 2, minimum=1),
    "5m": env_int("ANALYTICS_ROLLUP_5M_DAYS", 14, minimum=1),
    "1h": env_int("ANALYTICS_ROLLUP_1H_DAYS", 90, minimum=1),
    "1d": env_int("ANALYTICS_ROLLUP_1D_DAYS", 400, minimum=1),
}
# Longest window of one analytics query, and most buckets of one time series.
ANALYTICS_MAX_WINDOW_DAYS = env_int("ANALYTICS_MAX_WINDOW_DAYS", 400, minimum=1)
ANALYTICS_MAX_BUCKETS = env_int("ANALYTICS_MAX_BUCKETS", 2000, minimum=10)

# --- Live streams (the ASGI server: SSE, WebSocket, GraphQL subscriptions) -----------------------
ASGI_PORT = env_int("ASGI_PORT", 8001, minimum=0)
# Streams open at once in one server process, and per credential (API key or user).
STREAM_MAX_PER_PROCESS = env_int("STREAM_MAX_PER_PROCESS", 1000, minimum=1)
STREAM_MAX_PER_CREDENTIAL = env_int("STREAM_MAX_PER_CREDENTIAL", 20, minimum=1)
# A client that takes nothing for this long is disconnected (its backlog stays in MongoDB).
STREAM_SEND_TIMEOUT_SECONDS = env_float("STREAM_SEND_TIMEOUT_SECONDS", 10.0)
# Events a stream may fall behind the live feed before it is ended (it resumes from its id).
STREAM_BUFFER_EVENTS = env_int("STREAM_BUFFER_EVENTS", 1000, minimum=10)
STREAM_HEARTBEAT_SECONDS = env_int("STREAM_HEARTBEAT_SECONDS", 15, minimum=1)
# How long an SSE client waits before reconnecting (the stream's retry field).
STREAM_RETRY_MS = env_int("STREAM_RETRY_MS", 2000, minimum=100)
# Seconds after a minute ends before the metrics stream sends its rollups (late events).
STREAM_METRICS_DELAY_SECONDS = env_float("STREAM_METRICS_DELAY_SECONDS", 5.0)

# --- Ingestion ---------------------------------------------------------------------------------
INGEST_MAX_EVENT_BYTES = env_int("INGEST_MAX_EVENT_BYTES", 256 * 1024, minimum=1024)
INGEST_MAX_BATCH_BYTES = env_int("INGEST_MAX_BATCH_BYTES", 8 * 1024 * 1024, minimum=1024)
INGEST_MAX_BATCH_EVENTS = env_int("INGEST_MAX_BATCH_EVENTS", 1000, minimum=1)
# Deepest nesting of objects and arrays in an event's data or metadata (MongoDB stops at 100
# levels, and the stored document adds one).
INGEST_MAX_DEPTH = env_int("INGEST_MAX_DEPTH", 64, minimum=1, maximum=90)
IDEMPOTENCY_WINDOW_SECONDS = env_int("IDEMPOTENCY_WINDOW_SECONDS", 24 * 3600, minimum=1)
EVENT_TYPE_CACHE_SECONDS = env_float("EVENT_TYPE_CACHE_SECONDS", 5.0)
# How long a process remembers what an API key or a token's user resolved to (no query per
# request): a key revoked, or a user deactivated, elsewhere is refused here within this bound.
AUTH_CACHE_SECONDS = env_float("AUTH_CACHE_SECONDS", 5.0)
# Requests above these rates per API key or user get 429 with Retry-After.
THROTTLE_PUBLISH_RATE = env_str("THROTTLE_PUBLISH_RATE", "2000/s")
THROTTLE_READ_RATE = env_str("THROTTLE_READ_RATE", "100/s")
DATA_UPLOAD_MAX_MEMORY_SIZE = INGEST_MAX_BATCH_BYTES

# --- gRPC ----------------------------------------------------------------------------------------
GRPC_HOST = env_str("GRPC_HOST", "127.0.0.1")
GRPC_PORT = env_int("GRPC_PORT", 50051, minimum=0)
# The gRPC server's own /metrics (0: off); `make up` gives it 9103.
GRPC_METRICS_PORT = env_int("GRPC_METRICS_PORT", 0, minimum=0)

# --- Demo (local use: seed_demo, demo_traffic, the demo receiver that `make up` starts) ----------
# The demo subscription delivers to http://127.0.0.1:<port>/hooks/billing; 0: no receiver.
DEMO_RECEIVER_PORT = env_int("DEMO_RECEIVER_PORT", 8002, minimum=0, maximum=65535)

# --- GraphQL -----------------------------------------------------------------------------------
GRAPHENE = {"SCHEMA": "eventhub.schema.schema"}
GRAPHQL_MAX_DEPTH = env_int("GRAPHQL_MAX_DEPTH", 8, minimum=2)
GRAPHQL_MAX_FIELDS = env_int("GRAPHQL_MAX_FIELDS", 200, minimum=10)

# --- Health checks -----------------------------------------------------------------------------
HEALTH_CHECK_TIMEOUT = env_float("HEALTH_CHECK_TIMEOUT", 2.0)
HEALTH_RETRY_AFTER = env_int("HEALTH_RETRY_AFTER", 5, minimum=1)

# --- Webhooks ----------------------------------------------------------------------------------
# Networks that webhook URLs may point at even though they are private or loopback
# (comma-separated CIDRs, e.g. "127.0.0.0/8,::1/128" for local development). Empty: none.
WEBHOOK_ALLOWED_NETWORKS = env_list("WEBHOOK_ALLOWED_NETWORKS")
# Egress beside that guard: when set, the only networks webhooks may reach, public addresses
# included (tests and CI: loopback only); and networks never reached whatever the rest says.
WEBHOOK_EGRESS_NETWORKS = env_list("WEBHOOK_EGRESS_NETWORKS")
WEBHOOK_EGRESS_DENIED_NETWORKS = env_list("WEBHOOK_EGRESS_DENIED_NETWORKS")
WEBHOOK_DEFAULT_TIMEOUT = env_int("WEBHOOK_DEFAULT_TIMEOUT", 15, minimum=1)
WEBHOOK_DEFAULT_RETRY_SCHEDULE = [5, 300, 1800, 7200, 18000, 36000, 36000]
WEBHOOK_SECRET_OVERLAP_HOURS = env_int("WEBHOOK_SECRET_OVERLAP_HOURS", 24, minimum=0)
# Deliveries one `deliver` task sends (one subscription per task), concurrently.
WEBHOOK_TASK_BATCH = env_int("WEBHOOK_TASK_BATCH", 100, minimum=1)
# Requests in flight at once per worker process, and per endpoint (host and port).
WEBHOOK_MAX_IN_FLIGHT = env_int("WEBHOOK_MAX_IN_FLIGHT", 500, minimum=1)
WEBHOOK_MAX_PER_ENDPOINT = env_int("WEBHOOK_MAX_PER_ENDPOINT", 100, minimum=1)
# Delivery tasks return once their batch is handed to the sender; recorder threads write the
# outcomes. At most this many batches are outstanding per worker process.
WEBHOOK_RECORD_IN_BACKGROUND = env_bool("WEBHOOK_RECORD_IN_BACKGROUND", True)
WEBHOOK_RECORDER_THREADS = env_int("WEBHOOK_RECORDER_THREADS", 4, minimum=1)
WEBHOOK_MAX_BATCHES_IN_FLIGHT = env_int("WEBHOOK_MAX_BATCHES_IN_FLIGHT", 200, minimum=1)
# A queued delivery no task took within this many seconds is queued again by the sweeper.
WEBHOOK_LEASE_SECONDS = env_int("WEBHOOK_LEASE_SECONDS", 60, minimum=5)
WEBHOOK_SWEEP_SECONDS = env_float("WEBHOOK_SWEEP_SECONDS", 1.0)
# A test event sent from admin or the API waits at most this long (the web request waits too).
WEBHOOK_TEST_TIMEOUT = env_int("WEBHOOK_TEST_TIMEOUT", 20, minimum=1)
# The circuit breaker disables a subscription after this many failed attempts in a row
# spanning at least this many seconds (its new deliveries are held, not dropped).
WEBHOOK_BREAKER_FAILURES = env_int("WEBHOOK_BREAKER_FAILURES", 50, minimum=1)
WEBHOOK_BREAKER_SECONDS = env_int("WEBHOOK_BREAKER_SECONDS", 3600, minimum=0)
CELERY_TASK_ROUTES = {"webhooks.tasks.deliver": {"queue": "webhooks"}}
CELERY_BEAT_SCHEDULE["sweep-deliveries"] = {
    "task": "webhooks.tasks.sweep_deliveries",
    "schedule": WEBHOOK_SWEEP_SECONDS,
}

# --- Auth and the API --------------------------------------------------------------------------
# Password guessing (the admin login and POST /api/v1/auth/token): after this many failures for
# one user name from one address, that pair is refused for this many minutes (django-axes).
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_LOCKOUT_MINUTES = env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1)
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out pair before the others
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_LOCKOUT_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiKeyAuthentication",
        "accounts.authentication.CachedJWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["core.filtering.StrictFilterBackend"],
    # The API reads JSON only (the events endpoints read their bodies themselves).
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "core.api.ProblemAutoSchema",
    "DEFAULT_PAGINATION_CLASS": "core.pagination.CursorPage",
    "EXCEPTION_HANDLER": "core.problems.problem_exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "publish": THROTTLE_PUBLISH_RATE,
        "read": THROTTLE_READ_RATE,
    },
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_MINUTES", 15, minimum=1)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("JWT_REFRESH_DAYS", 1, minimum=1)),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "EventHub API",
    "DESCRIPTION": (
        "Publish business events, manage subscriptions and follow webhook deliveries. Every "
        "error is application/problem+json (RFC 7807). Request bodies are JSON; their strings "
        "may not contain NUL (U+0000), which is refused with 400."
    ),
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Request bodies get their own components: what is read-only, and what a request may not
    # leave empty, differ between the two directions.
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Internationalisation, static files --------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Observability -----------------------------------------------------------------------------
# The process's name in logs, metrics (service_uptime_seconds) and traces; `make up` names
# each process (eventhub-web, eventhub-worker, eventhub-webhooks, eventhub-beat, eventhub-grpc).
SERVICE_NAME = env_str("SERVICE_NAME", "eventhub")
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
# OpenTelemetry traces (core.tracing), exported over OTLP/gRPC; off: no-op spans, no cost.
OTEL_ENABLED = env_bool("OTEL_ENABLED", False)
OTEL_EXPORTER_OTLP_ENDPOINT = env_str("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
# Plain-text gRPC to the collector (a local collector or sidecar); false: TLS.
OTEL_EXPORTER_OTLP_INSECURE = env_bool("OTEL_EXPORTER_OTLP_INSECURE", True)
# json: one JSON object a line, with the request id and trace id (production); plain: text.
LOG_FORMAT = env_str("LOG_FORMAT", "json")
if LOG_FORMAT not in ("json", "plain"):
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r} must be json or plain")

LOGGING = logging_config(
    LOG_FORMAT,
    LOG_LEVEL,
    # Django's and uvicorn's own loggers (the ASGI server's) go through the root's handlers
    # too, not their plain consoles
    loggers={
        name: {"handlers": [], "level": LOG_LEVEL, "propagate": True}
        for name in ("django", "uvicorn", "uvicorn.error", "uvicorn.access")
    },
)
