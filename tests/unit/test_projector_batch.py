"""The projector's partial batch response, built without Powertools' BatchProcessor (issue 13 §5)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from processors.handlers.projector import project_records
from projections.batch import BatchOutcome, Entry, StreamResult


def record(sequence: str, stream: str, image: dict | None = None) -> dict:
    """A DynamoDB stream record as the event source mapping delivers it (only what the projector reads)."""
    dynamodb: dict = {"SequenceNumber": sequence, "Keys": {"stream": {"S": stream}, "version": {"N": "1"}}}
    if image is not None:
        dynamodb["NewImage"] = image
    return {"eventName": "INSERT", "dynamodb": dynamodb}


def test_every_record_is_folded_once_in_order_and_only_held_back_streams_are_reported():
    records = [record("1", "sku:a"), record("2", "sku:b"), record("3", "sku:a"), record("4", "sku:b")]
    seen: list[list[Entry]] = []

    def project(entries: list[Entry]) -> BatchOutcome:
        seen.append(entries)
        return BatchOutcome([StreamResult("sku:a"), StreamResult("sku:b", failed_from="2", failure="boom")])

    outcome, response = project_records(records, project)
    [entries] = seen
    assert [(e.sequence_number, e.stream) for e in entries] == [("1", "sku:a"), ("2", "sku:b"), ("3", "sku:a"),
                                                                 ("4", "sku:b")]
    # No NewImage is undecodable: poison, reported to the fold with its error rather than raised.
    assert all(e.event is None and e.error and e.error.startswith("KeyError") for e in entries)
    assert outcome.failed_sequence_numbers == ["2"]
    assert response == {"batchItemFailures": [{"itemIdentifier": "2"}]}


def test_a_fully_applied_or_empty_batch_reports_no_failures():
    assert project_records([], lambda entries: BatchOutcome([]))[1] == {"batchItemFailures": []}
    applied = project_records([record("9", "sku:c")], lambda entries: BatchOutcome([StreamResult("sku:c")]))
    assert applied[1] == {"batchItemFailures": []}


def test_building_the_projector_leaves_out_the_reactors_rules():
    """The projector folds and never reacts: the reactor's rule modules stay off its cold start
    (its import and the first invocation's build by the composition root)."""
    script = ("import sys, json, processors.functions.projector\n"
              "from processors.wiring.aws import aws_root\n"
              "aws_root({'EVENTS_TABLE': 'e', 'IDEMPOTENCY_TABLE': 'i', 'CHECKPOINTS_TABLE': 'c', 'AWS_DEFAULT_REGION': 'us-east-1'}).projector\n"
              "print(json.dumps(sorted(m for m in sys.modules if m.startswith('projections.reactor'))))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                          env={**os.environ, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"})
    assert json.loads(done.stdout) == []
