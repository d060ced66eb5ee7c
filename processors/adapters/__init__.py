"""The outside world behind small interfaces: AWS clients, SQS, SES, SSM, outbound HTTP, signing, clocks."""
