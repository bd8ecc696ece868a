"""Where the services are and how to call them, from flags and the environment."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from clients.channels import CallerCredentials
from clients.credentials import caller_credentials
from clients.inventory import InventoryClient
from clients.operator import OperatorClient
from clients.orders import OrdersClient
from clients.payments import PaymentsClient

# The operator's token that `make run` makes in the checkout it runs from.
DEV_TOKEN_FILE = Path(".data/auth/operator.token")


@dataclass(frozen=True)
class Connection:
    orders_target: str
    inventory_target: str
    payments_target: str
    credentials: CallerCredentials
    timeout: float

    def orders(self) -> OrdersClient:
        return OrdersClient(self.orders_target, self.credentials, timeout=self.timeout)

    def operator(self) -> OperatorClient:
        """The operators' API, served by the front door."""
        return OperatorClient(self.orders_target, self.credentials, timeout=self.timeout)

    def inventory(self) -> InventoryClient:
        return InventoryClient(self.inventory_target, self.credentials, timeout=self.timeout)

    def payments(self) -> PaymentsClient:
        return PaymentsClient(self.payments_target, self.credentials, timeout=self.timeout)


def credentials_from(
    *,
    token: str | None,
    token_file: Path | None,
    ca_file: Path | None,
    cert_file: Path | None,
    key_file: Path | None,
) -> CallerCredentials:
    """Credentials from the options; the development token when none is named and it exists."""
    if not token and token_file is None and DEV_TOKEN_FILE.is_file():
        token_file = DEV_TOKEN_FILE
    return caller_credentials(
        token=token, token_file=token_file, ca_file=ca_file, cert_file=cert_file, key_file=key_file
    )
