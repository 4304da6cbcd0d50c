"""OAuth2 endpoints (``/o/``): the token endpoint and revocation only. django-oauth-toolkit's
application-management and authorisation views are not wired: clients are made with
``manage.py api_client``."""

from django.urls import path

from tradeops.api.oauth import RevokeTokenView, TokenView

app_name = "oauth2"
urlpatterns = [
    path("token/", TokenView.as_view(), name="token"),
    path("revoke_token/", RevokeTokenView.as_view(), name="revoke-token"),
]
