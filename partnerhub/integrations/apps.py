from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "partnerhub.integrations"
    label = "integrations"
    verbose_name = "Integrations"
