"""Structured logs with PII masked, EMF metrics and the batch-handler shape every function shares."""
