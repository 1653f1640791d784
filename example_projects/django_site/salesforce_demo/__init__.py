"""The example's pages: home, org (user connection), integration (JWT), status."""

#: The Django user the data migration creates (staff, so /admin/ works too).
DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-password"
