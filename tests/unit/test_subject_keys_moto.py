"""The keys table with AWS KMS (moto): each data key generated and wrapped by KMS for one subject.

What the Lambda functions use (processors.adapters.subject_keys): GenerateDataKey once per subject,
Decrypt with the subject and key id as encryption context, a conditional put so racing writers
share one key, and a delete that is the erasure.
"""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from processors.adapters.subject_keys import DynamoDbSubjectKeys, KmsKeyWrapper
from processors.operations.tables import TableNames, create_tables

NAMES = TableNames.with_prefix("dynafold-")


@pytest.fixture
def kms_keys(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(dynamodb, NAMES, only={"keys"})
        kms = boto3.client("kms", region_name="us-east-1")
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        yield DynamoDbSubjectKeys(dynamodb, NAMES["keys"], KmsKeyWrapper(lambda: kms, key_id)), dynamodb, kms


def test_a_key_is_generated_once_wrapped_and_unwrapped_by_kms(kms_keys):
    keys, dynamodb, _ = kms_keys
    created = keys.create("inflow-customer:C-1")
    assert keys.create("inflow-customer:C-1") == created  # a second writer gets the first key
    assert keys.find("inflow-customer:C-1") == created
    [item] = dynamodb.scan(TableName=NAMES["keys"])["Items"]
    assert created.secret not in bytes(item["wrapped"]["B"])  # only the wrapped key is stored
    assert keys.wrapper.calls == 4  # GenerateDataKey twice (the second lost the race), Decrypt twice


def test_a_wrapped_key_unwraps_only_as_its_own_subjects_key(kms_keys):
    keys, dynamodb, kms = kms_keys
    created = keys.create("sender:acme")
    item = dynamodb.get_item(TableName=NAMES["keys"], Key={"subject": {"S": "sender:acme"}, "entry": {"S": "key"}})
    wrapped = bytes(item["Item"]["wrapped"]["B"])
    with pytest.raises(kms.exceptions.InvalidCiphertextException):
        keys.wrapper.unwrap("sender:other", created.kid, wrapped)


def test_destroying_the_key_is_the_erasure_and_streams_stay_noted(kms_keys):
    keys, _, _ = kms_keys
    created = keys.create("shopify-customer:191167")
    keys.note_stream("shopify-customer:191167", "order:o-1")
    assert keys.destroy("shopify-customer:191167") == created.kid
    assert keys.find("shopify-customer:191167") is None and keys.destroy("shopify-customer:191167") is None
    assert keys.streams("shopify-customer:191167") == ["order:o-1"]
    assert keys.subjects("shopify-customer") == ["shopify-customer:191167"]
