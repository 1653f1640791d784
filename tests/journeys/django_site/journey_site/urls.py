from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("api/sync/", views.api_sync, name="api-sync"),
    path("api/async/", views.api_async, name="api-async"),
    path("identity/", views.identity, name="identity"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("salesforce/", include("sfoauth_django.urls")),
]
