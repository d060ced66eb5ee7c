"""`dynafold status` on AWS (issue 19 §A4), on moto: the AWS root's adapters read CloudWatch
(GetMetricData for IteratorAge, the queue age and the EMF failure counts; DescribeAlarms), SSM
(the active view versions), Step Functions (running rebuilds) and the tables (the alerts naming
failures), and the CLI and `GET /status` answer from that one service."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from events.alerts import AlertRaised
from processors.adapters.rebuild_executions import phase
from processors.cli.main import main
from processors.local.stream_runner import LambdaContext
from processors.local.tables import local_tables
from processors.operations.tables import TableNames, create_tables
from processors.services.alerts import append_alert
from processors.wiring.aws import aws_root
from projections.batch import Entry

STACK = "dynafold-prod"
REGION = "us-east-1"
QUEUE = f"{STACK}-StreamFailureQueue-AbC123"
MACHINE = f"arn:aws:states:{REGION}:123456789012:stateMachine:{STACK}-rebuild"


@pytest.fixture
def env(monkeypatch):
    values = {
        **local_tables(f"{STACK}-", versions={}).to_env(),
        "VIEW_VERSIONS_PARAMETER": f"/{STACK}/view-versions", "DYNAFOLD_STACK_NAME": STACK,
        "STREAM_FAILURE_QUEUE_URL": f"https://sqs.{REGION}.amazonaws.com/123456789012/{QUEUE}",
        "DYNAFOLD_REBUILD_STATE_MACHINE": MACHINE, "POWERTOOLS_METRICS_NAMESPACE": "dynafold",
        "AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "DYNAFOLD_ADMIN_API_KEY": "admin-key",
    }
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    parameters.clear_caches()  # the view versions are read through Powertools' parameter cache
    with mock_aws():
        yield values
    parameters.clear_caches()


def put(cloudwatch, namespace, name, dimensions, value, minutes_ago, unit="None"):
    """One datapoint, ``minutes_ago`` before now (the status reads the hour up to its own now)."""
    cloudwatch.put_metric_data(Namespace=namespace, MetricData=[{
        "MetricName": name, "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
        "Timestamp": datetime.now(timezone.utc) - timedelta(minutes=minutes_ago), "Value": value, "Unit": unit}])


@pytest.fixture
def stack(env):
    """A deployed stack's state: metrics, alarms (one of another stack), a switched view, a running
    rebuild, a dead-lettered delivery's alert in its view."""
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    put(cloudwatch, "AWS/Lambda", "IteratorAge", {"FunctionName": f"{STACK}-projector"}, 1_200, 20, "Milliseconds")
    put(cloudwatch, "AWS/Lambda", "IteratorAge", {"FunctionName": f"{STACK}-projector"}, 95_000, 2, "Milliseconds")
    put(cloudwatch, "AWS/Lambda", "IteratorAge", {"FunctionName": f"{STACK}-reactor"}, 300, 3, "Milliseconds")
    put(cloudwatch, "AWS/Lambda", "IteratorAge", {"FunctionName": "other-stack-projector"}, 9_000_000, 1)
    put(cloudwatch, "AWS/SQS", "ApproximateAgeOfOldestMessage", {"QueueName": QUEUE}, 0, 1, "Seconds")
    put(cloudwatch, "dynafold", "DeliveriesDeadLettered", {"service": "delivery-worker"}, 1, 5, "Count")
    put(cloudwatch, "dynafold", "RecordsFailed", {"service": "projector"}, 0, 5, "Count")
    for name, metric, state in ((f"{STACK}-projector-iterator-age", "IteratorAge", "ALARM"),
                                ("other-stack-projector-iterator-age", "IteratorAge", "ALARM"),
                                (f"{STACK}-reactor-errors", "Errors", "OK")):
        cloudwatch.put_metric_alarm(AlarmName=name, MetricName=metric, Namespace="AWS/Lambda", Period=300,
                                    EvaluationPeriods=1, Threshold=60000, Statistic="Maximum",
                                    ComparisonOperator="GreaterThanThreshold", AlarmDescription=f"{name} watch")
        cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="Threshold Crossed: 95000 > 60000")

    boto3.client("ssm", region_name=REGION).put_parameter(
        Name=env["VIEW_VERSIONS_PARAMETER"], Value=json.dumps({"inventory": "v2"}), Type="String")
    sfn = boto3.client("stepfunctions", region_name=REGION)
    machine = sfn.create_state_machine(name=f"{STACK}-rebuild", definition=json.dumps(
        {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 600, "End": True}}}),
        roleArn="arn:aws:iam::123456789012:role/sfn")["stateMachineArn"]
    assert machine == MACHINE
    sfn.start_execution(stateMachineArn=machine, name="rebuild-1-ab-inventory",
                        input=json.dumps({"views": ["inventory"], "total_segments": 64}))

    dynamodb = boto3.client("dynamodb", region_name=REGION)
    create_tables(dynamodb, TableNames.with_prefix(f"{STACK}-"))
    root = aws_root(env)
    raised = AlertRaised(alert_id="dl-1", alert_type="delivery_dead_lettered", severity="critical",
                         subject="delivery:user123:msg-0002",
                         message="delivery user123:msg-0002 dead-lettered after 4 attempts: MAX_RETRIES_EXCEEDED")
    append_alert(root.store, raised, "reactor")
    [event] = root.store.read_stream("alert:dl-1")
    root.projector.project([Entry("1", event.stream, event)])
    return env


