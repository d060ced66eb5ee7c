"""The guard settings of template.yaml and samconfig.toml, so a careless edit fails CI.

Parsed as data (processors.operations.template keeps intrinsics as Tags), no SAM tooling needed. The
expanded-CloudFormation view of the same guarantees is in tests/integration/test_sam_template.py.
"""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path
from typing import Any

import pytest

from processors.local.stream_runner import settings_from_template
from processors.operations.template import Tag, load_template, table_definitions
from tests.template_helpers import (
    DYNAMODB_TABLE_ACTIONS,
    EVENT_HARMLESS_ACTIONS,
    EVENT_MUTATIONS,
    EVENT_READ_ACTIONS,
    actions_on,
    as_list,
    refs,
    samconfig,
    samconfig_overrides,
    statements,
    strings,
)

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
PARAMETERS: dict[str, Any] = TEMPLATE["Parameters"]
GLOBAL_FUNCTION = TEMPLATE["Globals"]["Function"]
STREAM_READERS = ("ProjectorFunction", "ReactorFunction")
PARALLELIZATION = {"ProjectorFunction": Tag("Ref", "ProjectorParallelizationFactor"), "ReactorFunction": 1}


def of_type(kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in RESOURCES.items() if r.get("Type") == kind}


FUNCTIONS = of_type("AWS::Serverless::Function")
TABLES = of_type("AWS::DynamoDB::Table")
ALARMS = of_type("AWS::CloudWatch::Alarm")
MANAGED_POLICIES = of_type("AWS::IAM::ManagedPolicy")
QUEUES = of_type("AWS::SQS::Queue")


def props(resource: dict[str, Any]) -> dict[str, Any]:
    return resource.get("Properties") or {}


def stream_events(function: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["Properties"] for e in (props(function).get("Events") or {}).values() if e["Type"] == "DynamoDB"]


def environment(function: dict[str, Any]) -> dict[str, Any]:
    merged = dict(GLOBAL_FUNCTION.get("Environment", {}).get("Variables", {}))
    merged.update(((props(function).get("Environment") or {}).get("Variables")) or {})
    return merged


def alarms_on(namespace: Any, metric: str) -> list[dict[str, Any]]:
    return [props(a) for a in ALARMS.values()
            if props(a).get("Namespace") == namespace and props(a).get("MetricName") == metric]


def dimension(alarm: dict[str, Any], name: str) -> Any:
    return next((d["Value"] for d in alarm.get("Dimensions", []) if d["Name"] == name), None)


# --- the event stream -------------------------------------------------------------------------


def test_exactly_two_functions_read_the_event_stream():
    readers = {name for name, f in FUNCTIONS.items()
               for event in stream_events(f) if "EventsTable" in refs(event["Stream"])}
    assert readers == set(STREAM_READERS)
    # A raw mapping would be a third reader the checks below never see.
    assert not of_type("AWS::Lambda::EventSourceMapping")


@pytest.mark.parametrize("function", STREAM_READERS)
def test_stream_mapping_guards(function):
    [mapping] = stream_events(FUNCTIONS[function])
    assert mapping["StartingPosition"] == "TRIM_HORIZON"
    # Above 1 Lambda keeps only each item's order: the projector relies on no more (tests/property/
    # run it at factors above 1); the reactor's last storefront broadcast does, so it stays at 1.
    assert mapping["ParallelizationFactor"] == PARALLELIZATION[function]
    assert mapping["BisectBatchOnFunctionError"] is True
    retries = mapping["MaximumRetryAttempts"]
    assert isinstance(retries, int) and 0 <= retries <= 10, "retries must be bounded, never -1"
    age = mapping["MaximumRecordAgeInSeconds"]
    assert isinstance(age, int) and 60 <= age <= 86400, "records must age out before the stream's 24 h"
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert isinstance(mapping["BatchSize"], int) and isinstance(mapping["MaximumBatchingWindowInSeconds"], int)
    on_failure = mapping["DestinationConfig"]["OnFailure"]
    assert on_failure["Type"] == "SQS"
    destination = on_failure["Destination"]
    assert isinstance(destination, Tag) and destination.name == "GetAtt" and destination.value.endswith(".Arn")
    assert destination.value.split(".")[0] in QUEUES


@pytest.mark.parametrize("function", STREAM_READERS)
def test_local_runner_batches_like_the_deployed_mapping(function):
    [mapping] = stream_events(FUNCTIONS[function])
    settings = settings_from_template(function)
    assert (settings.batch_size, settings.batching_window_seconds, settings.maximum_retry_attempts,
            settings.bisect_batch_on_function_error, settings.starting_position,
            settings.maximum_record_age_seconds, settings.report_batch_item_failures,
            settings.parallelization_factor) == (
        mapping["BatchSize"], mapping["MaximumBatchingWindowInSeconds"], mapping["MaximumRetryAttempts"],
        True, "TRIM_HORIZON", mapping["MaximumRecordAgeInSeconds"], True,
        PARAMETERS["ProjectorParallelizationFactor"]["Default"] if function == "ProjectorFunction" else 1)


def test_the_projectors_parallelization_factor_takes_what_lambda_takes():
    """ParallelizationFactor: 1 (default) to 10 (https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html)."""
    factor = PARAMETERS["ProjectorParallelizationFactor"]
    assert (factor["Type"], factor["MinValue"], factor["MaxValue"]) == ("Number", 1, 10)
    assert 1 <= factor["Default"] <= 10


# --- tables -----------------------------------------------------------------------------------


@pytest.mark.parametrize("table", sorted(set(TABLES) - {"KeysTable"}))
def test_every_table_is_on_demand_encrypted_and_recoverable(table):
    properties = props(TABLES[table])
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"] == {"SSEEnabled": True}


