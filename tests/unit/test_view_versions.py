"""Active view versions: handlers follow a switch through the SSM parameter (AWS) or the local file."""

from __future__ import annotations

import json

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from processors.wiring.config import Tables
from processors.adapters.view_versions import ActiveViewTables, LocalVersions, SsmVersions, with_version

ENV = {"EVENTS_TABLE": "s-events", "IDEMPOTENCY_TABLE": "s-idempotency", "CHECKPOINTS_TABLE": "s-checkpoints",
       "VIEW_TABLES": json.dumps({"inventory": "s-inventory-v1", "alerts": "s-alerts-v1"})}


def test_with_version_replaces_only_the_version_suffix():
    assert with_version("stack-v1-inventory-returns-v1", "v12") == "stack-v1-inventory-returns-v12"
    with pytest.raises(ValueError):
        with_version("events", "v2")


@mock_aws
def test_handlers_follow_the_ssm_parameter_without_a_redeploy(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    ssm = boto3.client("ssm", region_name="us-east-1")
    ssm.put_parameter(Name="/s/view-versions", Value="{}", Type="String")
    tables = Tables.from_env({**ENV, "VIEW_VERSIONS_PARAMETER": "/s/view-versions"})
    assert tables.views["inventory"] == "s-inventory-v1"

    written = SsmVersions("/s/view-versions", client=ssm).write({"inventory": "v2"})
    assert written == {"inventory": "v2"}
    parameters.clear_caches()  # as if the 30-second cache had run out
    assert (tables.views["inventory"], tables.views["alerts"]) == ("s-inventory-v2", "s-alerts-v1")
    assert dict(Tables.from_env(ENV).views) == json.loads(ENV["VIEW_TABLES"])  # no parameter: as deployed


def test_local_settings_file_is_followed_as_it_changes(tmp_path):
    versions = LocalVersions(tmp_path / "views.json")
    tables = ActiveViewTables({"inventory": "p-inventory-v1"}, versions.read)
    assert tables["inventory"] == "p-inventory-v1"
    versions.write({"inventory": "v3"})
    assert tables["inventory"] == "p-inventory-v3" and dict(tables) == {"inventory": "p-inventory-v3"}
