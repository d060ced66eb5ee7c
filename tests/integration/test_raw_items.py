"""events.raw_items: a read whose body json.loads decodes answers what botocore's parser would, and
leaves every other call on the same client, and every error, to botocore."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from events import raw_items

ITEM = {  # every attribute type the event and view tables hold (no binary: see events.raw_items)
    "stream": {"S": "sku:A"}, "version": {"N": "7"}, "text": {"S": "ünïcode \u2603 \"quoted\""},
    "count": {"N": "-12.5"}, "flag": {"BOOL": True}, "nothing": {"NULL": True},
    "nested": {"M": {"list": {"L": [{"S": "x"}, {"N": "1"}, {"M": {}}]}, "empty": {"L": []}}},
    "names": {"SS": ["a", "b"]}, "numbers": {"NS": ["1", "2"]},
}


@pytest.fixture
def client(local_dynamo: Any) -> Any:
    client = local_dynamo.new_client()
    client.put_item(TableName=local_dynamo.names.events, Item=ITEM)
    return client


def _query(table: str) -> dict[str, Any]:
    return {"TableName": table, "KeyConditionExpression": "#s = :s", "ExpressionAttributeNames": {"#s": "stream"},
            "ExpressionAttributeValues": {":s": {"S": "sku:A"}}, "ConsistentRead": True}


def test_items_read_raw_are_what_botocore_parses(client: Any, local_dynamo: Any) -> None:
    table = local_dynamo.names.events
    parsed = local_dynamo.new_client().query(**_query(table))  # a client with nothing of ours on it
    raw = raw_items.call(client, "query", **_query(table))
    assert raw["Items"] == parsed["Items"] == [ITEM]
    assert raw["Count"] == 1 and raw["ResponseMetadata"]["HTTPStatusCode"] == 200
    key = {"stream": ITEM["stream"], "version": ITEM["version"]}
    got = raw_items.call(client, "batch_get_item", RequestItems={table: {"Keys": [key], "ConsistentRead": True}})
    assert got["Responses"] == {table: [ITEM]} and got["UnprocessedKeys"] == {}


def test_other_calls_on_the_client_are_parsed_by_botocore(client: Any, local_dynamo: Any) -> None:
    table = local_dynamo.names.events
    binary = {"stream": {"S": "sku:B"}, "version": {"N": "1"}, "blob": {"B": b"\x00\x01"}}
    client.put_item(TableName=table, Item=binary)
    raw_items.call(client, "query", **_query(table))  # the handler is on the client from now on
    key = {"stream": binary["stream"], "version": binary["version"]}
    assert client.get_item(TableName=table, Key=key)["Item"]["blob"] == {"B": b"\x00\x01"}  # base64 decoded


def test_errors_are_botocores(client: Any, local_dynamo: Any) -> None:
    with pytest.raises(ClientError) as raised:
        raw_items.call(client, "query", **_query("no-such-table"))
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"
