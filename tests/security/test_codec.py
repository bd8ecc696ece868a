"""Payload encryption: what Temporal would store, and key rotation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.exceptions import ApplicationError

from server.core.codec import EncryptionCodec, PayloadDecryptionError
from server.core.keyring import KeyringError, generate_keyring, parse_keyring
from server.core.payloads import DATA_CONVERTER, UNAUTHENTICATED_PAYLOAD, encrypted_converter
from server.core.settings import Settings
from worker.model import Address, ChargeInput, OrderInput

ADDRESS = Address(
    name="Ada Lovelace",
    line1="12 Analytical Row",
    city="London",
    postal_code="N1",
    country_code="GB",
)


def keyring(*key_ids: str, current: str = "") -> str:
    """Keyring JSON holding a fresh key for each id; the last is current unless told."""
    keys: dict[str, str] = {}
    for key_id in key_ids:
        keys.update(json.loads(generate_keyring(key_id))["keys"])
    return json.dumps({"current": current or key_ids[-1], "keys": keys})


def codec(text: str) -> EncryptionCodec:
    return EncryptionCodec(parse_keyring(text, source="test"))


def plain(value: object) -> Payload:
    return DATA_CONVERTER.payload_converter.to_payloads([value])[0]


async def test_an_encoded_payload_holds_neither_the_value_nor_its_type() -> None:
    payload = plain(ADDRESS)
    [encoded] = await codec(keyring("k1")).encode([payload])
    raw = encoded.SerializeToString()
    for secret in (b"Ada Lovelace", b"Analytical", b"London", b"json/plain"):
        assert secret in payload.SerializeToString()
        assert secret not in raw
    assert encoded.metadata["encoding"] == b"binary/encrypted"
    assert encoded.metadata["encryption-key-id"] == b"k1"


async def test_each_payload_gets_its_own_nonce() -> None:
    one, two = await codec(keyring("k1")).encode([plain(ADDRESS), plain(ADDRESS)])
    assert one.metadata["encryption-nonce"] != two.metadata["encryption-nonce"]
    assert one.data != two.data


async def test_the_converter_round_trips_workflow_values() -> None:
    converter = encrypted_converter(codec(keyring("k1")))
    order = OrderInput(
        order_id="ord_1",
        request_id="r",
        fingerprint="f",
        customer_id="c",
        currency_code="USD",
        lines=[],
        address=ADDRESS,
        payment_method_id="pm_1",
    )
    payloads = await converter.encode(
        [order, ChargeInput("ord_1", "USD", 5, payment_method_id="pm_1")]
    )
    assert await converter.decode(payloads, [OrderInput, ChargeInput]) == [
        order,
        ChargeInput("ord_1", "USD", 5, payment_method_id="pm_1"),
    ]


async def test_payloads_under_an_old_key_decode_after_rotation() -> None:
    before = keyring("k1")
    [old] = await codec(before).encode([plain(ADDRESS)])

    # Rotation: k2 is added and made current; k1 stays to decrypt.
    rotated = json.loads(before)
    rotated["keys"].update(json.loads(generate_keyring("k2"))["keys"])
    rotated["current"] = "k2"
    after = codec(json.dumps(rotated))

    [new] = await after.encode([plain(ADDRESS)])
    assert new.metadata["encryption-key-id"] == b"k2"
    assert await after.decode([old, new]) == [plain(ADDRESS), plain(ADDRESS)]


async def test_a_payload_under_a_key_that_left_the_ring_is_an_error() -> None:
    [old] = await codec(keyring("k1")).encode([plain(ADDRESS)])
    with pytest.raises(PayloadDecryptionError, match=r"'k1'.*not in this process's keyring"):
        await codec(keyring("k2")).decode([old])


async def test_a_tampered_payload_fails_authentication() -> None:
    ring = keyring("k1")
    [encoded] = await codec(ring).encode([plain(ADDRESS)])
    flipped = bytearray(encoded.data)
    flipped[len(flipped) // 2] ^= 0x01
    tampered = Payload(metadata=encoded.metadata, data=bytes(flipped))
    with pytest.raises(PayloadDecryptionError, match="failed authentication"):
        await codec(ring).decode([tampered])


async def test_a_key_id_reused_for_another_key_fails_authentication() -> None:
    [encoded] = await codec(keyring("k1")).encode([plain(ADDRESS)])
    with pytest.raises(PayloadDecryptionError, match="failed authentication"):
        await codec(keyring("k1")).decode([encoded])


async def test_a_payload_that_is_not_encrypted_is_refused_by_the_converter() -> None:
    """What anyone can send to Temporal never reaches a workflow as a value."""
    converter = encrypted_converter(codec(keyring("k1")))
    [decoded] = await converter.payload_codec.decode([plain(ADDRESS)])  # type: ignore[union-attr]
    assert decoded.data == b""  # its content is dropped
    with pytest.raises(ApplicationError) as refused:
        converter.payload_converter.from_payloads([decoded], [Address])
    assert refused.value.type == UNAUTHENTICATED_PAYLOAD
    assert refused.value.non_retryable


async def test_what_temporal_writes_itself_passes_and_nothing_like_it() -> None:
    """The details of an activity cancelled while no attempt ran are the server's, not encrypted."""
    converter = encrypted_converter(codec(keyring("k1")))
    core = Payload(metadata={"encoding": b"json/plain"}, data=b'"ACTIVITY_ID_NOT_STARTED"')
    [decoded] = await converter.payload_codec.decode([core])  # type: ignore[union-attr]
    assert converter.payload_converter.from_payloads([decoded]) == ["ACTIVITY_ID_NOT_STARTED"]

    near = Payload(metadata={"encoding": b"json/plain"}, data=b'"ACTIVITY_ID_NOT_STARTED "')
    [decoded] = await converter.payload_codec.decode([near])  # type: ignore[union-attr]
    with pytest.raises(ApplicationError):
        converter.payload_converter.from_payloads([decoded])


