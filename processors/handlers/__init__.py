"""The handlers' shapes around the services: Lambda's event in, the service called, Lambda's answer out.

Each ``make_handler`` is called by the composition root (processors/wiring/root.py) with the service it
built; the Lambda entry points (processors/functions/) only ask the root for their handler.
"""
