from django.apps import AppConfig


class OutboxConfig(AppConfig):
    name = "tradeops.outbox"
    label = "outbox"
    verbose_name = "Transactional outbox"
