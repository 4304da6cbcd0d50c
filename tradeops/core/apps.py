from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "tradeops.core"
    label = "core"
    verbose_name = "Core"
