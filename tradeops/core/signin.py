"""The one sign-in page, for the screens and the admin alike (docs/security.md).

Django's ``LoginView`` with the project's template: the password is checked by
``authenticate(request, ...)``, so django-axes counts every failure per account and per address
and locks either at ``AXES_FAILURE_LIMIT`` (a 429 from its middleware); each failure and each
lock-out is audited (``tradeops/audit/signals.py``). The admin's own login URL serves this same
view, so there is one page to review. Sessions end after ``SESSION_IDLE_MINUTES`` without a
request (``SESSION_SAVE_EVERY_REQUEST``)."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters


@method_decorator([sensitive_post_parameters("password"), csrf_protect, never_cache], name="dispatch")
class SignInView(auth_views.LoginView):
    template_name = "registration/signin.html"
    redirect_authenticated_user = False  # an admin page refused for lack of rights says so here

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = self.request.user
        next_url = context.get("next") or ""
        # Signed in but sent here by the admin: the account has no admin rights (Django's wording).
        context["refused_admin"] = user.is_authenticated and next_url.startswith("/admin") and not user.is_staff
        return context


sign_in = SignInView.as_view()
sign_out = auth_views.LogoutView.as_view()
