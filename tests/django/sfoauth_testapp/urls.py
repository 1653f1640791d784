from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("salesforce/", include("sfoauth_django.urls")),
    path("whoami/", views.whoami, name="whoami"),
    path("awhoami/", views.awhoami, name="awhoami"),
    path("limits/", views.limits, name="limits"),
    path("alimits/", views.alimits, name="alimits"),
    path("integration/", views.integration, name="integration"),
    path("cbv/", views.WhoAmIView.as_view(), name="cbv"),
    path("acbv/", views.AsyncWhoAmIView.as_view(), name="acbv"),
    path("plain/", views.plain, name="plain"),
    path("decorated/", views.decorated, name="decorated"),
    path("optional/", views.optional, name="optional"),
    path("optional-none/", views.optional_none, name="optional-none"),
    path("aoptional-none/", views.aoptional_none, name="aoptional-none"),
    path("page/", views.page, name="page"),
    path("api-page/", views.api_page, name="api-page"),
    path("aapi-page/", views.aapi_page, name="aapi-page"),
    # The documented app login for projects without one (docs/django.md).
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(template_name="sfoauth/app_login.html"),
        name="login",
    ),
]
