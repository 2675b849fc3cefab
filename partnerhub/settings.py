"""PartnerHub settings. Configuration comes only from the environment (see README, Configuration).

With nothing set, the portal runs on the embedded default: SQLite, tasks executed eagerly, email
printed to the console. Setting DATABASE_URL and REDIS_URL switches to the production-like stack.
"""

from pathlib import Path

import environ
from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env("SECRET_KEY", default="insecure-partnerhub-development-key-change-me-in-production")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Production-like deployments: verified email addresses, secure cookies, HSTS.
PRODUCTION = env.bool("PRODUCTION", default=False)

INSTALLED_APPS = [
    # Our apps first: tenancy's `migrate` command wraps Django's (schema work runs as the owner).
    "partnerhub.tenancy",
    "partnerhub.partners",
    "partnerhub.integrations",
    "scorecards",
    "reviews",
    "actions",
    "recognition",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "partnerhub.tenancy.middleware.TenantMiddleware",
    "partnerhub.tenancy.middleware.RequireMfaMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "partnerhub.urls"
WSGI_APPLICATION = "partnerhub.wsgi.application"

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
                "partnerhub.tenancy.context_processors.workspace",
                "scorecards.correction_views.open_requests_link",
            ],
        },
    }
]

# --- Database -------------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'partnerhub.sqlite3'}")}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The PostgreSQL role the application's queries run as: not superuser, not BYPASSRLS, not owner.
DATABASE_APP_ROLE = env("DATABASE_APP_ROLE", default="partnerhub_app")
# Set when DATABASE_URL connects as the schema owner: sessions then SET ROLE to DATABASE_APP_ROLE.
DATABASE_ASSUME_APP_ROLE = env.bool("DATABASE_ASSUME_APP_ROLE", default=False)

# --- Cache, Celery --------------------------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or None
# Without a broker (the demo, laptop tests) tasks run in-process, synchronously.
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=300)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=360)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 3600
CELERY_BEAT_SCHEDULE: dict = {
    # Fans out one nightly recompute per active tenant (the current and the last closed period).
    "scorecards-nightly-recompute": {
        "task": "scorecards.nightly_recompute_fanout_task",
        "schedule": crontab(hour=2, minute=30),
    },
    # Queues each tenant's CRM syncs whose schedule has come round, and resumes interrupted ones.
    "integrations-sync-due": {
        "task": "integrations.sync_due_fanout_task",
        "schedule": crontab(minute="*/5"),
    },
    # Forgets idempotency keys of API pushes older than 24 hours, per tenant.
    "integrations-idempotency-keys-expire": {
        "task": "integrations.idempotent_requests_expire_fanout_task",
        "schedule": crontab(minute=17),
    },
    # Emails each owner one digest of their overdue actions, once per due date, per tenant.
    "actions-overdue-reminders": {
        "task": "actions.overdue_reminders_fanout_task",
        "schedule": crontab(hour=7, minute=0),
    },
}
CELERY_TIMEZONE = "UTC"

# --- Scoring --------------------------------------------------------------------------------------
# Flags: a drop of at least this many points in one period is a regression; changes under the
# stagnation threshold for three periods in a row are stagnation.
SCORECARD_REGRESSION_POINTS = env.float("SCORECARD_REGRESSION_POINTS", default=10.0)
SCORECARD_STAGNATION_POINTS = env.float("SCORECARD_STAGNATION_POINTS", default=2.0)

# --- Data sources ---------------------------------------------------------------------------------
# Fernet keys (urlsafe base64, 32 bytes) that encrypt data-source credentials at rest; the first
# encrypts, all decrypt, so a key is rotated by putting the new one first. Generate one with
#   python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"
# Without keys (development and tests only) a key is derived from SECRET_KEY; production refuses
# to start without them.
CREDENTIALS_KEYS = env.list("CREDENTIALS_KEYS", default=[])

# --- Auth, accounts -------------------------------------------------------------------------------
AUTH_USER_MODEL = "tenancy.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_HASHERS = env.list(
    "PASSWORD_HASHERS",
    default=[
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    ],
)
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"
ACCOUNT_ADAPTER = "partnerhub.tenancy.accounts.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = env("ACCOUNT_EMAIL_VERIFICATION", default="mandatory" if PRODUCTION else "optional")
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_SESSION_REMEMBER = None
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[PartnerHub] "
# Failed logins are limited per IP and per account: past the limit the sign-in form refuses every
# attempt for that account, even with the right password. Sign-in posts from one address are
# limited as a whole too; past that limit allauth answers 429 (templates/429.html).
ACCOUNT_RATE_LIMITS = {
    "login": env("LOGIN_IP_RATE_LIMIT", default="30/m/ip"),
    "login_failed": env("LOGIN_RATE_LIMIT", default="10/m/ip,5/5m/key"),
    "reset_password": "20/m/ip,5/m/key",
}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "PartnerHub"
INVITATION_TTL_DAYS = env.int("INVITATION_TTL_DAYS", default=14)

# --- Email ----------------------------------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="PartnerHub <no-reply@partnerhub.local>")
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000")

# --- API ------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "partnerhub.tenancy.api.authentication.ApiKeyAuthentication",
        "partnerhub.tenancy.api.authentication.TenantSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["partnerhub.tenancy.api.permissions.TenantMember"],
    "DEFAULT_THROTTLE_CLASSES": ["partnerhub.tenancy.api.throttling.PrincipalRateThrottle"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "partnerhub.tenancy.api.pagination.PageNumberPagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "partnerhub.tenancy.api.exceptions.exception_handler",
    "PAGE_SIZE": 50,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
API_THROTTLE_RATE = env("API_THROTTLE_RATE", default="600/min")
SPECTACULAR_SETTINGS = {
    "TITLE": "PartnerHub API",
    "DESCRIPTION": (
        "Partner performance data for integrations. Authenticate with an API key "
        "(`Authorization: Api-Key phk_...`); the key decides the tenant. Browser sessions work too."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI is served from our own static files (drf-spectacular-sidecar): no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

# --- Static, i18n ---------------------------------------------------------------------------------
STATIC_URL = "static/"
# Collected files (production); in development WhiteNoise serves straight from the app folders.
STATIC_ROOT = env("STATIC_ROOT", default=str(BASE_DIR / "var" / "static")) if PRODUCTION else None
WHITENOISE_USE_FINDERS = not PRODUCTION
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
MEDIA_ROOT = env("MEDIA_ROOT", default=str(BASE_DIR / "var" / "media"))
LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# --- Security -------------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=3600 if PRODUCTION else 0)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("BEHIND_PROXY", default=False) else None
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
