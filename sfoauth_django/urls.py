"""``path("salesforce/", include("sfoauth_django.urls"))``: ``sfoauth:login``,
``sfoauth:callback`` and ``sfoauth:disconnect``."""

from __future__ import annotations

from django.urls import path

from . import views

app_name = "sfoauth"

urlpatterns = [
    path("login/", views.login, name="login"),
    path("callback/", views.callback, name="callback"),
    path("disconnect/", views.disconnect, name="disconnect"),
]
