"""One rebuild per view at a time, locally and on AWS.

The lock is one item per view in the stack's idempotency table (a table every stack has, locally
and in the template, with a TTL), written with a conditional put: `rebuild-lock:<view>`. Two
rebuilds of a view resuming one checkpoint side by side doubled the write rate, and two switches
raced (one said "switched: inventory -> v7" while the file ended at v6); with the lock the second
is refused, naming the holder.

- A local rebuild holds a lease (``LEASE_SECONDS``) that a heartbeat renews while it runs; a
  crashed one frees the view when its lease runs out.
- A rebuild on AWS outlives the command that starts it (Ctrl-C stops following, not the
  execution): its item names the Step Functions execution and is held while that execution runs
  (DescribeExecution); whoever finds it ended takes the view over.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from events.errors import DynafoldError

LEASE_SECONDS = 60
_RENEW_EVERY = LEASE_SECONDS / 3
_KEEP_DAYS = 14  # the TTL of an AWS holder's item: a forgotten one is gone after the longest rebuild


class RebuildBusy(DynafoldError):
    """Another rebuild holds the view."""


def lock_key(view: str) -> str:
    return f"rebuild-lock:{view}"


def local_holder(command: str) -> str:
    return f"`{command}` (pid {os.getpid()} on {socket.gethostname()})"


class RebuildLock:
    """The views' locks, taken together (all or none), in a stable order so two rebuilds of
    overlapping views cannot each hold a part."""

    def __init__(self, client: Any, table: str, views: Sequence[str], *, holder: str,
                 execution_running: Callable[[str], bool] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._table = table
        self.views = sorted(set(views))
        self.holder = holder
        self._execution_running = execution_running
        self._clock = clock
        self._token = uuid.uuid4().hex
        self._held: list[str] = []
        self.lost: str | None = None  # why a renewal failed: someone took the view over

    # ------------------------------------------------------------------ taking and giving back

    def acquire(self, *, lease: float | None = LEASE_SECONDS) -> None:
        """Take every view's lock, or none (RebuildBusy naming the holder)."""
        try:
            for view in self.views:
                self._take(view, lease)
                self._held.append(view)
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        for view in self._held:
            try:
                self._client.delete_item(TableName=self._table, Key={"key": {"S": lock_key(view)}},
                                         ConditionExpression="#t = :t", ExpressionAttributeNames={"#t": "token"},
                                         ExpressionAttributeValues={":t": {"S": self._token}})
            except ClientError as error:
                if not _conditional(error):
                    raise
        self._held = []

    @contextmanager
    def held(self) -> Iterator["RebuildLock"]:
        """Held for the block, the lease renewed in the background."""
        self.acquire()
        stop = threading.Event()
        heartbeat = threading.Thread(target=self._renew_until, args=(stop,), name="rebuild-lock", daemon=True)
        heartbeat.start()
        try:
            yield self
        finally:
            stop.set()
            heartbeat.join()
            self.release()

    def hand_to_execution(self, execution_arn: str) -> None:
        """From the starting command to the execution it started: held while that runs."""
        for view in self._held:
            self._client.update_item(
                TableName=self._table, Key={"key": {"S": lock_key(view)}},
                UpdateExpression="SET execution_arn = :e, holder = :h REMOVE lease_until",
                ConditionExpression="#t = :t", ExpressionAttributeNames={"#t": "token"},
                ExpressionAttributeValues={":e": {"S": execution_arn}, ":h": {"S": f"execution {execution_arn}"},
                                           ":t": {"S": self._token}})
        self._held = []  # the execution holds them now

    def release_execution(self, execution_arn: str) -> None:
        """The execution ended: its views are free (a no-op for a view someone else holds now)."""
        for view in self.views:
            try:
                self._client.delete_item(TableName=self._table, Key={"key": {"S": lock_key(view)}},
                                         ConditionExpression="execution_arn = :e",
                                         ExpressionAttributeValues={":e": {"S": execution_arn}})
            except ClientError as error:
                if not _conditional(error):
                    raise

    def check(self) -> None:
        """Before an irreversible step (the switch): still ours?"""
        if self.lost is not None:
            raise RebuildBusy(f"not switched: {self.lost}")

    # ------------------------------------------------------------------ the items

    def _take(self, view: str, lease: float | None) -> None:
        now = self._clock()
        item = {
            "key": {"S": lock_key(view)}, "token": {"S": self._token}, "holder": {"S": self.holder},
            "since": {"S": datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")},
            "expires_at": {"N": str(int(now + (lease or 0) + _KEEP_DAYS * 86400))},  # the table's TTL
        }
        if lease is not None:
            item["lease_until"] = {"N": str(int(now + lease))}
        try:
            # Free, or a lease that ran out (its holder crashed).
            self._client.put_item(TableName=self._table, Item=item,
                                  ConditionExpression="attribute_not_exists(#k) OR lease_until < :now",
                                  ExpressionAttributeNames={"#k": "key"},
                                  ExpressionAttributeValues={":now": {"N": str(int(now))}})
            return
        except ClientError as error:
            if not _conditional(error):
                raise
        current = self._client.get_item(TableName=self._table, Key={"key": {"S": lock_key(view)}},
                                        ConsistentRead=True).get("Item")
        if current is None:  # released in between: try once more
            return self._take(view, lease)
        execution = current.get("execution_arn", {}).get("S")
        if execution and self._execution_running is not None and not self._execution_running(execution):
            self._replace(view, item, current["token"]["S"])  # the execution holding it has ended
            return None
        raise RebuildBusy(f"a rebuild of {view} is running: {current['holder']['S']}, since "
                          f"{current['since']['S']}; wait for it to end (one rebuild per view at a time)")

    def _replace(self, view: str, item: dict[str, Any], stale_token: str) -> None:
        try:
            self._client.put_item(TableName=self._table, Item=item, ConditionExpression="#t = :t",
                                  ExpressionAttributeNames={"#t": "token"},
                                  ExpressionAttributeValues={":t": {"S": stale_token}})
        except ClientError as error:
            if not _conditional(error):
                raise
            raise RebuildBusy(f"a rebuild of {view} started just now; wait for it to end") from None

    def _renew_until(self, stop: threading.Event) -> None:
        while not stop.wait(_RENEW_EVERY):
            for view in self._held:
                try:
                    self._client.update_item(
                        TableName=self._table, Key={"key": {"S": lock_key(view)}},
                        UpdateExpression="SET lease_until = :l", ConditionExpression="#t = :t",
                        ExpressionAttributeNames={"#t": "token"},
                        ExpressionAttributeValues={":l": {"N": str(int(self._clock() + LEASE_SECONDS))},
                                                   ":t": {"S": self._token}})
                except ClientError as error:
                    if _conditional(error):
                        self.lost = f"the lock on {view} was taken over while this rebuild was stalled"
                    # anything else: the next turn retries; the lease has slack for two missed renewals
                except BotoCoreError:  # the engine unreachable a moment: likewise
                    pass


def _conditional(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"
