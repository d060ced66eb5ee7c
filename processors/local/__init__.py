"""The local runtime (never shipped to Lambda): DynamoDB Local, the stream runner, the local stack,
loopback HTTP, the demo."""
