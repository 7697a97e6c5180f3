"""`python -m demo_product runserver 127.0.0.1:8001`: Django's command line on the demo
product's own settings."""

import os
import sys

from django.core.management import execute_from_command_line

if __name__ == "__main__":
    os.environ["DJANGO_SETTINGS_MODULE"] = "demo_product.settings"
    execute_from_command_line(sys.argv)