def test_event_table_is_protected_and_streams_new_images():
    events = TABLES["EventsTable"]
    assert props(events)["DeletionProtectionEnabled"] is True
    assert (events["DeletionPolicy"], events["UpdateReplacePolicy"]) == ("Retain", "Retain")
    assert props(events)["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    assert "TimeToLiveSpecification" not in props(events), "events never expire: they are the audit trail"


def test_ttl_where_rows_are_meant_to_expire():
    ttl = {name: props(t).get("TimeToLiveSpecification") for name, t in TABLES.items()}
    assert ttl["IdempotencyTable"] == {"AttributeName": "expires_at", "Enabled": True}
    assert ttl["PendingErrorsTable"] == {"AttributeName": "expires_at", "Enabled": True}  # seed 000: 7 days


def test_the_keys_table_cannot_bring_a_destroyed_key_back():
    """Deleting a subject's key is the erasure: no point-in-time recovery could restore it, and the
    table (every live key) survives the stack being deleted or replaced."""
    keys = TABLES["KeysTable"]
    assert "PointInTimeRecoverySpecification" not in props(keys)
    assert (keys["DeletionPolicy"], keys["UpdateReplacePolicy"]) == ("Retain", "Retain")
    assert props(keys)["BillingMode"] == "PAY_PER_REQUEST" and props(keys)["SSESpecification"] == {"SSEEnabled": True}


def test_only_what_needs_a_subjects_key_may_use_it():
    """Reveal (read + kms:Decrypt) where personal values are folded, delivered or answered; seal
    (kms:GenerateDataKey) where they are appended; erase (DeleteItem) only behind the admin key."""
    granted = {name: {ref for policy in props(f)["Policies"] for ref in refs(policy)} & {
        "PersonalDataRevealPolicy", "PersonalDataSealPolicy", "PersonalDataErasePolicy"}
        for name, f in FUNCTIONS.items()}
    assert granted == {
        "ProjectorFunction": {"PersonalDataRevealPolicy"},
        "ReactorFunction": set(),
        "IngestFunction": {"PersonalDataRevealPolicy", "PersonalDataSealPolicy", "PersonalDataErasePolicy"},
        "ErrorMonitorFunction": {"PersonalDataRevealPolicy", "PersonalDataSealPolicy"},
        "DeliveryWorkerFunction": {"PersonalDataRevealPolicy"},
        "StreamFailuresFunction": set(),
        "RebuildSegmentFunction": {"PersonalDataRevealPolicy"},
        "RebuildCompareFunction": {"PersonalDataRevealPolicy"},
        "ConsoleFunction": {"PersonalDataRevealPolicy"},
    }


def test_tables_still_load_for_the_local_stack():
    assert set(table_definitions()) == {"events", "idempotency", "checkpoints", "keys", "inventory-v1",
                                        "inventory-returns-v1", "pending-errors-v1", "delivery-status-v2", "alerts-v1"}


def sharded_keys() -> list[tuple[str, Any]]:
    """(table base name, declaration) of every write-sharded index key the code declares."""
    from events.items import TYPE_INDEX
    from processors.operations.rebuild import template_base
    from projections.registry import UNITS

    return [("events", TYPE_INDEX), *((template_base(unit.view.table), key)
                                      for unit in UNITS for key in unit.row.sharded)]


@pytest.mark.parametrize("base, key", sharded_keys(), ids=lambda v: getattr(v, "index", v))
def test_every_sharded_key_is_its_index_partition_key(base, key):
    """What the rows store (``<value>#<bucket>``) is what the index is keyed by, and the order the
    questions merge the buckets in is the index's sort key."""
    [index] = [g for g in table_definitions()[base].properties["GlobalSecondaryIndexes"]
               if g["IndexName"] == key.index]
    schema = {k["KeyType"]: k["AttributeName"] for k in index["KeySchema"]}
    assert (schema["HASH"], schema.get("RANGE")) == (key.attribute, key.sort_attribute)


def event_table_keys(legacy: str, catalogue: str = "false") -> tuple[list[str], list[str]]:
    """The event table's indexes and key attributes with LegacyTypeIndex=``legacy`` and
    StreamCatalogueIndex=``catalogue``."""
    from processors.operations.template import resolve_conditions

    resolved = resolve_conditions(TEMPLATE, props(TABLES["EventsTable"]),
                                  {"LegacyTypeIndex": legacy, "StreamCatalogueIndex": catalogue})
    return ([g["IndexName"] for g in resolved["GlobalSecondaryIndexes"]],
            [a["AttributeName"] for a in resolved["AttributeDefinitions"]])


def test_the_legacy_type_index_is_only_kept_on_request():
    """A stack created before by-type-shard-time keeps by-type-time (and its `type` key) with
    LegacyTypeIndex=true (or "only", before by-type-shard-time is added); a new stack has only the
    sharded index."""
    assert PARAMETERS["LegacyTypeIndex"]["Default"] == "false"
    assert event_table_keys("false") == (["by-type-shard-time", "by-correlation", "by-id"],
                                         ["stream", "version", "type_shard", "time", "correlation_id", "id"])
    assert event_table_keys("true") == (["by-type-shard-time", "by-type-time", "by-correlation", "by-id"],
                                        ["stream", "version", "type_shard", "type", "time", "correlation_id", "id"])
    assert event_table_keys("only") == (["by-type-time", "by-correlation", "by-id"],
                                        ["stream", "version", "type", "time", "correlation_id", "id"])


def test_the_stream_catalogue_index_is_kept_unless_an_upgrade_step_leaves_it_out():
    assert PARAMETERS["StreamCatalogueIndex"]["Default"] == "true"
    assert event_table_keys("false", "true") == (
        ["by-type-shard-time", "by-correlation", "by-id", "by-category"],
        ["stream", "version", "type_shard", "time", "correlation_id", "id", "catalogue"])


# The event table's indexes as each earlier release deployed it, and the (LegacyTypeIndex,
# StreamCatalogueIndex) values the README's upgrade takes it through, in order.
UPGRADES = {
    "before by-id and by-type-shard-time": (["by-type-time", "by-correlation"],
                                            [("only", "false"), ("true", "false"), ("false", "false"),
                                             ("false", "true")]),
    "with by-id, before by-type-shard-time": (["by-type-time", "by-correlation", "by-id"],
                                              [("true", "false"), ("false", "false"), ("false", "true")]),
    "with by-type-shard-time, before by-category": (["by-type-shard-time", "by-correlation", "by-id"],
                                                    [("false", "true")]),
}


@pytest.mark.parametrize("release", UPGRADES)
def test_every_upgrade_deploy_adds_or_deletes_one_event_table_index(release):
    """CloudFormation changes one of a table's global secondary indexes per deploy (UpdateTable creates
    or deletes one index per call,
    https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_UpdateTable.html), so each
    step of the README's upgrade may change one index, and the last is the default."""
    deployed, steps = UPGRADES[release]
    for legacy, catalogue in steps:
        indexes, _ = event_table_keys(legacy, catalogue)
        assert len(set(indexes) ^ set(deployed)) == 1, (release, legacy, catalogue, deployed, indexes)
        deployed = indexes
    assert steps[-1] == (PARAMETERS["LegacyTypeIndex"]["Default"], PARAMETERS["StreamCatalogueIndex"]["Default"])


# --- IAM ---------------------------------------------------------------------------------------


def guard_policy_name() -> str:
    [name] = [n for n, p in MANAGED_POLICIES.items()
              if actions_on(statements(props(p)["PolicyDocument"]), "EventsTable", "Deny")]
    return name


def test_guard_policy_denies_every_mutation_of_the_event_table_and_its_indexes():
    document = props(MANAGED_POLICIES[guard_policy_name()])["PolicyDocument"]
    [deny] = [s for s in statements(document) if s["Effect"] == "Deny" and "EventsTable" in refs(s["Resource"])]
    assert not EVENT_MUTATIONS - set(deny["Action"]), f"not denied: {sorted(EVENT_MUTATIONS - set(deny['Action']))}"
    resources = as_list(deny["Resource"])
    # The table, and under it its indexes, stream, backups, exports and imports.
    assert Tag("GetAtt", "EventsTable.Arn") in resources and Tag("Sub", "${EventsTable.Arn}/*") in resources
    # Replica and global-table actions name the global table, which has an ARN of its own.
    assert Tag("Sub", "arn:${AWS::Partition}:dynamodb::${AWS::AccountId}:global-table/${EventsTable}") in resources
    assert "Condition" not in deny and "NotResource" not in deny and "NotAction" not in deny


def test_checkpoints_are_sealed_insert_only_for_every_role():
    """A checkpoint, once written, is never changed or removed by the stack (events/checkpoints.py):
    every mutation is denied, PutItem too (it overwrites); PartiQL INSERT (fails on an existing key)
    is the one write left, and only the projector, which seals, holds it."""
    checkpoints = TABLES["CheckpointsTable"]
    assert props(checkpoints)["DeletionProtectionEnabled"] is True
    assert (checkpoints["DeletionPolicy"], checkpoints["UpdateReplacePolicy"]) == ("Retain", "Retain")
    assert "TimeToLiveSpecification" not in props(checkpoints)
    document = props(MANAGED_POLICIES[guard_policy_name()])["PolicyDocument"]
    [deny] = [s for s in statements(document) if s["Effect"] == "Deny" and "CheckpointsTable" in refs(s["Resource"])]
    assert set(deny["Action"]) == (EVENT_MUTATIONS - {"dynamodb:PartiQLInsert"}) | {"dynamodb:PutItem"}
    assert {Tag("GetAtt", "CheckpointsTable.Arn"), Tag("Sub", "${CheckpointsTable.Arn}/*")} <= set(deny["Resource"])
    granted = {f: actions_on(function_grants(f), "CheckpointsTable") & DYNAMODB_TABLE_ACTIONS for f in FUNCTIONS}
    writers = {f for f, actions in granted.items() if actions & (EVENT_MUTATIONS | {"dynamodb:PutItem"})}
    assert writers == {"ProjectorFunction"}
    assert granted["ProjectorFunction"] == {"dynamodb:PartiQLInsert"}
    # The console reads a stream's highest checkpoint (the Event page's chain check), nothing more.
    assert {f: actions for f, actions in granted.items() if actions and f != "ProjectorFunction"} == {
        "ConsoleFunction": {"dynamodb:Query"}}
    assert environment(FUNCTIONS["ProjectorFunction"]).get("CHECKPOINTS_TABLE", GLOBAL_FUNCTION["Environment"][
        "Variables"]["CHECKPOINTS_TABLE"]) == Tag("Ref", "CheckpointsTable")


def test_guard_policy_leaves_the_append_and_the_stream_pollers_alone():
    """An explicit Deny beats every Allow: denying one of these would break appends or the mappings."""
    document = props(MANAGED_POLICIES[guard_policy_name()])["PolicyDocument"]
    denied = actions_on(statements(document), "EventsTable", "Deny")
    needed = {"dynamodb:PutItem", "dynamodb:ConditionCheckItem", "dynamodb:GetItem", "dynamodb:BatchGetItem",
              "dynamodb:Query", "dynamodb:DescribeTable", "dynamodb:DescribeStream", "dynamodb:GetRecords",
              "dynamodb:GetShardIterator", "dynamodb:ListStreams"}
    assert not denied & needed
    assert not any("*" in a for a in denied), "a wildcard here could reach an action the functions need"


def test_event_mutations_and_harmless_actions_partition_dynamodb_table_actions():
    assert not EVENT_MUTATIONS & EVENT_HARMLESS_ACTIONS
    assert EVENT_MUTATIONS | EVENT_HARMLESS_ACTIONS == DYNAMODB_TABLE_ACTIONS
    # The list, by name: each of these would let a function rewrite or lose the log.
    assert {"dynamodb:UpdateTable", "dynamodb:DeleteTable", "dynamodb:UpdateTimeToLive",
            "dynamodb:UpdateContinuousBackups", "dynamodb:RestoreTableToPointInTime", "dynamodb:ImportTable",
            "dynamodb:PutResourcePolicy", "dynamodb:DeleteResourcePolicy", "dynamodb:TagResource",
            "dynamodb:UntagResource", "dynamodb:UpdateKinesisStreamingDestination", "dynamodb:DeleteBackup",
            "dynamodb:BatchWriteItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:PartiQLUpdate",
            "dynamodb:PartiQLDelete"} <= EVENT_MUTATIONS


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_every_function_carries_the_append_only_guard(function):
    assert Tag("Ref", guard_policy_name()) in props(FUNCTIONS[function])["Policies"]


def test_no_function_or_role_outside_the_checked_pattern():
    # Plain Lambda functions or roles would escape the guard check above.
    assert not of_type("AWS::Lambda::Function") and not of_type("AWS::IAM::Role")


def function_grants(function: str) -> list[dict[str, Any]]:
    """The statements a function's Policies give it: template managed policies and inline ones."""
    found = []
    for policy in props(FUNCTIONS[function])["Policies"]:
        if isinstance(policy, Tag):
            found += [s for name in refs(policy) for s in statements(props(MANAGED_POLICIES[name])["PolicyDocument"])]
        elif "Statement" in policy:
            found += statements(policy)
        else:  # a SAM policy template: only read-only ones may name the event table
            (template_name, arguments), = policy.items()
            if "EventsTable" in refs(arguments):
                assert template_name == "DynamoDBReadPolicy", f"{function}: {template_name} on the event table"
    return found


def test_projector_is_read_only_on_the_event_table():
    granted = actions_on(function_grants("ProjectorFunction"), "EventsTable")
    assert granted and granted <= EVENT_READ_ACTIONS, granted
    assert not actions_on(function_grants("ProjectorFunction"), "IdempotencyTable")


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_no_function_is_allowed_to_mutate_events(function):
    assert not actions_on(function_grants(function), "EventsTable") & EVENT_MUTATIONS
    assert not any(a in ("*", "dynamodb:*") for s in function_grants(function) for a in as_list(s["Action"]))


def view_families() -> set[str]:
    return {base.rsplit("-v", 1)[0] for base in table_definitions() if re.search(r"-v\d+$", base)}


def test_view_write_permissions_cover_every_version_of_every_family():
    [writer] = [p for p in MANAGED_POLICIES.values() if "dynamodb:PutItem" in
                {a for s in statements(props(p)["PolicyDocument"]) for a in as_list(s["Action"])}
                and all(not {"EventsTable", "KeysTable"} & refs(s["Resource"])
                        for s in statements(props(p)["PolicyDocument"]))]
    patterns = [r.value.split(":table/")[1].replace("${AWS::StackName}", "stack")
                for s in statements(props(writer)["PolicyDocument"]) for r in as_list(s["Resource"])]
    for family in view_families():
        for version in ("v1", "v2", "v13"):
            assert any(fnmatch.fnmatchcase(f"stack-{family}-{version}", p) for p in patterns), (family, version)
    # A family's pattern must not reach into another family (inventory-v* vs inventory-returns-v1).
    assert [p for p in patterns if fnmatch.fnmatchcase("stack-inventory-returns-v1", p)] == \
        ["stack-inventory-returns-v*"]


# Step Functions' ARN formats, from the Service Authorization Reference's resource types
# (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsstepfunctions.html):
# an execution, and a "labelled execution", the child workflow execution a Distributed Map's Map Run
# starts, whose state-machine part carries the Map Run's label after a "/".
EXECUTION_ARN = "arn:{partition}:states:{region}:{account}:execution:{machine}:{execution}"
LABELLED_EXECUTION_ARN = "arn:{partition}:states:{region}:{account}:execution:{machine}/{label}:{execution}"
PSEUDO_PARAMETERS = {"AWS::Partition": "aws", "AWS::Region": "eu-west-1", "AWS::AccountId": "123456789012",
                     "AWS::StackName": "dynafold-prod"}


def with_pseudo_parameters(value: Any) -> str:
    """A !Sub over pseudo parameters only (what the state machine's names and ARNs use), as deployed."""
    text = value.value if isinstance(value, Tag) and value.name == "Sub" else value
    assert isinstance(text, str), value
    return re.sub(r"\$\{([^}]+)\}", lambda m: PSEUDO_PARAMETERS[m.group(1)], text)


def rebuild_machine_allows(action: str, arn: str) -> bool:
    found = [s for policy in props(RESOURCES["RebuildStateMachine"])["Policies"]
             if isinstance(policy, dict) and "Statement" in policy for s in statements(policy)]
    return any(s["Effect"] == "Allow" and action in as_list(s["Action"])
               and any(fnmatch.fnmatchcase(arn, with_pseudo_parameters(r)) for r in as_list(s["Resource"]))
               for s in found)


def distributed_maps(states: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for name, state in states.items():
        processor = state.get("ItemProcessor") or {}
        if (processor.get("ProcessorConfig") or {}).get("Mode") == "DISTRIBUTED":
            found[name] = state
        found |= distributed_maps(processor.get("States") or {})
    return found


def test_the_rebuild_may_describe_and_stop_its_distributed_map_children():
    """Each Distributed Map runs its items as child executions named execution:<machine>/<label>:<id>;
    a grant on execution:<machine>:* (the parent's form) does not reach them (issue 18 §6)."""
    machine = with_pseudo_parameters(props(RESOURCES["RebuildStateMachine"])["Name"])
    definition = json.loads((ROOT / props(RESOURCES["RebuildStateMachine"])["DefinitionUri"]).read_text())
    maps = distributed_maps(definition["States"])
    assert set(maps) == {"FillSegments", "CompareSegments", "CatchUpSegments"}
    arn = {"partition": "aws", "region": "eu-west-1", "account": "123456789012"}
    for name, state in maps.items():
        # The Map's Label, or one Step Functions generates when it has none (any label, then).
        for label in [state["Label"]] if "Label" in state else [name, "f3c1a2b9"]:
            child = LABELLED_EXECUTION_ARN.format(**arn, machine=machine, label=label,
                                                  execution="0b6e1f1c-3c5a-4a39-9d7e-0f0c6f3a2b11")
            for action in ("states:DescribeExecution", "states:StopExecution"):
                assert rebuild_machine_allows(action, child), (action, child)
    parent = EXECUTION_ARN.format(**arn, machine=machine, execution="rebuild-1")
    assert rebuild_machine_allows("states:DescribeExecution", parent)
    # ... and no other state machine's executions, labelled or not.
    for other in (EXECUTION_ARN.format(**arn, machine=f"{machine}-other", execution="x"),
                  LABELLED_EXECUTION_ARN.format(**arn, machine=f"{machine}-other", label="m", execution="x"),
                  LABELLED_EXECUTION_ARN.format(**arn, machine="dynafold-dev-rebuild", label="m", execution="x")):
        assert not rebuild_machine_allows("states:StopExecution", other), other


# --- logs, alarms, dashboard, saved queries ----------------------------------------------------------


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_every_function_logs_to_its_own_group_with_retention(function):
    properties = props(FUNCTIONS[function])
    [group] = refs(properties["LoggingConfig"]["LogGroup"])
    log_group = props(RESOURCES[group])
    assert RESOURCES[group]["Type"] == "AWS::Logs::LogGroup"
    assert log_group["LogGroupName"] == Tag("Sub", f"/aws/lambda/{properties['FunctionName'].value}")
    assert log_group["RetentionInDays"] == Tag("Ref", "LogRetentionDays")


def test_every_log_group_has_a_retention():
    assert all("RetentionInDays" in props(g) for g in of_type("AWS::Logs::LogGroup").values())


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_every_function_has_errors_and_throttles_alarms(function):
    for metric in ("Errors", "Throttles"):
        assert [a for a in alarms_on("AWS/Lambda", metric)
                if dimension(a, "FunctionName") == Tag("Ref", function)], f"{function}: no {metric} alarm"


@pytest.mark.parametrize("function", STREAM_READERS)
def test_every_stream_reader_has_an_iterator_age_alarm(function):
    [alarm] = [a for a in alarms_on("AWS/Lambda", "IteratorAge") if dimension(a, "FunctionName") == Tag("Ref", function)]
    assert (alarm["Statistic"], alarm["Threshold"], alarm["ComparisonOperator"]) == \
        ("Maximum", 60000, "GreaterThanThreshold")


def dead_letter_queues() -> set[str]:
    targets = {name for q in QUEUES.values() for name in refs((props(q).get("RedrivePolicy") or {}).get("deadLetterTargetArn"))}
    for function in FUNCTIONS.values():
        for event in (props(function).get("Events") or {}).values():
            on_failure = ((event["Properties"].get("DestinationConfig") or {}).get("OnFailure") or {})
            targets |= refs(on_failure.get("Destination"))
    return targets


def test_every_dead_letter_and_failure_queue_alarms_on_its_first_message():
    assert dead_letter_queues() >= {"StreamFailureQueue", "DeliveryDeadLetterQueue"}
    for queue in dead_letter_queues():
        [alarm] = [a for a in alarms_on("AWS/SQS", "ApproximateNumberOfMessagesVisible")
                   if refs(dimension(a, "QueueName")) == {queue}]
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold"), queue


# Alarms whose silence is the failure they watch for: a heartbeat that stopped. Every other alarm
# counts a bad thing that happened (errors, throttles, failed records, queued messages, events
# appended that no reader was invoked for), so no data means none happened. A stream reader's
# IteratorAge is silent on an idle stack too, so its silence alone is not a failure (issue: an idle
# stack paged every 15 minutes); the reader's Stalled alarm tells a stopped mapping from an idle one.
MISSING_DATA_BREACHES = {"ErrorMonitorNotRunningAlarm"}


def test_every_alarm_notifies_the_alarm_topic_and_email_is_optional():
    for name, alarm in ALARMS.items():
        assert Tag("Ref", "AlarmTopic") in props(alarm)["AlarmActions"], name
        expected = "breaching" if name in MISSING_DATA_BREACHES else "notBreaching"
        assert props(alarm)["TreatMissingData"] == expected, name
    subscription = of_type("AWS::SNS::Subscription")["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail" and props(subscription)["Endpoint"] == Tag("Ref", "AlarmEmail")


@pytest.mark.parametrize("function", STREAM_READERS)
def test_a_stream_reader_not_invoked_while_events_are_appended_alarms_and_an_idle_stack_stays_quiet(function):
    """Lambda reports IteratorAge only when it invokes: a stopped mapping and an idle stream both
    look like silence there. The Stalled alarm compares the event table's writes with the reader's
    invocations, so it pages for the one and not for the other."""
    [iterator_age] = [a for a in alarms_on("AWS/Lambda", "IteratorAge")
                      if dimension(a, "FunctionName") == Tag("Ref", function)]
    assert iterator_age["TreatMissingData"] == "notBreaching"
    stalled = props(RESOURCES[f"{function.removesuffix('Function')}StalledAlarm"])
    by_id = {m["Id"]: m for m in stalled["Metrics"]}
    appended, invoked = by_id["appended"]["MetricStat"], by_id["invoked"]["MetricStat"]
    assert (appended["Metric"]["Namespace"], appended["Metric"]["MetricName"], appended["Stat"]) == \
        ("AWS/DynamoDB", "ConsumedWriteCapacityUnits", "Sum")
    assert appended["Metric"]["Dimensions"] == [{"Name": "TableName", "Value": Tag("Ref", "EventsTable")}]
    assert (invoked["Metric"]["MetricName"], invoked["Stat"]) == ("Invocations", "Sum")
    assert invoked["Metric"]["Dimensions"] == [{"Name": "FunctionName", "Value": Tag("Ref", function)}]
    [returned] = [m for m in stalled["Metrics"] if m["ReturnData"]]
    assert returned["Expression"] == "IF(FILL(appended, 0) > 0 AND FILL(invoked, 0) == 0, 1, 0)"

    def evaluate(appended: float | None, invoked: float | None) -> int:
        # The expression's meaning, with FILL turning "no data" into 0.
        return 1 if (appended or 0) > 0 and (invoked or 0) == 0 else 0

    def alarms(windows: list[tuple[float | None, float | None]]) -> bool:
        """ALARM after these 5-minute windows: DatapointsToAlarm of the last EvaluationPeriods breach."""
        last = windows[-stalled["EvaluationPeriods"]:]
        return sum(evaluate(*w) >= stalled["Threshold"] for w in last) >= stalled["DatapointsToAlarm"]

    assert not alarms([(None, None)] * 3)  # idle: nothing appended, nothing invoked
    assert not alarms([(40, 3)] * 3)  # busy and processed
    assert not alarms([(None, None), (1, None), (None, 1)])  # one append at a window's end, invoked just after
    assert alarms([(40, 3), (40, None), (40, None)])  # appends keep coming, the mapping stopped
    assert stalled["TreatMissingData"] == "notBreaching" and Tag("Ref", "AlarmTopic") in stalled["AlarmActions"]


def test_seed_003_thresholds():
    [failures] = alarms_on(Tag("Ref", "MetricsNamespace"), "RecordsFailed")
    assert (failures["Statistic"], failures["Period"], failures["Threshold"], failures["ComparisonOperator"]) == \
        ("Sum", 300, 5, "GreaterThanThreshold")
    [dead] = alarms_on(Tag("Ref", "MetricsNamespace"), "DeliveriesDeadLettered")
    assert (dead["Period"], dead["Threshold"], dead["ComparisonOperator"]) == (300, 0, "GreaterThanThreshold")


def test_no_successful_delivery_alarm_stays_quiet_when_nothing_is_attempted():
    stalled = props(RESOURCES["NoSuccessfulDeliveryAlarm"])
    by_id = {m["Id"]: m for m in stalled["Metrics"]}
    assert {by_id["attempts"]["MetricStat"]["Metric"]["MetricName"],
            by_id["successes"]["MetricStat"]["Metric"]["MetricName"]} == {"DeliveryAttempts", "DeliveriesSucceeded"}
    assert {m["MetricStat"]["Period"] for m in by_id.values() if "MetricStat" in m} == {1800}
    [returned] = [m for m in stalled["Metrics"] if m["ReturnData"]]
    assert returned["Expression"] == "IF(FILL(attempts, 0) > 0 AND FILL(successes, 0) == 0, 1, 0)"

    def evaluate(attempts: float | None, successes: float | None) -> int:
        # The expression's meaning, with FILL turning "no data" into 0.
        attempts, successes = attempts or 0, successes or 0
        return 1 if attempts > 0 and successes == 0 else 0

    breaching = [case for case in [(None, None), (0, 0), (4, None), (4, 1), (None, 2)]
                 if evaluate(*case) >= stalled["Threshold"]]
    assert breaching == [(4, None)]


def emitting_module(service: str) -> Path | None:
    """The handler's shape (processors/handlers/, where its metrics are emitted) of the function whose
    POWERTOOLS_SERVICE_NAME is `service`, if it exists yet."""
    for function in FUNCTIONS.values():
        if environment(function).get("POWERTOOLS_SERVICE_NAME") == service:
            entry = props(function)["Handler"].rpartition(".")[0]
            path = ROOT / (entry.replace("processors.functions.", "processors.handlers.").replace(".", "/") + ".py")
            return path if path.exists() else None
    return None


def custom_metric_alarms() -> list[tuple[str, str]]:
    """(service, metric) of every alarm on the application's own namespace, metric math included."""
    watched = []
    for alarm in map(props, ALARMS.values()):
        metrics = [alarm] + [m["MetricStat"]["Metric"] for m in alarm.get("Metrics", []) if "MetricStat" in m]
        watched += [(dimension(m, "service"), m["MetricName"]) for m in metrics
                    if m.get("Namespace") == Tag("Ref", "MetricsNamespace")]
    return watched


@pytest.mark.parametrize("service,metric", custom_metric_alarms())
def test_custom_metric_alarms_watch_what_the_code_emits(service, metric):
    module = emitting_module(service)
    if module is None:
        pytest.skip(f"no function with service {service!r} yet: the alarm waits for it")
    service_module = ROOT / "processors" / "services" / module.name  # where a handler's Metrics may be made
    source = "\n".join(path.read_text(encoding="utf-8") for path in (module, service_module) if path.exists())
    assert f'"{metric}"' in source, f"{module.name} never emits {metric}"
    assert f'"{service}"' in source, f"{module.name} does not name its service {service!r}"


def dashboard() -> dict[str, Any]:
    body = props(RESOURCES["Dashboard"])["DashboardBody"]
    return json.loads(re.sub(r"\$\{[^}]+\}", "x", body.value))


def test_dashboard_is_json_and_shows_every_function():
    widgets = dashboard()["widgets"]
    body = props(RESOURCES["Dashboard"])["DashboardBody"].value
    for function in FUNCTIONS:
        for metric in ("Invocations", "Duration", "Errors", "Throttles"):
            assert f'["AWS/Lambda", "{metric}", "FunctionName", "${{{function}}}"' in body, (function, metric)
        [group] = refs(props(FUNCTIONS[function])["LoggingConfig"]["LogGroup"])
        assert f"SOURCE '${{{group}}}'" in body, f"{function}'s log group is missing from the log widget"
    titles = " ".join(w["properties"].get("title", "") for w in widgets).lower()
    for topic in ("appended", "projected", "lag", "deliveries", "pending", "alerts", "iterator"):
        assert topic in titles


def test_http_api_stage_writes_json_access_logs_with_retention():
    """A request API Gateway rejects or fails to integrate never reaches the function's log: the
    access log is its only trace (HTTP API variables: docs.aws.amazon.com/apigateway/latest/
    developerguide/http-api-logging-variables.html)."""
    settings = props(RESOURCES["HttpApi"])["AccessLogSettings"]
    [group] = refs(settings["DestinationArn"])
    assert RESOURCES[group]["Type"] == "AWS::Logs::LogGroup"
    assert props(RESOURCES[group])["RetentionInDays"] == Tag("Ref", "LogRetentionDays")
    fields = json.loads(settings["Format"])
    for key, variable in {"requestId": "$context.requestId", "routeKey": "$context.routeKey",
                          "status": "$context.status", "integrationError": "$context.integrationErrorMessage",
                          "integrationStatus": "$context.integration.status",
                          "errorMessage": "$context.error.message"}.items():
        assert fields.get(key) == variable, key


def test_saved_queries_cover_every_function_where_they_apply():
    queries = {props(q)["Name"].value.split("/", 1)[1]: props(q) for q in of_type("AWS::Logs::QueryDefinition").values()}
    assert set(queries) >= {"top-failure-reasons", "delivery-latency-by-target", "order-error-history",
                            "one-correlation-id"}
    groups = {name for f in FUNCTIONS.values() for name in refs(props(f)["LoggingConfig"]["LogGroup"])}
    for name in ("top-failure-reasons", "one-correlation-id"):
        assert refs(queries[name]["LogGroupNames"]) == groups, name


# --- queues ------------------------------------------------------------------------------------


def test_delivery_queue_fits_the_worker():
    queue, dlq = props(QUEUES["DeliveryQueue"]), props(QUEUES["DeliveryDeadLetterQueue"])
    timeout = props(FUNCTIONS["DeliveryWorkerFunction"])["Timeout"]
    assert queue["VisibilityTimeout"] >= 6 * timeout  # AWS's advice for a Lambda-consumed queue
    assert refs(queue["RedrivePolicy"]["deadLetterTargetArn"]) == {"DeliveryDeadLetterQueue"}
    assert queue["RedrivePolicy"]["maxReceiveCount"] >= 5  # throttled receives must not dead-letter
    assert dlq["MessageRetentionPeriod"] > queue["MessageRetentionPeriod"]
    assert PARAMETERS["RetryCapSeconds"]["MaxValue"] <= 900  # a retry is an SQS delay, at most 15 min
    assert PARAMETERS["DeliveryTimeoutSeconds"]["MaxValue"] < timeout


def sqs_events(function: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["Properties"] for e in (props(function).get("Events") or {}).values() if e["Type"] == "SQS"]


SQS_CONSUMERS = sorted(name for name, f in FUNCTIONS.items() if sqs_events(f))


@pytest.mark.parametrize("function", SQS_CONSUMERS)
def test_every_consumed_queue_outlasts_its_consumer_and_redrives(function):
    # AWS: "set the source queue's visibility timeout to at least six times the timeout that you
    # configure on your function" (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html).
    timeout = props(FUNCTIONS[function]).get("Timeout", GLOBAL_FUNCTION["Timeout"])
    for event in sqs_events(FUNCTIONS[function]):
        [queue] = refs(event["Queue"])
        assert props(QUEUES[queue])["VisibilityTimeout"] >= 6 * timeout, (function, queue)
        assert event["FunctionResponseTypes"] == ["ReportBatchItemFailures"], function
        redrive = props(QUEUES[queue])["RedrivePolicy"]
        assert refs(redrive["deadLetterTargetArn"]) <= set(QUEUES) and redrive["maxReceiveCount"] >= 5


def test_the_stream_failure_queue_has_a_consumer_that_reads_the_stream_and_appends_alerts():
    consumers = [name for name in SQS_CONSUMERS
                 if any(refs(e["Queue"]) == {"StreamFailureQueue"} for e in sqs_events(FUNCTIONS[name]))]
    assert consumers == ["StreamFailuresFunction"]
    function = props(FUNCTIONS["StreamFailuresFunction"])
    assert function["Handler"] == "processors.functions.stream_failures.handler"
    assert environment(FUNCTIONS["StreamFailuresFunction"])["POWERTOOLS_SERVICE_NAME"] == "stream-failures"
    grants = function_grants("StreamFailuresFunction")
    stream_reads = [s for s in grants if Tag("GetAtt", "EventsTable.StreamArn") in as_list(s["Resource"])]
    assert {a for s in stream_reads for a in as_list(s["Action"])} == {
        "dynamodb:DescribeStream", "dynamodb:GetShardIterator", "dynamodb:GetRecords"}
    # Least privilege: the log and its guards (append), nothing of the views, no queue sends.
    touched = {name for s in grants if s["Effect"] == "Allow" for name in refs(as_list(s["Resource"]))}
    assert touched <= {"EventsTable", "IdempotencyTable"}, touched
    assert not [p for p in function["Policies"] if not isinstance(p, Tag) and "Statement" not in p]


def test_a_delivery_batch_of_worst_case_jobs_fits_the_worker_timeout():
    from processors.services.delivery_worker import APPEND_MARGIN_SECONDS

    worker = props(FUNCTIONS["DeliveryWorkerFunction"])
    [event] = sqs_events(FUNCTIONS["DeliveryWorkerFunction"])
    worst_job = PARAMETERS["DeliveryTimeoutSeconds"]["MaxValue"] + APPEND_MARGIN_SECONDS
    assert event["BatchSize"] * worst_job <= worker["Timeout"], (event["BatchSize"], worst_job, worker["Timeout"])
    assert PARAMETERS["DeliveryTimeoutSeconds"]["Default"] <= PARAMETERS["DeliveryTimeoutSeconds"]["MaxValue"]


# --- secrets -----------------------------------------------------------------------------------

SECRET_VALUE = re.compile(
    r"(whsec|shpss|shpat|sk_live)_[A-Za-z0-9+/=]{8,}|-----BEGIN|AKIA[0-9A-Z]{16}"
    r"|(?<![A-Za-z0-9/+])[A-Za-z0-9+/]{40,}={0,2}(?![A-Za-z0-9/+])"
)
SECRET_NAME = re.compile(r"secret|apikey|api_key|token|password", re.IGNORECASE)
SSM_NAME = re.compile(r"^/[A-Za-z0-9_./-]+$")


def secret_parameters() -> list[str]:
    return [name for name in PARAMETERS if SECRET_NAME.search(name)]


def test_no_secret_values_anywhere_in_the_template():
    found = [s for s in strings(TEMPLATE) if SECRET_VALUE.search(s)]
    assert not found, found


def test_secret_parameters_are_ssm_names_never_values():
    assert len(secret_parameters()) >= 5
    for name in secret_parameters():
        parameter = PARAMETERS[name]
        assert parameter["Default"] == "" or SSM_NAME.match(parameter["Default"]), name
        assert parameter["AllowedPattern"] in ("^/[A-Za-z0-9_./-]+$", "^$|^/[A-Za-z0-9_./-]+$"), name


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_secret_environment_variables_only_name_parameters(function):
    for variable, value in environment(FUNCTIONS[function]).items():
        if SECRET_NAME.search(variable):
            assert variable.endswith("_PARAM") and refs(value) <= set(secret_parameters()), variable


def test_the_shop_parameter_takes_what_the_functions_accept_at_init():
    """CloudFormation refuses a bad ShopifyShop before deploying; the functions refuse the same values
    at init (issue 18 §5): one grammar, Shopify's shop domain, in both places."""
    from processors.adapters.shopify_shop import SHOP_DOMAIN

    assert PARAMETERS["ShopifyShop"]["AllowedPattern"] == f"^$|^{SHOP_DOMAIN.pattern}$"


# --- samconfig.toml ------------------------------------------------------------------------------


def test_samconfig_has_dev_and_prod_deploys():
    config = samconfig()
    names = {env: config[env]["global"]["parameters"]["stack_name"] for env in ("default", "prod")}
    assert len(set(names.values())) == 2
    for env in ("default", "prod"):
        deploy = config[env]["deploy"]["parameters"]
        assert deploy["resolve_s3"] is True and "CAPABILITY_IAM" in deploy["capabilities"].split()
        assert config[env]["global"]["parameters"]["region"]
        assert config[env]["build"]["parameters"]["build_in_source"] is True
    assert config["prod"]["deploy"]["parameters"]["confirm_changeset"] is True
    assert (samconfig_overrides("default")["Stage"], samconfig_overrides("prod")["Stage"]) == ("dev", "prod")


@pytest.mark.parametrize("env", ["default", "prod"])
def test_samconfig_overrides_are_valid_template_parameters(env):
    for name, value in samconfig_overrides(env).items():
        parameter = PARAMETERS[name]  # KeyError: an override for a parameter the template lacks
        if "AllowedValues" in parameter:
            assert value in {str(v) for v in parameter["AllowedValues"]}, name
        if "AllowedPattern" in parameter:
            assert re.fullmatch(parameter["AllowedPattern"], value), name
        if parameter["Type"] == "Number":
            assert parameter.get("MinValue", float("-inf")) <= float(value) <= parameter.get("MaxValue", float("inf"))


def test_prod_reads_prod_secrets():
    prod = samconfig_overrides("prod")
    for name in secret_parameters():
        name_in_prod = prod.get(name, PARAMETERS[name]["Default"])
        assert name_in_prod == "" or name_in_prod.startswith("/dynafold/prod/"), name


# --- the error monitor's email settings (issue 13 §3) ----------------------------------------------


def evaluate(expression: Any, values: dict[str, str]) -> Any:
    """A rule or condition expression under these parameter values (the functions the template uses)."""
    if not isinstance(expression, Tag):
        return expression
    name, argument = expression.name, expression.value
    if name == "Ref":
        return values[argument]
    if name == "Condition":
        return evaluate(TEMPLATE["Conditions"][argument], values)
    if name == "Equals":
        left, right = (evaluate(a, values) for a in argument)
        return left == right
    if name == "Not":
        return not evaluate(argument[0], values)
    if name == "And":
        return all(evaluate(a, values) for a in argument)
    if name == "Or":
        return any(evaluate(a, values) for a in argument)
    raise AssertionError(f"no evaluator for Fn::{name}")


def parameter_values(overrides: dict[str, str]) -> dict[str, str]:
    return {**{name: str(p.get("Default", "")) for name, p in PARAMETERS.items()}, **overrides}


def rules_accept(values: dict[str, str]) -> bool:
    return all(evaluate(assertion["Assert"], values)
               for rule in TEMPLATE.get("Rules", {}).values()
               if evaluate(rule.get("RuleCondition", True), values)
               for assertion in rule["Assertions"])


@pytest.mark.parametrize("env", ["default", "prod"])
def test_the_shipped_samconfig_passes_the_template_rules(env):
    assert rules_accept(parameter_values(samconfig_overrides(env)))


@pytest.mark.parametrize("recipients,sender,accepted", [
    ("", "", True),
    ("ops@example.com", "dynafold@example.com", True),
    ("ops@example.com", "", False),
    ("", "dynafold@example.com", False),
])
def test_email_settings_come_in_pairs(recipients, sender, accepted):
    values = parameter_values({"NotificationEmail": recipients, "SenderEmail": sender})
    assert rules_accept(values) is accepted
    if accepted:  # SES only when the monitor will really send
        assert evaluate(Tag("Condition", "HasEmailSettings"), values) is bool(recipients)


def test_the_monitor_may_send_with_ses_only_when_the_email_settings_are_set():
    policies = props(FUNCTIONS["ErrorMonitorFunction"])["Policies"]
    inline = [s for p in policies if isinstance(p, dict) and "Statement" in p for s in p["Statement"]]
    ses = [s for s in inline if "ses:" in json.dumps(s, default=repr)]
    [conditional] = ses
    assert isinstance(conditional, Tag) and conditional.name == "If"
    condition, granted, otherwise = conditional.value
    assert (condition, otherwise) == ("HasEmailSettings", Tag("Ref", "AWS::NoValue"))
    assert granted["Action"] == "ses:SendEmail"
    assert granted["Condition"]["StringEquals"]["ses:FromAddress"] == Tag("Ref", "SenderEmail")
