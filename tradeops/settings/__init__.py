"""Settings package: ``base`` (shared), ``local`` (the default), ``production``.

``DJANGO_SETTINGS_MODULE`` picks one; ``manage.py`` defaults to ``tradeops.settings.local``.
"""
