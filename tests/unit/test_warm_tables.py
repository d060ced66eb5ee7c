"""A rebuild's new table versions are pre-warmed (CreateTable WarmThroughput) to what the fill writes.

Contract: https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_CreateTable.html
(WarmThroughput: ReadUnitsPerSecond / WriteUnitsPerSecond, also on each GlobalSecondaryIndex), and
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/warm-throughput.html (a new on-demand
table starts at 12,000 reads / 4,000 writes per second; pre-warming is charged once). The requests
are validated against botocore's own DynamoDB model; moto stands in for AWS (it applies
WarmThroughput and reports it in DescribeTable, and refuses values below the default as AWS does).
"""

from __future__ import annotations

import boto3
import botocore.session
import pytest
from botocore.validate import ParamValidator
from moto import mock_aws

from processors.operations.rebuild import check_warm_writes, scale_plan, warm_targets
from processors.operations.tables import create_copy, with_warm_throughput
from processors.operations.template import table_definitions
from events.errors import DynafoldError
from projections.rebuild.plan import (
    NEW_TABLE_WRITES,
    PREWARM_MIN_SECONDS,
    TABLE_WRITE_QUOTA,
    assumed,
    scale_estimate,
    warm_writes_for,
)

CREATE_TABLE = botocore.session.get_session().get_service_model("dynamodb").operation_model("CreateTable")


def valid(request: dict) -> bool:
    report = ParamValidator().validate(request, CREATE_TABLE.input_shape)
    assert not report.has_errors(), report.generate_report()
    return True


def alerts_request() -> dict:
    return table_definitions()["alerts-v1"].create_table_kwargs("dynafold-dev-alerts-v2")


def test_the_installed_botocore_model_has_warm_throughput_on_tables_and_indexes():
    model = botocore.session.get_session().get_service_model("dynamodb")
    assert set(CREATE_TABLE.input_shape.members["WarmThroughput"].members) == {"ReadUnitsPerSecond",
                                                                              "WriteUnitsPerSecond"}
    assert "WarmThroughput" in model.shape_for("GlobalSecondaryIndex").members
    assert "WarmThroughput" in model.shape_for("TableDescription").members


def test_without_warm_throughput_the_request_is_the_template_one():
    request = alerts_request()
    assert with_warm_throughput(request, 0) == request and "WarmThroughput" not in request
    assert valid(with_warm_throughput(request, 0))


def test_warm_throughput_goes_on_the_table_and_every_index_and_leaves_reads_at_the_default():
    request = alerts_request()
    warmed = with_warm_throughput(request, 20_000)
    assert valid(warmed)
    assert warmed["WarmThroughput"] == {"WriteUnitsPerSecond": 20_000}
    assert [index["WarmThroughput"] for index in warmed["GlobalSecondaryIndexes"]] == \
        [{"WriteUnitsPerSecond": 20_000}] * len(request["GlobalSecondaryIndexes"]) == [{"WriteUnitsPerSecond": 20_000}] * 3
    assert "WarmThroughput" not in request["GlobalSecondaryIndexes"][0]  # the template's request is untouched
    no_index = with_warm_throughput(table_definitions()["inventory-v1"].create_table_kwargs("t-inventory-v2"), 8_000)
    assert valid(no_index) and "GlobalSecondaryIndexes" not in no_index
    with pytest.raises(ValueError, match="below the on-demand default"):
        with_warm_throughput(request, NEW_TABLE_WRITES - 1)


@pytest.fixture
def client():
    with mock_aws():
        yield boto3.client("dynamodb", region_name="us-east-1")


def test_a_warmed_copy_describes_its_warm_throughput_and_warns_of_nothing(client):
    warnings: list[str] = []
    assert create_copy(client, "alerts-v1", "dynafold-dev-alerts-v2", warm_writes=9_000, warn=warnings.append)
    table = client.describe_table(TableName="dynafold-dev-alerts-v2")["Table"]
    assert table["WarmThroughput"]["WriteUnitsPerSecond"] == 9_000
    assert {index["WarmThroughput"]["WriteUnitsPerSecond"] for index in table["GlobalSecondaryIndexes"]} == {9_000}
    assert warnings == []
    assert create_copy(client, "inventory-v1", "dynafold-dev-inventory-v2", warn=warnings.append)
    cold = client.describe_table(TableName="dynafold-dev-inventory-v2")["Table"]["WarmThroughput"]
    assert cold["WriteUnitsPerSecond"] == NEW_TABLE_WRITES and warnings == []  # not pre-warmed: the default


def test_the_warm_value_is_what_the_fill_writes_within_the_quota_and_only_when_it_pays():
    long_fill = int(NEW_TABLE_WRITES * PREWARM_MIN_SECONDS) + 1
    assert warm_writes_for(long_fill, 12_345.0) == 13_000  # rounded up to a thousand
    assert warm_writes_for(long_fill, 1e6) == TABLE_WRITE_QUOTA
    assert warm_writes_for(long_fill, 1e6, quota=100_000) == 100_000  # a raised quota (DescribeLimits)
    assert warm_writes_for(long_fill, NEW_TABLE_WRITES) == 0  # the default takes it
    assert warm_writes_for(long_fill - 2, 1e6) == 0  # done within 5 minutes even cold


def test_the_estimate_says_what_is_pre_warmed_and_what_is_charged():
    big = assumed(100_000_000)
    warm = scale_plan(big, on_aws=True, workers=64, warm_targets=13)
    assert warm.warm_writes == TABLE_WRITE_QUOTA and warm.bound == "write quota"
    assert warm.prewarm_units == (TABLE_WRITE_QUOTA - NEW_TABLE_WRITES) * 13
    [line] = [line for line in warm.assumptions if "pre-warmed" in line]
    assert "40,000 writes/s" in line and "13 tables and indexes" in line and "charged once" in line
    assert "468,000 write units/s" in line and warm.to_dict()["prewarm_units"] == 468_000
    capped = scale_plan(big, on_aws=True, workers=64, max_write_rate=10_000)
    assert capped.warm_writes == 10_000 and capped.fill_seconds == pytest.approx(big.rows / 10_000)
    off = scale_plan(big, on_aws=True, workers=64, warm_writes=0)
    assert off.warm_writes == 0 and off.prewarm_units == 0
    assert off.fill_seconds == pytest.approx(warm.fill_seconds * TABLE_WRITE_QUOTA / NEW_TABLE_WRITES)
    assert any("start at 4,000 writes/s (not pre-warmed: --warm-writes 0)" in line for line in off.assumptions)
    small = scale_estimate(assumed(10_000), mode="aws", workers=64, worker_events_per_second=4_200,
                           compare_rows_per_second=5_000)
    assert small.warm_writes == 0 and any("under 5 minutes" in line for line in small.assumptions)


def test_warm_targets_count_tables_and_indexes_and_bad_values_are_refused():
    assert warm_targets(["inventory", "inventory-returns"]) == 2
    assert warm_targets(["alerts"]) == 4  # the table and its three indexes
    check_warm_writes(None, TABLE_WRITE_QUOTA)
    check_warm_writes(0, TABLE_WRITE_QUOTA)
    check_warm_writes(TABLE_WRITE_QUOTA, TABLE_WRITE_QUOTA)
    for bad in (NEW_TABLE_WRITES - 1, TABLE_WRITE_QUOTA + 1):
        with pytest.raises(DynafoldError, match="--warm-writes must be 0"):
            check_warm_writes(bad, TABLE_WRITE_QUOTA)
