"""Tables on the engine are exactly the template's: keys, indexes, stream, TTL."""

from processors.operations.tables import TableNames, create_tables
from processors.operations.template import table_definitions


def test_every_template_table_is_created_with_its_definition(local_dynamo):
    client = local_dynamo.client
    for base, definition in table_definitions().items():
        described = client.describe_table(TableName=local_dynamo.names[base])["Table"]
        props = definition.properties
        assert described["KeySchema"] == props["KeySchema"]
        assert {a["AttributeName"] for a in described["AttributeDefinitions"]} == {
            a["AttributeName"] for a in props["AttributeDefinitions"]}
        assert {i["IndexName"] for i in described.get("GlobalSecondaryIndexes", [])} == {
            i["IndexName"] for i in props.get("GlobalSecondaryIndexes", [])}
        if definition.has_stream:
            assert described["StreamSpecification"]["StreamViewType"] == props["StreamSpecification"]["StreamViewType"]
        if definition.ttl_attribute:
            ttl = client.describe_time_to_live(TableName=local_dynamo.names[base])["TimeToLiveDescription"]
            assert ttl["AttributeName"] == definition.ttl_attribute


def test_creation_is_idempotent(local_dynamo):
    assert create_tables(local_dynamo.client, local_dynamo.names) == []
    other = TableNames.with_prefix("other-")
    assert sorted(create_tables(local_dynamo.client, other)) == sorted(other.names.values())
