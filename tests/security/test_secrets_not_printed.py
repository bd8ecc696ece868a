"""What `make run` prints, and the settings object's repr, never show a secret."""

from __future__ import annotations

from server.core.settings import Settings
from server.devstack.endpoints import describe

SECRET = "s3cret"
DATABASE_URL = f"postgresql://u:{SECRET}@h/db"


def settings(**values: object) -> Settings:
    return Settings(**values)  # type: ignore[arg-type]  # by alias, as the environment would


def test_the_banner_shows_the_codec_url_and_no_password() -> None:
    config = settings(DATABASE_URL=DATABASE_URL, BIND_HOST="10.0.0.7", CODEC_SERVER_PORT=8299)
    banner = describe(["postgres", "codec"], config, {"DATABASE_URL": DATABASE_URL})
    codec_line = next(line for line in banner.splitlines() if "codec" in line)
    assert "http://10.0.0.7:8299 " in codec_line, codec_line
    assert SECRET not in banner, banner


def test_the_settings_repr_masks_passwords_and_keys() -> None:
    config = settings(
        DATABASE_URL=DATABASE_URL,
        ORDERS_READ_DATABASE_URL=f"postgresql://reader@replica/db?sslmode=require&password={SECRET}",
        OTEL_EXPORTER_OTLP_ENDPOINT=f"https://collector:{SECRET}@otel.example:4317",
        PAYLOAD_KEYS=f'{{"k1": "{SECRET}"}}',
        PAYMENT_METHOD_KEYS=f'{{"k1": "{SECRET}"}}',
    )
    # A bound method's repr holds its object's: the banner's old leak.
    for text in (repr(config), str(config), f"{config!r}", repr(config.bind_host_of)):
        assert SECRET not in text, text
    # Still useful to read: only the secret part is hidden.
    assert "postgresql://u:***@h/db" in repr(config)
    assert "sslmode=require" in repr(config)
    # The values themselves are untouched.
    assert config.database_url == DATABASE_URL
