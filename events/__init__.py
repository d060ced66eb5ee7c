"""The write side: event catalogue, envelope, hash chain and the DynamoDB event store."""
