from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "partnerhub.integrations"
    label = "integrations"
    verbose_name = "Integrations"

    def ready(self) -> None:
        from partnerhub.integrations import secrets  # noqa: F401  (registers the deploy check)
