"""The story of an order, at ``/orders/<client_order_id>/`` (wired in tradeops/urls.py)."""

from django.urls import path

from compliance.views import story

app_name = "story"

urlpatterns = [path("", story.order_story_view, name="order")]
