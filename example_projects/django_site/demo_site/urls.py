"""URLs of the example site.

=========================  =========================================================
``/``                      home: Django login link, "Connect Salesforce" button
``/org/``                  ``@salesforce_required``: limits and Accounts via
                           ``request.salesforce.client``
``/integration/``          ``@salesforce_required(connection="integration")`` (JWT)
``/status/``               the stored connections (ids, scopes, status; no token)
``/salesforce/login/``     sfoauth_django (``sfoauth:login``, POST + CSRF)
``/salesforce/callback``   sfoauth's callback (with and without the trailing slash)
``/salesforce/disconnect/`` POST + CSRF
``/accounts/login/``       Django's login (the demo user)
``/admin/``                Django admin (connections are listed without secrets)
``/healthz``               ``ok``
=========================  =========================================================
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from salesforce_demo import views

from sfoauth_django import views as sfoauth_views

urlpatterns = [
    path("", views.home, name="home"),
    path("org/", views.org, name="org"),
    path("integration/", views.integration, name="integration"),
    path("status/", views.status, name="status"),
    path("healthz", views.healthz, name="healthz"),
    # The callback URL registered on the emulator's default app (and shared with the
    # FastAPI example) has no trailing slash.
    path("salesforce/callback", sfoauth_views.callback),
    path("salesforce/", include("sfoauth_django.urls")),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
]
