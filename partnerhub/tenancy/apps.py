from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "partnerhub.tenancy"
    label = "tenancy"
    verbose_name = "Tenancy and access"

    def ready(self):
        from django.conf import settings

        from partnerhub.tenancy import rls

        if settings.DATABASE_ASSUME_APP_ROLE:
            rls.assume_app_role()
