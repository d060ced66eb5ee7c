"""Signing, the outbound adapter and the scripted receiver, over real HTTP(S) on loopback."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import time

import pytest

from events.delivery_policy import classify
from processors.adapters.outbound import TargetPolicy, check_target
from processors.adapters.webhook_http import MAX_ERROR_CHARS, post
from processors.local.webhook_receiver import Reply, WebhookReceiver
from processors.adapters.webhook_signing import SigningSecretError, new_secret, signature, signed_headers, signing_key, verify

SECRET = new_secret(bytes(range(32)))
KEY = signing_key(SECRET)
LOOPBACK = TargetPolicy.from_env({"DYNAFOLD_ALLOW_TARGETS": "127.0.0.1/32", "DYNAFOLD_ALLOW_HTTP": "1"})
BODY = json.dumps({"event": "order.paid", "order": 1001}).encode()


@pytest.fixture
def receiver():
    with WebhookReceiver(SECRET) as running:
        yield running


def send(url, *, key=KEY, timeout=5.0, resolve=None, tls=None, webhook_id="msg-1"):
    target = check_target(url, LOOPBACK, resolve) if resolve else check_target(url, LOOPBACK)
    return post(target, BODY, signed_headers(key, webhook_id, int(time.time()), BODY), timeout, tls)


# ----------------------------------------------------------------------------- signing

def test_signature_matches_the_standard_webhooks_reference_vector():
    key = signing_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    assert signature(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}') == (
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")


def test_verify_accepts_any_of_several_signatures_and_rejects_tampering():
    headers = signed_headers(KEY, "msg-1", 1_700_000_000, BODY)
    at = 1_700_000_000
    assert verify(KEY, headers, BODY, now=at)
    rotated = {**headers, "webhook-signature": "v1,b2xkLXNpZ25hdHVyZQ== " + headers["webhook-signature"]}
    assert verify(KEY, rotated, BODY, now=at)
    assert not verify(KEY, headers, BODY + b" ", now=at)
    assert not verify(KEY, {**headers, "webhook-timestamp": "1700000001"}, BODY, now=at)
    assert not verify(signing_key(new_secret(b"k" * 32)), headers, BODY, now=at)
    assert not verify(KEY, {k: v for k, v in headers.items() if k != "webhook-id"}, BODY, now=at)


def test_verify_rejects_timestamps_more_than_five_minutes_away_either_way():
    """Issue 12 defect 12 (Standard Webhooks): a replayed or far-future request does not verify."""
    at = 1_700_000_000
    headers = signed_headers(KEY, "msg-1", at, BODY)
    assert verify(KEY, headers, BODY, now=at + 300) and verify(KEY, headers, BODY, now=at - 300)
    assert not verify(KEY, headers, BODY, now=at + 301)  # too old: a replay
    assert not verify(KEY, headers, BODY, now=at - 301)  # too far in the future
    assert not verify(KEY, headers, BODY)  # against the real clock, 2023 is long past
    assert verify(KEY, signed_headers(KEY, "msg-2", int(time.time()), BODY), BODY)


def test_the_scripted_receiver_refuses_a_stale_signature(receiver):
    target = check_target(receiver.url("/hook"), LOOPBACK)
    stale = post(target, BODY, signed_headers(KEY, "msg-old", int(time.time()) - 600, BODY), 5.0)
    assert stale.status_code == 401


@pytest.mark.parametrize("secret, message", [
    (None, "is not set"),
    ("", "is not set"),
    ("sk_live_abc", "must start with 'whsec_'"),
    ("whsec_not base64!", "not valid base64"),
    ("whsec_c2hvcnQ=", "at least 24 bytes"),
])
def test_bad_signing_secrets_are_refused_without_echoing_them(secret, message):
    with pytest.raises(SigningSecretError, match=message) as caught:
        signing_key(secret)
    assert "DYNAFOLD_SIGNING_SECRET" in str(caught.value)
    if secret:
        assert secret not in str(caught.value)


# ----------------------------------------------------------------------------- the scripted responses

@pytest.mark.parametrize("reply, category, retryable", [
    (Reply.ok(), "SUCCESS", False),
    (Reply.status(500), "SERVER_ERROR", True),
    (Reply.status(503), "SERVER_ERROR", True),
    (Reply.retry_after(7), "RATE_LIMITED", True),
    (Reply.gone(), "CLIENT_ERROR", False),
    (Reply.status(404), "CLIENT_ERROR", False),
])
def test_each_scripted_response_is_classified(receiver, reply, category, retryable):
    receiver.script("/hook", reply)
    outcome = send(receiver.url("/hook"))
    verdict = classify(outcome)
    assert (outcome.status_code, verdict.category, verdict.retryable) == (reply.status_code, category, retryable)
    assert outcome.response_time_ms >= 0
    [received] = receiver.received("/hook")
    assert received.signature_valid and received.json() == json.loads(BODY)
    assert received.webhook_id == "msg-1" and abs(received.timestamp - time.time()) < 60
    assert received.headers["content-type"] == "application/json"


def test_retry_after_and_the_error_text_come_back(receiver):
    receiver.script("/busy", Reply.retry_after("120", code=503))
    outcome = send(receiver.url("/busy"))
    assert (outcome.retry_after, outcome.error) == ("120", "HTTP 503 Service Unavailable")


def test_a_slow_target_times_out(receiver):
    receiver.script("/slow", Reply.slow(5.0))
    outcome = send(receiver.url("/slow"), timeout=0.3)
    assert (outcome.failure, classify(outcome).category) == ("timeout", "TIMEOUT")
    assert "timed out" in outcome.error


def test_a_redirect_is_reported_never_followed(receiver):
    receiver.script("/moved", Reply.redirect(receiver.url("/internal")))
    receiver.script("/internal", Reply.ok())
    outcome = send(receiver.url("/moved"))
    assert (outcome.status_code, classify(outcome).category) == (302, "REDIRECT")
    assert "not followed" in outcome.error
    assert receiver.received("/internal") == []


def test_a_closed_port_is_a_connection_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    outcome = send(f"http://127.0.0.1:{port}/hook")
    assert (outcome.failure, classify(outcome).category) == ("connection", "CONNECTION_ERROR")


def test_the_receiver_answers_401_to_a_bad_signature_without_using_its_script(receiver):
    receiver.script("/hook", Reply.status(503), Reply.ok())
    assert send(receiver.url("/hook"), key=signing_key(new_secret(b"w" * 32))).status_code == 401
    assert [send(receiver.url("/hook")).status_code for _ in range(3)] == [503, 200, 200]
    assert [r.signature_valid for r in receiver.received("/hook")] == [False, True, True, True]


def test_error_text_is_bounded(receiver):
    receiver.script("/loud", Reply.status(500, body=b"x" * 100_000))
    outcome = send(receiver.url("/loud"))
    assert len(outcome.error) <= MAX_ERROR_CHARS and outcome.error.startswith("HTTP 500")


def test_the_connection_goes_to_the_checked_address_and_the_host_header_names_the_url_host(receiver):
    resolutions = []

    def resolve(host, port):
        resolutions.append(host)
        return ["127.0.0.1"]

    receiver.script("/hook", Reply.ok())
    outcome = send(receiver.url("/hook", host="hooks.invalid"), resolve=resolve)
    assert outcome.status_code == 200
    assert resolutions == ["hooks.invalid"]  # once, by the guard; the adapter never resolves again
    assert receiver.received("/hook")[0].headers["host"] == f"hooks.invalid:{receiver.port}"


# ----------------------------------------------------------------------------- TLS to a pinned address

@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=hooks.test", "-addext", "subjectAltName=DNS:hooks.test",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


@pytest.fixture
def tls_receiver(certificate):
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(*certificate)
    with WebhookReceiver(SECRET, tls=server) as running:
        yield running


def test_tls_is_verified_against_the_url_host_while_connecting_to_the_pinned_address(tls_receiver, certificate):
    client = ssl.create_default_context(cafile=str(certificate[0]))
    tls_receiver.script("/hook", Reply.ok())
    pinned = lambda host, port: ["127.0.0.1"]  # noqa: E731 - a one-line resolver
    assert send(tls_receiver.url("/hook", host="hooks.test"), resolve=pinned, tls=client).status_code == 200

    wrong_name = send(tls_receiver.url("/hook", host="other.test"), resolve=pinned, tls=client)
    assert (wrong_name.failure, wrong_name.error[:4]) == ("connection", "TLS:")
    untrusted = send(tls_receiver.url("/hook", host="hooks.test"), resolve=pinned)  # system trust store
    assert untrusted.failure == "connection" and "certificate" in untrusted.error.lower()
    assert len(tls_receiver.received("/hook")) == 1
