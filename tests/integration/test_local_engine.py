"""Starting DynamoDB Local: a port someone else took between choosing and binding it is not fatal;
a port the user chose that is taken is refused."""

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from processors.local import engine as local_engine
from processors.adapters.aws import dynamodb_client


class _NotDynamo(BaseHTTPRequestHandler):
    def do_GET(self):  # http.server's naming
        self.send_response(400)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_port_taken_before_the_engine_binds_it_is_replaced(monkeypatch):
    squatter = HTTPServer(("127.0.0.1", 0), _NotDynamo)
    threading.Thread(target=squatter.serve_forever, daemon=True).start()
    taken = squatter.server_address[1]
    choices = iter([taken])
    real_free_port = local_engine.free_port
    monkeypatch.setattr(local_engine, "free_port", lambda: next(choices, None) or real_free_port())
    try:
        with local_engine.LocalEngine(in_memory=True) as engine:
            assert engine.port != taken
            assert dynamodb_client(engine.endpoint_url).list_tables()["TableNames"] == []
    finally:
        squatter.shutdown()


class _SomeoneElsesDynamo(BaseHTTPRequestHandler):
    """Another DynamoDB already on the port: it answers the readiness check at once."""

    def do_GET(self):  # http.server's naming
        self.send_response(400)
        self.send_header("x-amzn-RequestId", "someone-else")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_chosen_port_already_in_use_is_refused_never_attached_to():
    """`up --in-memory --port P` with P taken said "(in memory)" but ran on the engine already there
    (a persistent one, where it recreated a table just dropped)."""
    other = HTTPServer(("127.0.0.1", 0), _SomeoneElsesDynamo)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    taken = other.server_address[1]
    try:
        engine = local_engine.LocalEngine(in_memory=True, port=taken)
        with pytest.raises(local_engine.PortInUse, match=f"could not bind port {taken}: it is in use"):
            engine.start()
        engine.stop()
    finally:
        other.shutdown()
