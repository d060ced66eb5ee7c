"""The AWS side of the composition root: adapters from the Lambda environment (see template.yaml)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from processors.wiring.root import Adapters, Root, Settings, check_startup_settings


def aws_adapters(env: Mapping[str, str] = os.environ,
                 log_groups: Callable[[], Mapping[str, str]] | None = None) -> Adapters:
    """DynamoDB and its stream and tables, the SQS job and dead-letter queues, SES and InFlow's API, SSM secrets,
    and CloudWatch Logs over ``log_groups`` (function -> log group; the operator's CLI names them)."""
    from processors.adapters.aws import dynamodb_client
    from processors.wiring.config import Tables

    @cache
    def sqs() -> Any:
        """One SQS client for the job queue and the dead-letter queue (the reactor sends to both):
        each client built is another ~50 ms of the first invocation."""
        from processors.adapters.aws import sqs_client

        return sqs_client()

    def delivery_queue() -> Any:
        from processors.adapters.delivery_queue import QUEUE_URL_ENV, SqsDeliveryQueue, SqsQueue

        return SqsDeliveryQueue(SqsQueue.from_env(sqs(), env, QUEUE_URL_ENV))

    def dead_letters() -> Any:
        from processors.adapters.dead_letters import DEAD_LETTER_QUEUE_URL_ENV, SqsDeadLetters
        from processors.adapters.delivery_queue import SqsQueue

        return SqsDeadLetters(SqsQueue.from_env(sqs(), env, DEAD_LETTER_QUEUE_URL_ENV))

    def mailer() -> Any:
        from processors.adapters.mailers import mailer_from_env

        return mailer_from_env(env)

    def order_source(secrets: Any) -> Any:
        from processors.adapters.order_sources import order_source_from_env

        return order_source_from_env(env, secrets)

    def secrets() -> Any:
        from processors.adapters.secrets import Secrets

        return Secrets(env)

    def streams() -> Any:
        from processors.adapters.aws import streams_client

        return streams_client()

    def view_versions() -> Any:
        from processors.adapters.view_versions import PARAMETER_ENV, SsmVersions

        # The parameter every function reads its active versions from (template.yaml Globals).
        return SsmVersions(env[PARAMETER_ENV])

    def key_wrapper() -> Any:
        from processors.adapters.aws import kms_client
        from processors.adapters.subject_keys import KEY_ID_ENV, KmsKeyWrapper

        return KmsKeyWrapper(kms_client, env.get(KEY_ID_ENV, ""))

    def function_logs() -> Any:
        from processors.adapters.function_logs import cloudwatch_function_logs

        return cloudwatch_function_logs(log_groups)

    def health() -> Any:
        from processors.adapters.aws import cloudwatch_client, stepfunctions_client
        from processors.adapters.cloudwatch import CloudWatchAlarms, CloudWatchMetrics, MappingPositions
        from processors.adapters.rebuild_executions import STATE_MACHINE_ENV, StepFunctionsRebuilds
        from processors.services.status import HealthSources, StatusSettings

        client = cache(cloudwatch_client)  # one client, built on the first status asked for
        stack = StatusSettings.from_env(env).stack  # every alarm of the stack is named <stack>-...
        return HealthSources(CloudWatchMetrics(client), CloudWatchAlarms(client, f"{stack}-"), MappingPositions(),
                             StepFunctionsRebuilds(stepfunctions_client, env.get(STATE_MACHINE_ENV)))

    return Adapters(dynamodb=dynamodb_client, tables=Tables.from_env(env), delivery_queue=delivery_queue,
                    dead_letters=dead_letters, mailer=mailer, order_source=order_source, secrets=secrets,
                    streams=streams, view_versions=view_versions, function_logs=function_logs, health=health,
                    key_wrapper=key_wrapper)


def aws_root(env: Mapping[str, str] = os.environ, log_groups: Callable[[], Mapping[str, str]] | None = None) -> Root:
    root: Root
    root = Root(aws_adapters(env, log_groups), lambda: Settings.from_env(env, root.secrets))
    return root


@cache
def lambda_handler(function: str) -> Any:
    """One handler per function per container, built on the first invocation."""
    return aws_root().handler(function)


# At import, i.e. in Lambda's Init phase: a function configured to send the Shopify token elsewhere
# never starts (the Init error carries the one-line reason), rather than failing at its first record.
check_startup_settings(os.environ)
