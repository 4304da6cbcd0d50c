from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CoreConfig(AppConfig):
    name = "tradeops.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from django.apps import apps

        from tradeops.core import checks  # noqa: F401  (registers the system checks)
        from tradeops.core.db_roles import runtime_grants_after_migrate

        # post_migrate is sent once per app with models, after every migration has run; listen to
        # the first such app only, so the grants are applied once per migrate.
        first = next(config for config in apps.get_app_configs() if config.models_module is not None)
        post_migrate.connect(runtime_grants_after_migrate, sender=first, dispatch_uid="runtime_grants")
