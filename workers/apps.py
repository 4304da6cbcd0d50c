from django.apps import AppConfig


class WorkersConfig(AppConfig):
    """Runners (execution worker, collector, ...). An app only so its management commands load;
    it has no models, and no other app imports it."""

    name = "workers"
    label = "workers"
    verbose_name = "Workers"
