#!/usr/bin/env python
"""The journey tests' Django project (started by tests/journeys/test_django_journey.py)."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "journey_site.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
