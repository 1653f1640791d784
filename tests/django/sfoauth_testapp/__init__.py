"""A test project app: views using sfoauth_django and a swapped connection model."""
