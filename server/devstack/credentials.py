"""Development credentials: a signing secret and tokens, made on first run under .data/auth/.

    .data/auth/jwt-secret          the HS256 secret every service checks tokens with
    .data/auth/operator.token      a person's token (role operator), for grpcurl
    .data/auth/worker.token        the worker's own token
    .data/auth/front-door.token    the front door's own token

Nothing here is committed or built into the code: the secret is random, made
once per checkout, and tokens are minted again when they come within a week
of expiring, or no longer match the secret. Production uses its own issuer
and keys (README.md, Security).

    python -m server.devstack.credentials                      make what is missing
    python -m server.devstack.credentials token --role customer-service --customer-id cust-42
                                                               print a new token
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import jwt

from server.core.auth.identity import Role
from server.core.auth.tokens import mint_token
from server.core.services import PLATFORM_PROCESSES
from server.devstack.paths import DATA_DIR

AUTH_DIR = DATA_DIR / "auth"
DEFAULT_AUDIENCE = "order-platform"
_LIFETIME_SECONDS = 90 * 86400
_RENEW_WITHIN_SECONDS = 7 * 86400
# The tokens made for the stack: file stem -> (role, subject). Each process
# that calls services (server/core/services.py) has one named after its role.
STACK_TOKENS: dict[str, tuple[Role, str]] = {
    "operator": (Role.OPERATOR, "dev-operator"),
    **{p.role: (Role(p.role), p.name) for p in PLATFORM_PROCESSES.values() if p.role},
}


@dataclass(frozen=True)
class DevCredentials:
    folder: Path
    audience: str = DEFAULT_AUDIENCE

    @property
    def secret_file(self) -> Path:
        return self.folder / "jwt-secret"

    def token_file(self, name: str) -> Path:
        return self.folder / f"{name}.token"

    def secret(self) -> bytes:
        return self.secret_file.read_bytes().strip()

    def mint(
        self,
        role: Role,
        *,
        subject: str,
        customer_id: str | None = None,
        lifetime_seconds: float = _LIFETIME_SECONDS,
        now: float | None = None,
    ) -> str:
        return mint_token(
            self.secret(),
            subject=subject,
            role=role,
            customer_id=customer_id,
            audience=self.audience,
            lifetime_seconds=lifetime_seconds,
            now=now,
        )

    def token(self, name: str) -> str:
        return self.token_file(name).read_text().strip()


def ensure_credentials(folder: Path = AUTH_DIR, audience: str = DEFAULT_AUDIENCE) -> DevCredentials:
    """Makes the secret and the stack's tokens where missing, stale or about to expire."""
    credentials = DevCredentials(folder, audience)
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    if not credentials.secret_file.exists():
        _write_secret(credentials.secret_file, secrets.token_hex(32))
    for name, (role, subject) in STACK_TOKENS.items():
        path = credentials.token_file(name)
        if not _still_good(credentials, path):
            _write_secret(path, credentials.mint(role, subject=subject))
    return credentials


def _still_good(credentials: DevCredentials, path: Path) -> bool:
    if not path.exists():
        return False
    try:
        claims = jwt.decode(
            path.read_text().strip(),
            credentials.secret(),
            algorithms=["HS256"],
            audience=credentials.audience,
        )
    except jwt.InvalidTokenError:
        return False
    return float(claims["exp"]) - time.time() > _RENEW_WITHIN_SECONDS


def _write_secret(path: Path, text: str) -> None:
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as file:
        os.fchmod(file.fileno(), 0o600)
        file.write(text + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m server.devstack.credentials",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--folder", type=Path, default=AUTH_DIR)
    parser.add_argument("--audience", default=os.environ.get("JWT_AUDIENCE", DEFAULT_AUDIENCE))
    commands = parser.add_subparsers(dest="command")
    token = commands.add_parser("token", help="print a new token signed with the dev secret")
    token.add_argument("--role", required=True, choices=[r.value for r in Role])
    token.add_argument("--customer-id", help="the customer a customer-service token acts for")
    token.add_argument("--subject", help="the token's sub (default: the role)")
    token.add_argument("--days", type=float, default=30.0)
    args = parser.parse_args(argv)
    credentials = ensure_credentials(args.folder, args.audience)
    if args.command != "token":
        print(f"development secret and tokens in {args.folder}")
        return 0
    role = Role(args.role)
    if role is Role.CUSTOMER_SERVICE and not args.customer_id:
        parser.error("a customer-service token needs --customer-id")
    print(
        credentials.mint(
            role,
            subject=args.subject or role.value,
            customer_id=args.customer_id if role is Role.CUSTOMER_SERVICE else None,
            lifetime_seconds=args.days * 86400,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
