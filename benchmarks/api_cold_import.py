"""Cold start of the ingest function: today's router against Powertools' APIGatewayHttpResolver.

Each sample is a fresh interpreter that imports ``processors.api.app`` and answers one request
(a 401: no tables needed). The ``resolver`` variant also imports Powertools' event handler and
registers every route of ``ROUTES`` on an ``APIGatewayHttpResolver`` with validation on (pydantic
body models declared per route), then resolves the same request through it: the cost a move onto
the resolver would add. Times are the process's CPU time (``time.process_time``), so other work
on a shared machine inflates them far less than wall time. Variants run interleaved, best and
median of N. No engine needed::

    python -m benchmarks.api_cold_import [N]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys

_EVENT = """{"version": "2.0", "routeKey": "$default", "rawPath": "/inventory/P/count", "rawQueryString": "",
 "headers": {"content-type": "application/json"}, "isBase64Encoded": False, "body": '{"physical": 3}',
 "requestContext": {"http": {"method": "PUT", "path": "/inventory/P/count", "sourceIp": "192.0.2.1"},
                    "requestId": "r", "stage": "$default"}}"""

ROUTER = f"""
import time
t = time.process_time()
from types import SimpleNamespace
from processors.api.app import dispatch
from processors.api.deps import ApiSettings
from processors.adapters.secrets import Secrets
status = dispatch({_EVENT}, SimpleNamespace(settings=ApiSettings(), secrets=Secrets.of(admin_api_key="k")))[1].status
assert status == 401, status
print((time.process_time() - t) * 1000)
"""

RESOLVER = f"""
import time
t = time.process_time()
from typing import Annotated
from processors.api.app import ROUTES
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
resolver = APIGatewayHttpResolver(enable_validation=True)
for route in ROUTES:
    names = route.path_names
    model = route.body[0] if route.body else None
    namespace = {{"Annotated": Annotated, "Body": Body, "Path": Path, "Response": Response, "model": model}}
    params = [f"{{n}}: Annotated[str, Path()]" for n in names] + (["body: Annotated[model, Body()]"] if model else [])
    exec(f"def h({{', '.join(params)}}):\\n    return Response(401, 'application/json', '{{{{}}}}')", namespace)
    resolver.route(route.template.replace("{{", "<").replace("}}", ">"), route.method)(namespace["h"])
status = resolver.resolve({_EVENT}, None)["statusCode"]
assert status == 401, status
print((time.process_time() - t) * 1000)
"""


def sample(code: str, pythonpath: str) -> float:
    env = {**os.environ, "PYTHONPATH": pythonpath}
    # our own interpreter on our own benchmark code
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)  # noqa: S603
    return float(out.stdout.strip().splitlines()[-1])


def run(runs: int = 15, pythonpath: str = ".") -> dict[str, tuple[float, float]]:
    variants = {"router": ROUTER, "resolver": RESOLVER}
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(runs):
        for name, code in variants.items():
            times[name].append(sample(code, pythonpath))
    result = {name: (min(values), statistics.median(values)) for name, values in times.items()}
    for name, (best, median) in result.items():
        print(f"{name:9} best {best:7.1f} ms  median {median:7.1f} ms CPU  ({runs} fresh processes)")
    print(f"resolver - router: best {result['resolver'][0] - result['router'][0]:+.1f} ms, "
          f"median {result['resolver'][1] - result['router'][1]:+.1f} ms")
    return result


if __name__ == "__main__":
    run(int(sys.argv[1]) if len(sys.argv) > 1 else 15, os.environ.get("PYTHONPATH", "."))
