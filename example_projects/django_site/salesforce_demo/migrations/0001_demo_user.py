"""Seed the demo user (``demo`` / ``demo-password``) so ``migrate`` is the only setup step."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.hashers import make_password
from django.db import migrations

from salesforce_demo import DEMO_PASSWORD, DEMO_USERNAME


def create_demo_user(apps: Any, schema_editor: Any) -> None:
    user_model = apps.get_model("auth", "User")
    if user_model.objects.filter(username=DEMO_USERNAME).exists():
        return
    user_model.objects.create(
        username=DEMO_USERNAME,
        password=make_password(DEMO_PASSWORD),
        email="demo@example.com",
        first_name="Demo",
        is_staff=True,
        is_superuser=True,
    )


def delete_demo_user(apps: Any, schema_editor: Any) -> None:
    apps.get_model("auth", "User").objects.filter(username=DEMO_USERNAME).delete()


class Migration(migrations.Migration):
    dependencies = [("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(create_demo_user, delete_demo_user)]