def test_status_on_aws_reads_cloudwatch_ssm_step_functions_and_the_tables(stack):
    status = aws_root(stack).status.status(timedelta(hours=1))

    readers = {reader.reader: reader for reader in status.readers}
    projector = readers["projector"]
    assert projector.lag_seconds == pytest.approx(95.0) and projector.behind  # IteratorAge's newest datapoint
    assert [round(p.value, 1) for p in projector.reading.lag.points] == [1.2, 95.0]  # the series the console draws
    assert "1m35s behind at its last measure" in projector.sentence
    assert readers["reactor"].lag_seconds == pytest.approx(0.3) and not readers["reactor"].behind
    assert readers["stream-failures"].lag_seconds == 0 and QUEUE in readers["stream-failures"].reading.basis

    counts = {count.key: count.total for count in status.failures}
    assert counts == {"records_failed": 0, "records_given_up": 0, "dead_lettered": 1}
    assert [alert.alert_id for alert in status.failure_alerts] == ["dl-1"]

    assert [alarm.name for alarm in status.alarms.in_alarm] == [f"{STACK}-projector-iterator-age"]  # not another stack's
    assert status.alarms.in_alarm[0].reason.startswith("Threshold Crossed")
    assert status.versions == {"alerts": "v1", "delivery-status": "v2", "inventory": "v2", "inventory-returns": "v1",
                               "pending-errors": "v1"}
    assert status.versions_source == f"SSM parameter /{STACK}/view-versions"
    [rebuild] = status.rebuilds
    assert rebuild.views == ("inventory",) and rebuild.total == 64 and rebuild.where.startswith(
        f"arn:aws:states:{REGION}:123456789012:execution:{STACK}-rebuild:")

    assert not status.healthy
    assert status.attention == ("the projector is 1m35s behind (more than 1m)",
                                "webhook deliveries dead-lettered: 1 in the last 1h",
                                f"alarm {STACK}-projector-iterator-age is in ALARM")


def test_the_route_and_the_cli_answer_from_the_same_service(stack, capsys):
    handler = aws_root(stack).handler("ingest")
    context = LambdaContext.local(f"{STACK}-ingest", 29)
    event = {"version": "2.0", "routeKey": "$default", "rawPath": "/status", "rawQueryString": "window=2h",
             "queryStringParameters": {"window": "2h"}, "headers": {"x-api-key": "admin-key"},
             "requestContext": {"http": {"method": "GET", "path": "/status"}, "requestId": "r-1"}, "body": ""}
    answer = handler(event, context)
    assert answer["statusCode"] == 200, answer
    body = json.loads(answer["body"])
    assert body["window_seconds"] == 7200 and body["healthy"] is False
    assert body["readers"][0]["lag_series"]["points"][-1]["value"] == pytest.approx(95.0)
    capsys.readouterr()  # the handler's own log lines

    assert handler({**event, "headers": {}}, context)["statusCode"] == 401
    assert handler({**event, "headers": {"x-api-key": "wrong"}}, context)["statusCode"] == 403
    bad = handler({**event, "queryStringParameters": {"window": "3d"}}, context)
    assert bad["statusCode"] == 400 and "window" in json.loads(bad["body"])["error"]
    capsys.readouterr()

    code = main(["status", "--json", "--window", "2h", "--table-prefix", f"{STACK}-"])  # no endpoint: the AWS root of that stack
    out = capsys.readouterr().out
    assert code == 1
    cli = json.loads(out)  # one JSON document on stdout
    assert cli["attention"] == body["attention"] and cli["versions"] == body["versions"]


@pytest.mark.parametrize("counts, said", [
    ([], ("starting", 0, 0)),
    ([(40, 64)], ("filling", 40, 64)),
    ([(64, 64), (3, 64)], ("comparing", 3, 64)),
    ([(64, 64), (64, 64), (10, 64)], ("carrying over after the switch", 10, 64)),
])
def test_a_running_rebuild_is_in_the_phase_of_its_latest_map_run(counts, said):
    assert phase(counts) == said
