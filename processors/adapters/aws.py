"""boto3 clients configured once: endpoint, region, retries, connection pool.

boto3 is imported when the first client is built, not with this module: importing boto3 costs
~150 ms of CPU, and the functions import this module (``error_code``) at their cold start while
the composition root builds their clients on the first invocation (see benchmarks/cold_import.py).
"""

from __future__ import annotations

import os
from typing import Any

DEFAULT_REGION = "us-east-1"
# DynamoDB Local accepts any credentials; it keeps one database per access key.
LOCAL_ACCESS_KEY = "dynafold"


def resolve_endpoint(endpoint_url: str | None) -> str | None:
    """An explicit endpoint wins, then boto3's own environment variables."""
    return endpoint_url or os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or os.environ.get("AWS_ENDPOINT_URL")


def default_region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


def dynamodb_client(endpoint_url: str | None = None, *, access_key: str | None = None, region: str | None = None,
                    pool: int = 32) -> Any:
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": 5},
        max_pool_connections=pool,
        tcp_keepalive=True,
        # Requests are built by the store modules from fixed shapes; botocore's per-call schema
        # walk costs ~0.3 ms per item (8 ms for a 25-event transaction), more than it protects.
        parameter_validation=False,
    )
    return _client("dynamodb", endpoint_url, access_key, region, config=config)


def stepfunctions_client(endpoint_url: str | None = None) -> Any:
    """Step Functions on AWS (the rebuild state machine); an endpoint only for tests or emulators."""
    return _client("stepfunctions", endpoint_url, None, None)


def cloudwatch_client() -> Any:
    """CloudWatch on AWS: metrics and alarms for `dynafold status` (boto3 honours AWS_ENDPOINT_URL_CLOUDWATCH)."""
    return _session().client("cloudwatch", region_name=default_region())


def streams_client(endpoint_url: str | None = None, *, access_key: str | None = None,
                   region: str | None = None) -> Any:
    return _client("dynamodbstreams", endpoint_url, access_key, region)


def _client(service: str, endpoint_url: str | None, access_key: str | None, region: str | None,
            **options: Any) -> Any:
    """A client on AWS, or on a local endpoint with a dummy key (DynamoDB Local: one database per
    access key and region, so a local stack names both: see processors/local/stack_record.py)."""
    endpoint = resolve_endpoint(endpoint_url)
    kwargs: dict[str, Any] = {"region_name": region or default_region(), **options}
    if endpoint:
        kwargs["endpoint_url"] = endpoint
        if access_key or not os.environ.get("AWS_ACCESS_KEY_ID"):
            kwargs["aws_access_key_id"] = access_key or LOCAL_ACCESS_KEY
            kwargs["aws_secret_access_key"] = "local"  # noqa: S105 - DynamoDB Local takes any credentials
    return _session().client(service, **kwargs)


_SHARED: dict[str, Any] = {}  # botocore's data loader, shared by every session this process makes


def _session() -> Any:
    """A new boto3 session (a session per client: the default session caches the first credentials
    it saw) over one shared data loader: a fresh loader reads and parses the service's model and
    endpoint files again, ~0.1 s of CPU per client, where the loader's cache makes a client cheap."""
    import boto3
    import botocore.session

    core = botocore.session.get_session()
    loader = _SHARED.setdefault("data_loader", core.get_component("data_loader"))
    core.register_component("data_loader", loader)
    return boto3.session.Session(botocore_session=core)


def sqs_client() -> Any:
    """For the delivery queues on AWS (boto3 honours AWS_ENDPOINT_URL_SQS by itself)."""
    return _session().client("sqs", region_name=default_region())


def kms_client() -> Any:
    """KMS on AWS: the subjects' data keys are generated and unwrapped by the stack's key."""
    return _session().client("kms", region_name=default_region())


def logs_client() -> Any:
    """CloudWatch Logs on AWS, for `dynafold logs --on-aws` (boto3 honours AWS_ENDPOINT_URL_LOGS itself;
    not the DynamoDB endpoint, which is the local engine's)."""
    return _session().client("logs", region_name=default_region())


def error_code(error: BaseException) -> str | None:
    """The service error code of a botocore ClientError (or anything shaped like one)."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code")
    return None
