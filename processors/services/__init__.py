"""What the functions do, over ports: the reactor, the delivery worker, the error monitor and their helpers."""
