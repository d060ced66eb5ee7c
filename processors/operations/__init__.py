"""Operator tools that run beside the system (never shipped to Lambda): rebuild, table creation
from the template, reports."""
