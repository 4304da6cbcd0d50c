"""Admin pieces shared by the apps, and the guard on two third-party admins' actions.

Auditors are staff with every ``view_*`` permission, so the admin shows them what it shows an
officer or a risk manager; an action is offered (and run, on its POST) to whoever may view the
list unless it says otherwise. So an action that writes declares the permission it needs
(``@admin.action(permissions=[...])``), and the third-party admins whose actions write
(django-celery-beat's scheduled tasks, django-axes' sign-in attempts) are registered again here
with theirs behind the change permission (``tests/screens/test_admin_read_only.py`` checks every
registered admin). This module comes after both apps in ``INSTALLED_APPS``, so autodiscovery has
registered theirs when it runs."""

from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by services only: no add, change or delete through the admin."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ActionsNeedChange:
    """Every action of this admin needs the change permission: a reader (an auditor) is offered
    none, and Django runs only the actions it offers, so a forged POST does nothing either."""

    def get_actions(self, request):
        actions = super().get_actions(request)
        return actions if self.has_change_permission(request) else {}


def _guard_third_party_actions() -> None:
    from axes.admin import AccessAttemptAdmin
    from axes.models import AccessAttempt
    from django_celery_beat.admin import PeriodicTaskAdmin
    from django_celery_beat.models import PeriodicTask

    # enable, disable, toggle and run the schedules (regulatory reports, audit digest, verification)
    # and axes' clean-up of expired attempts (a delete)
    for model, base in ((PeriodicTask, PeriodicTaskAdmin), (AccessAttempt, AccessAttemptAdmin)):
        if admin.site.is_registered(model):
            admin.site.unregister(model)
            admin.site.register(model, type(base.__name__, (ActionsNeedChange, base), {"__module__": __name__}))


_guard_third_party_actions()
