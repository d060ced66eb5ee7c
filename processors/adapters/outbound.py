"""Where dynafold may send HTTP: the one SSRF guard for message submission and the delivery worker.

A target URL is accepted only if it is https (http only when a dev setting allows it) and every
address its host resolves to is globally reachable per the IANA special-purpose registries
(``_SPECIAL``): loopback, private, link-local (cloud metadata), CGNAT, documentation, benchmarking,
site-local, multicast, reserved, unspecified and IPv4-mapped/translated/6to4 forms of those are refused,
unless an operator allowed the address's network (`DYNAFOLD_ALLOW_TARGETS`, empty by default).

Names are resolved once, here, and the caller connects to the address that was checked (the
`ResolvedTarget`), so a DNS answer that changes between check and connect (rebinding) cannot
reach a private network. Numeric spellings (decimal ``2130706433``, octal ``0177.0.0.1``, hex)
are resolved the way the C library would connect to them, then checked like any other address.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from events.errors import DynafoldError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]  # (host, port) -> addresses as text

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")

# Special-purpose ranges, from the IANA registries (not from the ``ipaddress`` flags, whose tables
# lag and miss some: ``fec0::1`` is "global" to them):
#   https://www.iana.org/assignments/iana-ipv4-special-registry/iana-ipv4-special-registry.xhtml
#   https://www.iana.org/assignments/iana-ipv6-special-registry/iana-ipv6-special-registry.xhtml
#   https://www.iana.org/assignments/ipv6-address-space/ipv6-address-space.xhtml (fec0::/10, 2000::/3)
#   https://www.iana.org/assignments/multicast-addresses (224.0.0.0/4) and ipv6-multicast-addresses (ff00::/8)
# (range, name, globally reachable). The most specific range containing an address decides, so the
# few globally reachable assignments inside a refused block (anycast, AS112, AMT...) pass. Forms
# that embed an IPv4 address (IPv4-mapped, 64:ff9b::/96, 6to4, Teredo) are judged by the address
# they embed first. Anything IPv6 outside 2000::/3 is refused whatever this table says.
_SPECIAL_RANGES: tuple[tuple[str, str, bool], ...] = (
    # IPv4
    ("0.0.0.0/8", "this-network", False),
    ("0.0.0.0/32", "unspecified", False),
    ("10.0.0.0/8", "private", False),
    ("100.64.0.0/10", "shared address space (CGNAT)", False),
    ("127.0.0.0/8", "loopback", False),
    ("169.254.0.0/16", "link-local (cloud metadata lives here)", False),
    ("172.16.0.0/12", "private", False),
    ("192.0.0.0/24", "IETF protocol assignment", False),
    ("192.0.0.0/29", "IPv4 service continuity", False),
    ("192.0.0.8/32", "IPv4 dummy", False),
    ("192.0.0.9/32", "PCP anycast", True),
    ("192.0.0.10/32", "TURN anycast", True),
    ("192.0.0.170/31", "NAT64/DNS64 discovery", False),
    ("192.0.2.0/24", "documentation", False),
    ("192.31.196.0/24", "AS112", True),
    ("192.52.193.0/24", "AMT", True),
    ("192.88.99.0/24", "deprecated 6to4 relay anycast", False),
    ("192.168.0.0/16", "private", False),
    ("192.175.48.0/24", "AS112 direct delegation", True),
    ("198.18.0.0/15", "benchmarking", False),
    ("198.51.100.0/24", "documentation", False),
    ("203.0.113.0/24", "documentation", False),
    ("224.0.0.0/4", "multicast", False),
    ("240.0.0.0/4", "reserved", False),
    ("255.255.255.255/32", "limited broadcast", False),
    # IPv6
    ("::/128", "unspecified", False),
    ("::1/128", "loopback", False),
    ("::/8", "reserved", False),  # includes the deprecated IPv4-compatible ::/96
    ("64:ff9b:1::/48", "local-use IPv4/IPv6 translation", False),
    ("100::/64", "discard-only", False),
    ("100:0:0:1::/64", "dummy IPv6 prefix", False),
    ("2001::/23", "IETF protocol assignment", False),
    ("2001:1::1/128", "PCP anycast", True),
    ("2001:1::2/128", "TURN anycast", True),
    ("2001:1::3/128", "DNS-SD SRP anycast", True),
    ("2001:2::/48", "benchmarking", False),
    ("2001:3::/32", "AMT", True),
    ("2001:4:112::/48", "AS112", True),
    ("2001:10::/28", "deprecated ORCHID", False),
    ("2001:20::/28", "ORCHIDv2", True),
    ("2001:30::/28", "drone remote ID (DET)", True),
    ("2001:db8::/32", "documentation", False),
    ("2620:4f:8000::/48", "AS112 direct delegation", True),
    ("3fff::/20", "documentation", False),
    ("5f00::/16", "segment routing (SRv6) SID", False),
    ("fc00::/7", "private", False),  # unique-local
    ("fe80::/10", "link-local (cloud metadata lives here)", False),
    ("fec0::/10", "deprecated site-local", False),
    ("ff00::/8", "multicast", False),
)
_SPECIAL: tuple[tuple[IPNetwork, str, bool], ...] = tuple(
    (ipaddress.ip_network(net), name, reachable) for net, name, reachable in _SPECIAL_RANGES)


def _special(address: IPAddress) -> tuple[str, bool] | None:
    """(name, globally reachable) of the most specific special-purpose range holding ``address``."""
    best: tuple[IPNetwork, str, bool] | None = None
    for network, name, reachable in _SPECIAL:
        if network.version == address.version and address in network and (
                best is None or network.prefixlen > best[0].prefixlen):
            best = (network, name, reachable)
    return None if best is None else (best[1], best[2])
MAX_URL_LENGTH = 2048


class TargetRefused(DynafoldError):
    """The URL may not be called; the message says why (safe to return to the client)."""


@dataclass(frozen=True)
class TargetPolicy:
    allow_http: bool = False
    allow_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "TargetPolicy":
        """DYNAFOLD_ALLOW_HTTP (1/true/yes) and DYNAFOLD_ALLOW_TARGETS (comma-separated CIDRs)."""
        allow_http = env.get("DYNAFOLD_ALLOW_HTTP", "").strip().lower() in ("1", "true", "yes", "on")
        networks = []
        for text in filter(None, (part.strip() for part in env.get("DYNAFOLD_ALLOW_TARGETS", "").split(","))):
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
            except ValueError:
                raise ValueError(f"DYNAFOLD_ALLOW_TARGETS: {text!r} is not a CIDR (e.g. 127.0.0.1/32)") from None
        return cls(allow_http, tuple(networks))

    def allows(self, address: IPAddress) -> bool:
        return any(address in network for network in self.allow_networks if network.version == address.version)


@dataclass(frozen=True)
class ResolvedTarget:
    """A checked URL and the address to connect to (Host header and TLS name stay the URL's host)."""

    url: str
    scheme: str
    host: str
    port: int
    path: str  # path and query, as sent in the request line
    address: str

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise TargetRefused(f"target host {host!r} does not resolve ({error})") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def forbidden_reason(address: IPAddress) -> str | None:
    """Why an address is not a public destination, or None when it is (see ``_SPECIAL``)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            inner = forbidden_reason(embedded)
            return None if inner is None else f"{inner} (embedded in {address})"
    special = _special(address)
    if special is not None:
        name, reachable = special
        return None if reachable else name
    if isinstance(address, ipaddress.IPv6Address) and address not in _GLOBAL_UNICAST:
        return "reserved (outside global unicast 2000::/3)"
    # A second net under the table: whatever ipaddress knows that the table does not.
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local (cloud metadata lives here)"
    if address.is_unspecified:
        return "unspecified"
    if address.is_multicast:
        return "multicast"
    if address.is_reserved:
        return "reserved"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "reserved"
    return None


def check_target(url: str, policy: TargetPolicy, resolve: Resolver = system_resolver) -> ResolvedTarget:
    """The URL, checked and resolved once; raises TargetRefused with the reason. Opens no connection."""
    parts = _split(url, policy)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = resolve(host, port)
    if not addresses:
        raise TargetRefused(f"target host {host!r} does not resolve")
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id
        reason = forbidden_reason(address)
        if reason is not None and not policy.allows(address):
            raise TargetRefused(f"target {host!r} resolves to {address}, a {reason} address: refused")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return ResolvedTarget(url, parts.scheme, host, port, path, addresses[0].split("%", 1)[0])


def _split(url: str, policy: TargetPolicy) -> SplitResult:
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"target URL must be 1-{MAX_URL_LENGTH} characters")
    if any(ord(c) < 0x21 or c == "\\" for c in url):
        raise TargetRefused("target URL contains whitespace, control characters or backslashes")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as error:
        raise TargetRefused(f"target URL is not valid: {error}") from None
    allowed = ("https", "http") if policy.allow_http else ("https",)
    if parts.scheme not in allowed:
        raise TargetRefused(f"target URL must use {' or '.join(allowed)}, not {parts.scheme or 'no scheme'!r}")
    if not parts.hostname:
        raise TargetRefused("target URL has no host")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("target URL may not carry credentials")
    if parts.fragment:
        raise TargetRefused("target URL may not carry a fragment")
    return parts
