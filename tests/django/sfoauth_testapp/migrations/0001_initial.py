# Hand-checked initial migration (generated with Django 5.2, valid for Django 4.2+).

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="CustomSalesforceConnection",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True,
                        primary_key=True,
                        serialize=False,
                        verbose_name="ID",
                    ),
                ),
                (
                    "key",
                    models.CharField(
                        editable=False,
                        max_length=255,
                        unique=True,
                        verbose_name="store key",
                    ),
                ),
                (
                    "name",
                    models.CharField(
                        blank=True,
                        default="",
                        help_text="Set for named server-to-server connections (SFOAUTH['CONNECTIONS']).",
                        max_length=100,
                        verbose_name="connection name",
                    ),
                ),
                (
                    "org_id",
                    models.CharField(
                        blank=True, db_index=True, max_length=18, verbose_name="org id"
                    ),
                ),
                (
                    "salesforce_user_id",
                    models.CharField(
                        blank=True, max_length=18, verbose_name="Salesforce user id"
                    ),
                ),
                (
                    "username",
                    models.CharField(
                        blank=True,
                        default="",
                        help_text="The JWT subject a jwt_bearer connection is minted for.",
                        max_length=255,
                        verbose_name="username",
                    ),
                ),
                (
                    "instance_url",
                    models.URLField(
                        blank=True, max_length=255, verbose_name="instance URL"
                    ),
                ),
                (
                    "identity_url",
                    models.URLField(
                        blank=True, max_length=255, verbose_name="identity URL"
                    ),
                ),
                (
                    "scopes",
                    models.TextField(blank=True, default="", verbose_name="scopes"),
                ),
                (
                    "grant",
                    models.CharField(
                        default="authorization_code",
                        max_length=32,
                        verbose_name="grant",
                    ),
                ),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("active", "Active"),
                            ("needs_reauth", "Needs re-authorization"),
                        ],
                        db_index=True,
                        default="active",
                        max_length=16,
                        verbose_name="status",
                    ),
                ),
                (
                    "reason",
                    models.TextField(blank=True, default="", verbose_name="reason"),
                ),
                (
                    "version",
                    models.PositiveBigIntegerField(default=0, verbose_name="version"),
                ),
                (
                    "token_ciphertext",
                    models.TextField(
                        blank=True,
                        default="",
                        editable=False,
                        verbose_name="encrypted token",
                    ),
                ),
                (
                    "issued_at",
                    models.DateTimeField(
                        blank=True, null=True, verbose_name="issued at"
                    ),
                ),
                (
                    "expires_at",
                    models.DateTimeField(
                        blank=True, null=True, verbose_name="expires at"
                    ),
                ),
                (
                    "created_at",
                    models.DateTimeField(auto_now_add=True, verbose_name="created at"),
                ),
                (
                    "updated_at",
                    models.DateTimeField(auto_now=True, verbose_name="updated at"),
                ),
                ("team", models.CharField(blank=True, default="", max_length=50)),
                (
                    "user",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="%(app_label)s_%(class)s_set",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="user",
                    ),
                ),
            ],
            options={
                "verbose_name": "Salesforce connection",
                "verbose_name_plural": "Salesforce connections",
                "abstract": False,
                "swappable": "SFOAUTH_TOKEN_MODEL",
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(("name", "")),
                        fields=("user", "org_id"),
                        name="sfoauth_testapp_customsalesforceconnection_one_per_user_and_org",
                    ),
                    models.UniqueConstraint(
                        condition=models.Q(("name", "")),
                        fields=("org_id", "salesforce_user_id"),
                        name="sfoauth_testapp_customsalesforceconnection_one_per_salesforce_user",
                    ),
                ],
            },
        ),
    ]
