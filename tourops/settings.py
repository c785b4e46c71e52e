"""Settings, 12-factor: everything that differs between deployments comes from the environment.

In development the launcher (``tourops.devservices``) writes the connection details of the embedded servers to
``var/services.env``; values from the real environment always win over that file.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from tourops import devservices

BASE_DIR = Path(__file__).resolve().parent.parent

_FILE_ENV = devservices.read_env_file()


def env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, _FILE_ENV.get(name, default))


def env_bool(name: str, default: bool) -> bool:
    value = env(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = env(name)
    return default if value is None else int(value)


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in (env(name, default) or "").split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY is not set (the dev launcher writes one under var/).")

# Host validation is done against the Domain table by tenants.middleware.TenantRoutingMiddleware, which runs first
# and answers 404 for any host it does not know; Django's own check would turn those into 400s.
ALLOWED_HOSTS = ["*"]
PLATFORM_HOSTS = env_list("PLATFORM_HOSTS", "platform.localhost")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "channels",
    "core",
    "tenants",
    "accounts",
    "partners",
    "tours",
    "inventory",
    "bookings",
    "events",
    "payments",
    "portals",
    "demo",
]

MIDDLEWARE = [
    "tenants.middleware.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "core.middleware.SecurityHeadersMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "core.middleware.RequestSizeLimitMiddleware",
    "tenants.middleware.TenantRoutingMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.HostBoundSessionMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "tenants.middleware.TenantContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "tourops.urls"
PLATFORM_URLCONF = "tourops.urls_platform"

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
                "csp.context_processors.nonce",
                "tenants.context_processors.tenant",
            ],
        },
    },
]

WSGI_APPLICATION = "tourops.wsgi.application"
ASGI_APPLICATION = "tourops.asgi.application"

# --- database -------------------------------------------------------------------------------------------------
# DATABASE_URL is the runtime role (not superuser, not BYPASSRLS, not owner): the app and the tests use it.
# DATABASE_OWNER_URL is the owner role: only `migrate` (and the test database set-up) switch to it.
DATABASE_URL = env("DATABASE_URL")
DATABASE_OWNER_URL = env("DATABASE_OWNER_URL") or DATABASE_URL
if not DATABASE_URL:
    raise ImproperlyConfigured("DATABASE_URL is not set; run `make run` (embedded servers) or set it.")
# The web server runs sync views on a fresh thread per request (ASGI), so Django's persistent per-thread
# connections would pile up until PostgreSQL refuses more (measured: 50 concurrent clients exhausted 100 slots).
# A process-wide psycopg pool bounds them instead: requests beyond DATABASE_POOL_MAX_SIZE wait up to
# DATABASE_POOL_TIMEOUT seconds for a connection. The tenant setting is per transaction, so a connection goes back
# to the pool clean (Django has the pool check each connection before handing it out). DATABASE_POOL_MAX_SIZE=0 turns the pool off (persistent connections, DATABASE_CONN_MAX_AGE).
DATABASE_POOL_MAX_SIZE = env_int("DATABASE_POOL_MAX_SIZE", 12)
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=0 if DATABASE_POOL_MAX_SIZE else env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=not DATABASE_POOL_MAX_SIZE,
        disable_server_side_cursors=True,  # PgBouncer transaction pooling cannot keep named cursors
    )
}
DATABASES["default"]["OPTIONS"] = {
    # Server-side prepared statements do not survive PgBouncer transaction pooling.
    "prepare_threshold": None,
}
if DATABASE_POOL_MAX_SIZE:
    DATABASES["default"]["OPTIONS"]["pool"] = {
        "min_size": 1,
        "max_size": DATABASE_POOL_MAX_SIZE,
        "timeout": env_int("DATABASE_POOL_TIMEOUT", 10),
    }
DATABASE_RUNTIME_ROLE = DATABASES["default"]["USER"]
_OWNER = dj_database_url.parse(DATABASE_OWNER_URL)
DATABASE_OWNER_CREDENTIALS = {"USER": _OWNER["USER"], "PASSWORD": _OWNER["PASSWORD"]}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Row locks (core.locking): how long a writer waits for a row another holds before giving up with a retryable
# "busy" error, and whether the global lock order is checked (a lock taken out of order raises; tests, development).
LOCK_TIMEOUT_SECONDS = env_int("LOCK_TIMEOUT_SECONDS", 5)
LOCK_ORDER_CHECK = env_bool("LOCK_ORDER_CHECK", DEBUG)

# --- cache, sessions, broker, channel layer (all Valkey/Redis) -------------------------------------------------
REDIS_URL = env("REDIS_URL")
if not REDIS_URL:
    raise ImproperlyConfigured("REDIS_URL is not set; run `make run` (embedded servers) or set it.")
REDIS_DB_OFFSET = env_int("REDIS_DB_OFFSET", 0)  # the tests give each xdist worker its own databases


def redis_url(index: int) -> str:
    return f"{REDIS_URL.rstrip('/')}/{REDIS_DB_OFFSET + index}"


CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": redis_url(0),
        "TIMEOUT": 300,
        "KEY_PREFIX": "tourops",
        "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient", "SOCKET_TIMEOUT": 2},
    },
    "sessions": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": redis_url(1),
        "TIMEOUT": 3600,
        "KEY_PREFIX": "session",
        "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient", "SOCKET_TIMEOUT": 2},
    },
}
SESSION_ENGINE = "django.contrib.sessions.backends.cache"
SESSION_CACHE_ALIAS = "sessions"
SESSION_COOKIE_AGE = 3600
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

CELERY_BROKER_URL = redis_url(2)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # keep LOGGING's handler (and its redaction) in workers
from celery.schedules import crontab  # noqa: E402 (beat schedules only)

CELERY_BEAT_SCHEDULE: dict = {
    "inventory-sweep-expired-holds": {"task": "inventory.sweep_expired_holds", "schedule": 60.0},
    "inventory-release-due-allotments": {"task": "inventory.release_due_allotments", "schedule": 300.0},
    "events-sweep-outbox": {"task": "events.sweep_outbox", "schedule": 60.0},
    "bookings-expire-lapsed": {"task": "bookings.expire_lapsed", "schedule": 60.0},
    # Reminders 48 h before departure (once per booking), and a second ask for emails whose task was lost.
    "bookings-send-reminders": {"task": "bookings.send_reminders", "schedule": 900.0},
    "inventory-extend-schedules": {
        "task": "inventory.extend_schedules",
        "schedule": crontab(hour=2, minute=30),
    },
    # Gateway payments and refunds left unsettled by a crash or a lost webhook.
    "payments-reconcile": {"task": "payments.reconcile", "schedule": 300.0},
    # Due installments charged on the saved card (hourly: a retry day starts at midnight in any time zone).
    "payments-charge-installments": {"task": "payments.charge_installments", "schedule": 3600.0},
}

# How long a hold keeps seats, per channel (a traveller checks out in minutes; an agent may need to call a client),
# and the longest any hold may be extended to, counted from when it was placed.
HOLD_TTL_SECONDS = {"retail": env_int("HOLD_TTL_RETAIL", 900), "trade": env_int("HOLD_TTL_TRADE", 3600)}
HOLD_MAX_LIFETIME_SECONDS = env_int("HOLD_MAX_LIFETIME", 4 * 3600)

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [redis_url(3)]},
    }
}

# --- auth -----------------------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "accounts.backends.EmailBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "/admin/"

# Lock-out after repeated failures, counted in Valkey (the default cache).
AXES_HANDLER = "axes.handlers.cache.AxesCacheHandler"
AXES_CACHE = "default"
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_FORM_FIELD = "email"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
AXES_VERBOSE = False
AXES_CLIENT_IP_CALLABLE = "core.http.client_ip"  # the same address, behind the same trusted proxies
AXES_ENABLE_ACCESS_FAILURE_LOG = False

OTP_TOTP_ISSUER = "tourops"
OTP_TOTP_THROTTLE_FACTOR = 1

# --- REST API -------------------------------------------------------------------------------------------------
REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_AUTHENTICATION_CLASSES": env_list(
        "API_AUTHENTICATION_CLASSES",
        "accounts.api_auth.TenantJWTAuthentication,accounts.api_auth.TenantSessionAuthentication",
    ),
    "DEFAULT_PERMISSION_CLASSES": ["tenants.permissions.IsTenantMember"],
    "DEFAULT_PAGINATION_CLASS": "core.api.CursorPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env("API_THROTTLE_ANON", "60/min"),
        "user": env("API_THROTTLE_USER", "1200/min"),
        "token": env("API_THROTTLE_TOKEN", "20/min"),
    },
    "NUM_PROXIES": env_int("NUM_PROXIES", 0),
}
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_MINUTES", 15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("JWT_REFRESH_DAYS", 7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "ALGORITHM": "HS256",
    "SIGNING_KEY": env("JWT_SIGNING_KEY", SECRET_KEY),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "tourops API",
    "DESCRIPTION": "Tenant-scoped REST API. The tenant is the host the request is sent to.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "AgencyStatusEnum": "partners.models.Agency.Status",
        "TourStatusEnum": "tours.models.Tour.Status",
        "DepartureStatusEnum": "inventory.models.Departure.Status",
        "HoldStatusEnum": "inventory.models.Hold.Status",
        "AllotmentStatusEnum": "inventory.models.Allotment.Status",
        "ChannelEnum": "tours.models.Channel",
    },
}

# --- request limits -------------------------------------------------------------------------------------------
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 1024 * 1024)
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000

# --- security -------------------------------------------------------------------------------------------------
# Behind TLS (production) every cookie is Secure and HSTS is sent; the dev launcher serves plain http on
# *.localhost and turns TLS_ENABLED off.
TLS_ENABLED = env_bool("TLS_ENABLED", True)
# Links built without a request (emails, PDFs): scheme from TLS, the tenant's primary host, this port if not default.
PUBLIC_PORT = env("PUBLIC_PORT", "")
SESSION_COOKIE_SECURE = TLS_ENABLED
CSRF_COOKIE_SECURE = TLS_ENABLED
CSRF_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = TLS_ENABLED and env_bool("SECURE_SSL_REDIRECT", True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = 31536000 if TLS_ENABLED else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = TLS_ENABLED
SECURE_HSTS_PRELOAD = TLS_ENABLED
if env_bool("TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
PERMISSIONS_POLICY = "accelerometer=(), camera=(), geolocation=(self), gyroscope=(), magnetometer=(), microphone=(), payment=(self), usb=()"

from csp.constants import NONCE, NONE, SELF  # noqa: E402

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
        "base-uri": [SELF],
        "object-src": [NONE],
    },
}

# --- Payments ---------------------------------------------------------------------------------------------------
# Each tenant's gateway credentials live in its GatewayAccount rows (encrypted). These only say where the gateways
# are: unset means Stripe and PayPal themselves; the dev launcher and the tests point them at the local fakes
# (tourops/fakes/), because there is no internet here.
STRIPE_API_BASE = env("STRIPE_API_BASE")  # e.g. http://127.0.0.1:8420
STRIPE_JS_URL = env("STRIPE_JS_URL", "https://js.stripe.com/v3/")
PAYPAL_API_BASE = env("PAYPAL_API_BASE")  # unset: api-m.paypal.com or api-m.sandbox.paypal.com per account
# Seconds before a gateway call counts as failed (and towards opening the circuit breaker).
PAYMENT_GATEWAY_TIMEOUT = float(env("PAYMENT_GATEWAY_TIMEOUT", "10"))
STRIPE_WEBHOOK_TOLERANCE = env_int("STRIPE_WEBHOOK_TOLERANCE", 300)  # seconds, as Stripe's own libraries

# --- PII encryption -------------------------------------------------------------------------------------------
PII_AEAD_KEYSET_FILE = env("PII_AEAD_KEYSET_FILE")
PII_BLIND_INDEX_KEYSET_FILE = env("PII_BLIND_INDEX_KEYSET_FILE")
PII_AEAD_KEYSET = env("PII_AEAD_KEYSET")  # JSON keyset in the environment instead of a file
PII_BLIND_INDEX_KEYSET = env("PII_BLIND_INDEX_KEYSET")

# --- i18n, static, email --------------------------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "Français"), ("de", "Deutsch"), ("es", "Español")]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
LOCALE_PATHS = [BASE_DIR / "locale"]  # our translations (emails, documents); compiled .mo files are committed

STATIC_URL = "/static/"
STATIC_ROOT = Path(env("STATIC_ROOT", str(BASE_DIR / "var" / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG

PASSWORD_RESET_TIMEOUT = 3 * 24 * 3600  # set-password links (reset and invitation) expire after three days
# Any Django backend (smtp with the EMAIL_HOST… settings below), or an email service through django-anymail, e.g.
# EMAIL_BACKEND=anymail.backends.postmark.EmailBackend with ANYMAIL={"POSTMARK_SERVER_TOKEN": "..."} (JSON).
EMAIL_BACKEND = env("EMAIL_BACKEND", "core.mail.SummaryConsoleBackend")
ANYMAIL = json.loads(env("ANYMAIL", "{}") or "{}")
# Seconds: a hung SMTP server fails the attempt (retried) instead of blocking a worker.
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 20)
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "tourops <no-reply@tourops.localhost>")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # Manage-booking tokens and check-in codes open a booking: they never reach a log line.
    "filters": {"redact_secret_urls": {"()": "core.logging.RedactSecretUrls"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact_secret_urls"]}
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's own handlers would print request paths unfiltered: everything goes through ours.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # WeasyPrint and fontTools narrate every PDF step at INFO.
        **{name: {"level": "WARNING"} for name in ("axes", "weasyprint", "fontTools")},
    },
}
