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


# Issue 12 defect 10: every special-purpose range of the IANA registries (iana-ipv6-special-registry,
# iana-ipv4-special-registry, plus the IPv6 address space registry for fec0::/10 and what lies
# outside 2000::/3) that is not globally reachable is refused, whatever Python's is_global says.
@pytest.mark.parametrize("text", [
    "fec0::1", "feff:ffff::1",                   # deprecated site-local (RFC 3879): is_global says True
    "64:ff9b:1::a00:1", "64:ff9b:1:ffff::1",     # local-use IPv4/IPv6 translation (RFC 8215)
    "100::1", "100::ffff:ffff:ffff:ffff",        # discard-only (RFC 6666)
    "100:0:0:1::1",                              # dummy IPv6 prefix (RFC 9780)
    "2001:2::1",                                 # benchmarking (RFC 5180)
    "2001:10::1",                                # deprecated ORCHID (RFC 4843)
    "2001:5::1", "2001:1::4", "2001:100::1",     # IETF protocol assignments 2001::/23, not assigned global
    "2001:db8::1",                               # documentation (RFC 3849)
    "3fff::1", "3fff:fff:ffff::1",               # documentation (RFC 9637)
    "5f00::1",                                   # SRv6 SIDs (RFC 9602)
    "ff00::1", "ff0e::1", "ff02::1",             # multicast, global scope included
    "::2", "::a00:1", "::8.8.8.8",               # IPv4-compatible (deprecated), ::/8 reserved
    "4000::1", "e000::1",                        # outside 2000::/3: not allocated for global unicast
    "2002:a00:1::1", "2002:7f00:1::1",           # 6to4 of 10.0.0.1 and 127.0.0.1
    "2002:c000:201::1",                          # 6to4 of 192.0.2.1 (documentation)
    "192.0.0.8", "192.0.0.170", "192.0.0.1",     # IETF protocol assignments 192.0.0.0/24
    "192.0.2.1", "198.51.100.1", "203.0.113.1",  # documentation
    "198.18.0.1", "198.19.255.255",              # benchmarking
    "192.88.99.1",                               # deprecated 6to4 relay anycast
    "255.255.255.255", "0.1.2.3",
])
def test_every_special_purpose_range_that_is_not_globally_reachable_is_refused(text):
    assert forbidden_reason(ipaddress.ip_address(text)) is not None


@pytest.mark.parametrize("text", [
    "2001:1::1", "2001:1::2", "2001:1::3",       # PCP / TURN / DNS-SD SRP anycast: globally reachable
    "2001:3::1", "2001:4:112::1", "2001:20::1", "2001:30::1",
    "2620:4f:8000::1",                           # AS112 direct delegation
    "2002:5db8:d70e::1",                         # 6to4 of a public 93.184.215.14
    "64:ff9b::5db8:d70e",                        # well-known NAT64 of a public address
    "192.0.0.9", "192.0.0.10", "192.31.196.1", "192.52.193.1", "192.175.48.1",
    "2a00:1450:4001::1",
])
def test_globally_reachable_special_purpose_and_public_addresses_pass(text):
    assert forbidden_reason(ipaddress.ip_address(text)) is None


def test_site_local_is_refused_at_check_time_with_its_name():
    with pytest.raises(TargetRefused, match="site-local"):
        check_target("https://[fec0::1]/hook", STRICT)
