"""The HTTP API: ingest (webhooks, messages, admin) and reads over the views, API Gateway HTTP API v2."""
