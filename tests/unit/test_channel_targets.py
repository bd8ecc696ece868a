"""Service addresses: one instance, or several that the channel balances over."""

from __future__ import annotations

import json

import pytest

from clients.channels import channel_target


def balancing(options: list[tuple[str, object]]) -> list[object]:
    config = json.loads(str(dict(options)["grpc.service_config"]))
    return config["loadBalancingConfig"]


def test_one_address_is_used_as_given_and_balanced_over_its_records() -> None:
    target, options = channel_target("payments.internal:50052")
    assert target == "payments.internal:50052"
    assert balancing(options) == [{"round_robin": {}}]
    assert "grpc.default_authority" not in dict(options)


def test_several_addresses_become_one_round_robin_target() -> None:
    target, options = channel_target("10.0.0.1:50052, 10.0.0.2:50052")
    assert target == "ipv4:10.0.0.1:50052,10.0.0.2:50052"
    assert balancing(options) == [{"round_robin": {}}]
    # TLS checks the instances' certificates against one name.
    assert dict(options)["grpc.default_authority"] == "10.0.0.1:50052"


def test_ipv6_addresses_get_their_scheme() -> None:
    target, _ = channel_target("[::1]:50052,[::1]:50053")
    assert target == "ipv6:[::1]:50052,[::1]:50053"


@pytest.mark.parametrize(
    "address",
    ["payments-1:50052,payments-2:50052", "10.0.0.1:50052,[::1]:50052", "10.0.0.1,10.0.0.2"],
)
def test_a_list_names_ip_addresses_with_ports_of_one_family(address: str) -> None:
    with pytest.raises(ValueError):
        channel_target(address)
