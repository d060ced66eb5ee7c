"""What a function's cold start leaves out (issue 21 §2: each function's import at most 1.3x
`import boto3`, measured by `python -m benchmarks cold-import` from the SAM-zipped artifact).

No timing here: each entry point is imported in a fresh interpreter, as Lambda's Init does, and the
modules deferred to where they are first used must not be in ``sys.modules`` afterwards. A module
named here that comes back at import puts its cost back on every cold start of that function.
The first invocation then builds the handler (the composition root): it builds only the AWS
clients the handler holds, each once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from processors.adapters import aws
from processors.wiring.aws import aws_root

ROOT = Path(__file__).resolve().parents[2]
ENTRY_POINTS = sorted(p.stem for p in (ROOT / "processors" / "functions").glob("*.py") if p.stem != "__init__")

# No function's import loads these; each is loaded where it is first used.
NEVER_AT_IMPORT = {
    "boto3": "~150 ms, the goal's whole baseline: imported when the composition root builds the first client",
    "cryptography": "sealing and revealing load it with the first personal value (events/cipher.py)",
    "jinja2": "the console's first rendered page loads it",
    "yaml": "only the operator tools read template.yaml",
    "cloudevents": "a webhook delivery builds its CloudEvent per job",
    "asyncio": "nothing here is async; Powertools' batch utility brought it",
    "aws_lambda_powertools.utilities.batch": "the partial batch response is ours (processors/telemetry/lambda_batch.py)",
    "aws_lambda_powertools.utilities.data_classes": "handlers read Lambda's records as dicts",
    "urllib.request": "http.client, ssl and email: the InFlow client loads it with the first order it fetches",
    "projections.registry": "every view's fold and queries: the composition root or the first read loads it",
    "processors.api.openapi": "only GET /openapi.json builds the document",
    "tempfile": "with shutil, lzma and bz2: only the local stack writes the active view versions to a file",
}
# What one function's import could easily pull in again, and must not.
ALSO_NOT_AT_IMPORT = {
    "ingest": {"projections.queries": "the views' reads: built by the composition root, used by the read routes",
               "projections.inventory": "the adoption route folds a SKU's history; a webhook never does",
               "projections.unit": "the views' query helpers: the read, status and redrive routes load them"},
    "error_monitor": {"http.client": "with urllib.request: most runs find nothing due and fetch no order",
                      "projections.reactor.rules": "the alert given instead of an email, only without a mailer",
                      "projections.queries": "the pending-errors query: built by the composition root"},
    "projector": {"events.shopify": "Shopify's webhook payloads are the ingest function's"},
    "console": {"pydantic": "a page loads the domain's models when it reads (processors/console)"},
}
SHOPIFY_ENV = {"DYNAFOLD_SHOPIFY_SHOP": "", "DYNAFOLD_SHOPIFY_ADMIN_URL": ""}  # no admin origin to check


def loaded_after_import(entry_point: str, names: list[str]) -> list[str]:
    """Which of ``names`` are in sys.modules after a fresh interpreter imports the entry point."""
    script = (f"import json, sys\nimport processors.functions.{entry_point}\n"
              f"print(json.dumps([name for name in {names!r} if name in sys.modules]))")
    env: dict[str, Any] = {**os.environ, **SHOPIFY_ENV}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    loaded: list[str] = json.loads(done.stdout)
    return loaded


def test_every_entry_point_is_checked():
    assert set(ALSO_NOT_AT_IMPORT) <= set(ENTRY_POINTS)
    assert {"ingest", "projector", "reactor", "console"} <= set(ENTRY_POINTS)


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_the_cold_import_leaves_out_what_is_loaded_where_first_used(entry_point):
    deferred = {**NEVER_AT_IMPORT, **ALSO_NOT_AT_IMPORT.get(entry_point, {})}
    loaded = loaded_after_import(entry_point, sorted(deferred))
    assert not loaded, "\n".join(f"{entry_point} imports {name}: {deferred[name]}" for name in loaded)


def test_building_the_reactor_makes_one_sqs_client_and_no_kms_client(monkeypatch):
    """The reactor sends to the job queue and the dead-letter queue through one SQS client, and
    builds a KMS client only when it first seals a value (its reads stay sealed): each client is
    ~50 ms of a cold start's first invocation."""
    made: list[str] = []
    session = aws._session

    class CountingSession:
        def client(self, service: str, **kwargs: Any) -> Any:
            made.append(service)
            return session().client(service, **kwargs)

    monkeypatch.setattr(aws, "_session", CountingSession)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    env = {"EVENTS_TABLE": "e", "IDEMPOTENCY_TABLE": "i", "CHECKPOINTS_TABLE": "c", "KEYS_TABLE": "k",
           "AWS_DEFAULT_REGION": "us-east-1", "DELIVERY_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/jobs",
           "DELIVERY_DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/dead"}
    root = aws_root(env)
    root.handler("reactor")
    assert sorted(made) == ["dynamodb", "sqs"]
    assert "keyring" in root.__dict__  # wired (the keyless store seals what it appends); no KMS client yet
