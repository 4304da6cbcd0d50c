"""Admin pieces shared by the apps, and the guard on two third-party admins' actions.

Auditors are staff with every ``view_*`` permission, so the admin shows them what it shows an
officer or a risk manager; an action is offered (and run, on its POST) to whoever may view the
list unless it says otherwise. So an action that writes declares the permission it needs
(``@admin.action(permissions=[...])``), and the third-party admins whose actions write
(django-celery-beat's scheduled tasks, django-axes' sign-in attempts) are registered again here
with theirs behind the change permission, and the user admin without its password block for a
reader (``tests/screens/test_admin_read_only.py`` checks every
registered admin). This module comes after both apps in ``INSTALLED_APPS``, so autodiscovery has
registered theirs when it runs."""

from django.contrib import admin
from django.http import HttpResponseRedirect


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


class ServiceRefusalShown:
    """For an admin whose ``save_model`` calls a service that may refuse (four eyes, a rule of the
    domain) and shows the refusal as an error message: ``service_refused(request)`` there, and the
    add or change page answers with the form again (a redirect to it) instead of Django's "was
    added/changed successfully" beside the refusal, and writes no admin log entry for a change
    that did not happen. Until 2026-12-06 the kill switch and case pages said both."""

    def service_refused(self, request) -> None:
        request._service_refused = True

    @staticmethod
    def _was_refused(request) -> bool:
        return getattr(request, "_service_refused", False)

    def log_addition(self, request, obj, message):
        return None if self._was_refused(request) else super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        return None if self._was_refused(request) else super().log_change(request, obj, message)

    def response_add(self, request, obj, post_url_continue=None):
        if self._was_refused(request):
            return HttpResponseRedirect(request.get_full_path())
        return super().response_add(request, obj, post_url_continue)

    def response_change(self, request, obj):
        if self._was_refused(request):
            return HttpResponseRedirect(request.get_full_path())
        return super().response_change(request, obj)


def _user_admin_for_readers():
    """Django's user admin, without the password block for whoever may not change the user: its
    "Reset password" button led an auditor to a 403, and the hash's algorithm, iterations and
    salt prefix are nothing a reader needs."""
    from django.contrib.auth.admin import UserAdmin

    class ReaderUserAdmin(UserAdmin):
        def get_fieldsets(self, request, obj=None):
            fieldsets = super().get_fieldsets(request, obj)
            if obj is None or self.has_change_permission(request, obj):
                return fieldsets
            return [
                (name, {**options, "fields": tuple(f for f in options["fields"] if f != "password")})
                for name, options in fieldsets
            ]

    return ReaderUserAdmin


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
    from django.contrib.auth import get_user_model

    User = get_user_model()
    if admin.site.is_registered(User):
        admin.site.unregister(User)
        admin.site.register(User, _user_admin_for_readers())


_guard_third_party_actions()
