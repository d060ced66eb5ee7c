"""``python -m processors.api > openapi.json``: the committed OpenAPI document, from the route table."""

import sys

from processors.api.app import ROUTES
from processors.api.openapi import render

sys.stdout.write(render(ROUTES))
