import ipaddress

import pytest
from django.test import override_settings

from core.ssrf import UnsafeURL, check_literal, check_url, is_allowed_address, is_forbidden_address


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
    ],
)
def test_non_public_addresses_are_forbidden(address):
    assert is_forbidden_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"])
def test_public_addresses_are_allowed(address):
    assert not is_forbidden_address(ipaddress.ip_address(address))


@override_settings(WEBHOOK_ALLOWED_NETWORKS=[], WEBHOOK_EGRESS_NETWORKS=[])
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8000/hook",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.8/hook",
        "http://2130706433/hook",  # 127.0.0.1 written as one number
    ],
)
def test_urls_to_private_hosts_are_refused(url):
    with pytest.raises(UnsafeURL, match="WEBHOOK_ALLOWED_NETWORKS"):
        check_url(url)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://127.0.0.1/x", "only http and https"),
        ("http:///x", "no host"),
        ("http://user:pw@127.0.0.1/x", "credentials"),
        ("http://no-such-host.invalid/x", "does not resolve"),
        ("https://y\u00e2_\U0010ce4f/x", "not a valid host name"),  # found by schemathesis
    ],
)
def test_malformed_urls_are_refused(url, words):
    with pytest.raises(UnsafeURL, match=words):
        check_url(url)


@override_settings(WEBHOOK_ALLOWED_NETWORKS=["127.0.0.0/8"])
def test_an_allowed_network_lets_its_addresses_through_even_when_mapped():
    assert check_url("http://127.0.0.1:9000/hook") == [ipaddress.ip_address("127.0.0.1")]
    assert check_url("http://[::ffff:127.0.0.1]/hook") == [ipaddress.ip_address("127.0.0.1")]
    with pytest.raises(UnsafeURL):
        check_url("http://10.0.0.8/hook")


@override_settings(WEBHOOK_EGRESS_NETWORKS=["127.0.0.0/8"])
@pytest.mark.parametrize(
    "address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "10.0.0.8", "::1"]
)
def test_egress_networks_confine_webhooks_even_to_public_addresses(address):
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(UnsafeURL, match="outside WEBHOOK_EGRESS_NETWORKS"):
        check_url(f"http://{host}/hook")
    with pytest.raises(UnsafeURL, match="outside WEBHOOK_EGRESS_NETWORKS"):
        check_literal(f"http://{host}/hook")
    assert check_url("http://127.0.0.1:9000/hook") == [ipaddress.ip_address("127.0.0.1")]


@override_settings(
    WEBHOOK_EGRESS_NETWORKS=[], WEBHOOK_EGRESS_DENIED_NETWORKS=["93.184.216.0/24", "127.0.0.2/32"]
)
def test_denied_networks_are_never_reached_whatever_else_allows_them():
    assert is_allowed_address(ipaddress.ip_address("93.184.217.1"))
    assert not is_allowed_address(ipaddress.ip_address("93.184.216.34"))
    assert is_allowed_address(ipaddress.ip_address("127.0.0.1"))  # WEBHOOK_ALLOWED_NETWORKS
    with pytest.raises(UnsafeURL, match="in WEBHOOK_EGRESS_DENIED_NETWORKS"):
        check_url("http://127.0.0.2/hook")
