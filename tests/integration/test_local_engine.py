"""Starting DynamoDB Local: a port someone else took between choosing and binding it is not fatal."""

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

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