async def test_the_operators_codec_shows_a_payload_that_is_not_encrypted_as_it_is() -> None:
    payload = plain(ADDRESS)
    lenient = EncryptionCodec(parse_keyring(keyring("k1"), source="test"), strict=False)
    assert await lenient.decode([payload]) == [payload]


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("not json", "not a keyring"),
        ('{"current": "k1", "keys": {"k1": "c2hvcnQ="}}', "not 32 bytes"),
        ('{"current": "k9", "keys": {}}', "current key 'k9' is not among its keys"),
        ('{"current": "k1", "keys": {"k1": "***"}}', "not a keyring"),
    ],
)
def test_a_bad_keyring_is_refused_with_its_reason(text: str, complaint: str) -> None:
    with pytest.raises(KeyringError, match=complaint):
        parse_keyring(text, source="PAYLOAD_KEYS")


def test_keys_come_from_the_settings_or_their_file(tmp_path: Path) -> None:
    inline = keyring("inline")
    path = tmp_path / "keys.json"
    path.write_text(keyring("from-file"))
    by_value = Settings(PAYLOAD_KEYS=inline, PAYLOAD_KEYS_FILE=str(path))  # type: ignore[call-arg]
    by_file = Settings(PAYLOAD_KEYS_FILE=str(path))  # type: ignore[call-arg]
    assert by_value.payload_keyring().current_id == "inline"
    assert by_file.payload_keyring().current_id == "from-file"


def test_a_missing_keys_file_stops_the_process(tmp_path: Path) -> None:
    settings = Settings(PAYLOAD_KEYS_FILE=str(tmp_path / "missing.json"))  # type: ignore[call-arg]
    with pytest.raises(SystemExit, match=r"PAYLOAD_KEYS_FILE=.*missing\.json"):
        settings.payload_keyring()


def test_without_settings_every_process_shares_one_development_keyring() -> None:
    first, second = Settings().payload_keyring(), Settings().payload_keyring()
    assert first == second
    assert len(first.current_key) == 32
