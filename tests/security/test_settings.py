"""Security settings: hosts, Temporal's TLS and API key, the guard, make run's credentials."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.service import TLSConfig

from server.core.auth import Role, load_guard
from server.core.auth.tokens import TokenVerifier, VerificationKeys
from server.core.settings import Settings
from server.core.temporal import temporal_api_key, temporal_tls
from server.devstack.certs import ensure_certificates
from server.devstack.credentials import ensure_credentials
from server.devstack.security import security_environment


def settings(**values: object) -> Settings:
    return Settings(**values)  # type: ignore[arg-type]  # by alias, as the environment would


def test_each_service_may_listen_on_a_host_of_its_own() -> None:
    config = settings(BIND_HOST="10.0.0.1", ORDERS_BIND_HOST="0.0.0.0")
    assert config.bind_host_of("orders") == "0.0.0.0"
    assert config.bind_host_of("payments") == "10.0.0.1"


def test_reflection_is_for_the_front_door_unless_told_otherwise() -> None:
    assert settings().reflection == {"orders"}
    assert settings(REFLECTION_SERVICES="").reflection == frozenset()
    assert settings(REFLECTION_SERVICES="orders, inventory").reflection == {"orders", "inventory"}


def test_temporal_is_plaintext_unless_a_tls_setting_is_given() -> None:
    assert temporal_tls(settings()) is None
    assert temporal_api_key(settings()) is None
    assert temporal_tls(settings(TEMPORAL_TLS=True)) == TLSConfig()


def test_temporal_tls_and_api_key_come_from_files(tmp_path: Path) -> None:
    files = ensure_certificates(tmp_path, ["worker"])["worker"]
    key_file = tmp_path / "api-key"
    key_file.write_text("secret-key\n")
    config = settings(
        TEMPORAL_TLS_CA_FILE=str(files.ca),
        TEMPORAL_TLS_CERT_FILE=str(files.cert),
        TEMPORAL_TLS_KEY_FILE=str(files.key),
        TEMPORAL_TLS_SERVER_NAME="temporal.internal",
        TEMPORAL_API_KEY_FILE=str(key_file),
    )
    assert temporal_tls(config) == TLSConfig(
        server_root_ca_cert=files.ca.read_bytes(),
        client_cert=files.cert.read_bytes(),
        client_private_key=files.key.read_bytes(),
        domain="temporal.internal",
    )
    assert temporal_api_key(config) == "secret-key"
    with pytest.raises(SystemExit, match="go together"):
        temporal_tls(settings(TEMPORAL_TLS_CERT_FILE=str(files.cert)))
    with pytest.raises(SystemExit, match="TEMPORAL_API_KEY_FILE"):
        temporal_api_key(settings(TEMPORAL_API_KEY_FILE=str(tmp_path / "missing")))


def test_a_service_refuses_to_start_with_auth_on_and_no_way_to_check_it() -> None:
    with pytest.raises(SystemExit, match="JWT_SECRET_FILE"):
        load_guard(settings())
    assert not load_guard(settings(AUTH_ENABLED=False)).enabled
    # Under mTLS certificates are enough.
    assert load_guard(settings(TLS_MODE="mtls")).enabled


def test_make_run_gives_each_process_its_own_credentials(tmp_path: Path) -> None:
    names = ["temporal", "orders", "payments", "worker"]
    auth, tls = tmp_path / "auth", tmp_path / "tls"
    plain = security_environment(names, {}, auth_dir=auth, tls_dir=tls)
    assert set(plain) == {"orders", "payments", "worker"}
    assert {p["JWT_SECRET_FILE"] for p in plain.values()} == {str(auth / "jwt-secret")}
    assert plain["orders"]["SERVICE_TOKEN_FILE"] == str(auth / "front-door.token")
    assert plain["worker"]["SERVICE_TOKEN_FILE"] == str(auth / "worker.token")
    assert "SERVICE_TOKEN_FILE" not in plain["payments"]
    assert not tls.exists()
    secret = (auth / "jwt-secret").read_bytes()
    operator = (auth / "operator.token").read_text()
    assert (auth / "jwt-secret").stat().st_mode & 0o077 == 0

    # A second start keeps what is still good; mTLS adds certificates and drops the tokens.
    mutual = security_environment(names, {"TLS_MODE": "mtls"}, auth_dir=auth, tls_dir=tls)
    assert (auth / "jwt-secret").read_bytes() == secret
    assert (auth / "operator.token").read_text() == operator
    assert mutual["worker"]["TLS_CERT_FILE"] == str(tls / "worker.crt")
    assert mutual["payments"]["TLS_KEY_FILE"] == str(tls / "payments.key")
    assert "SERVICE_TOKEN_FILE" not in mutual["worker"]

    # Keys the environment names win: nothing is made.
    given = security_environment(
        names, {"JWT_PUBLIC_KEY_FILE": "/keys/jwt.pub"}, auth_dir=tmp_path / "none"
    )
    assert given == {"orders": {}, "payments": {}, "worker": {}}
    assert not (tmp_path / "none").exists()


def test_dev_tokens_name_the_roles_of_the_stack(tmp_path: Path) -> None:
    dev = ensure_credentials(tmp_path)
    verify = TokenVerifier(VerificationKeys(secret=dev.secret()), audience=dev.audience)
    roles = {
        name: verify.verify(dev.token(name)).role for name in ("operator", "worker", "front-door")
    }
    assert roles == {
        "operator": Role.OPERATOR,
        "worker": Role.WORKER,
        "front-door": Role.FRONT_DOOR,
    }
