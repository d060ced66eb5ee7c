"""The SSRF guard: every vector is refused before any connection is opened."""

import ipaddress
import socket

import pytest

from processors.adapters.outbound import TargetPolicy, TargetRefused, check_target, forbidden_reason

STRICT = TargetPolicy()


@pytest.fixture(autouse=True)
def no_connections(monkeypatch):
    """Checking a target may resolve names but must never open a connection."""
    def refuse(*args, **kwargs):
        raise AssertionError("check_target opened a socket")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize("url, fragment", [
    ("https://127.0.0.1/hook", "loopback"),
    ("https://localhost/hook", "loopback"),
    ("https://[::1]/hook", "loopback"),
    ("https://10.0.0.1/hook", "private"),
    ("https://192.168.1.20:8443/hook", "private"),
    ("https://169.254.169.254/latest/meta-data/", "link-local"),
    ("https://[fd00:ec2::254]/", "private"),
    ("https://[::ffff:10.0.0.1]/hook", "private"),
    ("https://[::ffff:127.0.0.1]/hook", "loopback"),
    ("https://2130706433/hook", "loopback"),         # decimal 127.0.0.1
    ("https://0177.0.0.1/hook", "loopback"),         # octal
    ("https://0x7f.0.0.1/hook", "loopback"),         # hex
    ("https://0.0.0.0/hook", "unspecified"),
    ("https://100.64.0.1/hook", "CGNAT"),
    ("https://[64:ff9b::a00:1]/hook", "private"),    # NAT64 of 10.0.0.1
])
def test_internal_addresses_are_refused_in_every_spelling(url, fragment):
    with pytest.raises(TargetRefused, match=fragment):
        check_target(url, STRICT)


def test_a_name_resolving_to_a_private_address_is_refused():
    resolver = {"hooks.internal.example": ["93.184.215.14", "10.1.2.3"]}.get
    with pytest.raises(TargetRefused, match=r"10\.1\.2\.3, a private"):
        check_target("https://hooks.internal.example/x", STRICT, lambda host, port: resolver(host, []))


@pytest.mark.parametrize("url, fragment", [
    ("http://hooks.example.com/x", "must use https"),
    ("ftp://hooks.example.com/x", "must use https"),
    ("hooks.example.com/x", "no scheme"),
    ("https://user:pw@hooks.example.com/x", "credentials"),
    ("https:///x", "no host"),
    ("https://hooks.example.com/x#frag", "fragment"),
    ("https://hooks.example.com/a b", "whitespace"),
    ("https://hooks.example.com:99999/x", "not valid"),
    ("https://" + "a" * 3000 + ".com/", "characters"),
])
def test_malformed_urls_are_refused(url, fragment):
    with pytest.raises(TargetRefused, match=fragment):
        check_target(url, STRICT, lambda host, port: ["93.184.215.14"])


def test_a_public_target_resolves_once_to_the_address_to_connect_to():
    calls = []

    def resolver(host, port):
        calls.append((host, port))
        return ["93.184.215.14"]

    target = check_target("https://hooks.example.com:8443/orders?x=1", STRICT, resolver)
    assert calls == [("hooks.example.com", 8443)]
    assert (target.address, target.port, target.path, target.host_header) == (
        "93.184.215.14", 8443, "/orders?x=1", "hooks.example.com:8443")


def test_allowed_networks_and_http_open_exactly_what_they_name():
    policy = TargetPolicy.from_env({"DYNAFOLD_ALLOW_TARGETS": "127.0.0.1/32", "DYNAFOLD_ALLOW_HTTP": "true"})
    assert check_target("http://127.0.0.1:8080/hook", policy).address == "127.0.0.1"
    with pytest.raises(TargetRefused, match="loopback"):
        check_target("http://127.0.0.2/hook", policy)
    with pytest.raises(ValueError, match="not a CIDR"):
        TargetPolicy.from_env({"DYNAFOLD_ALLOW_TARGETS": "localhost"})


def test_public_addresses_pass_and_reserved_ones_do_not():
    assert forbidden_reason(ipaddress.ip_address("93.184.215.14")) is None
    assert forbidden_reason(ipaddress.ip_address("2606:4700::6810:84e5")) is None
    assert forbidden_reason(ipaddress.ip_address("240.0.0.1")) == "reserved"
    assert forbidden_reason(ipaddress.ip_address("224.0.0.1")) == "multicast"
