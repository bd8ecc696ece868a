"""`python -m server.devstack.certs [FOLDER]`: a development CA and a certificate per process.

Writes `ca.crt` (and its key, `ca.key`) and `<name>.crt`/`<name>.key` for the
services and the worker (server/core/services.py) and for an operator (for
grpcurl), by default under .data/tls/. Each certificate names localhost and
127.0.0.1, so that callers on this machine can check it; the ones that call
services also name their role as a URI (`order-platform://role/worker`),
which is how a service tells who is calling under mutual TLS
(server/core/auth/peer.py).

Nothing here is for production: there, certificates come from the
organisation's CA and the settings point to them (README.md, Security).
Existing files are kept until they come within 30 days of expiring.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from server.core.auth.identity import ROLE_URI_PREFIX, Role
from server.core.services import PLATFORM_PROCESSES
from server.devstack.paths import DATA_DIR

TLS_DIR = DATA_DIR / "tls"
# Certificate name -> the role it claims when its holder calls a service
# (None: it only serves).
PROCESS_ROLES: Mapping[str, Role | None] = {
    **{p.certificate: Role(p.role) if p.role else None for p in PLATFORM_PROCESSES.values()},
    "operator": Role.OPERATOR,
}
_VALID_DAYS = 365
_RENEW_WITHIN = datetime.timedelta(days=30)


@dataclass(frozen=True)
class CertificateFiles:
    """Where one process's certificate, key and the CA that signed them are."""

    ca: Path
    cert: Path
    key: Path

    def read(self) -> tuple[bytes, bytes, bytes]:
        return self.ca.read_bytes(), self.cert.read_bytes(), self.key.read_bytes()


def files_for(name: str, folder: Path = TLS_DIR) -> CertificateFiles:
    return CertificateFiles(folder / "ca.crt", folder / f"{name}.crt", folder / f"{name}.key")


def ensure_certificates(
    folder: Path = TLS_DIR, names: Iterable[str] = PROCESS_ROLES
) -> dict[str, CertificateFiles]:
    """Creates what is missing or about to expire; returns every process's files."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    ca_key, ca_cert, renewed = _authority(folder)
    files = {}
    for name in names:
        files[name] = files_for(name, folder)
        if renewed or not _still_good(files[name].cert):
            role = PROCESS_ROLES.get(name)
            _issue(ca_key, ca_cert, name, role, files[name])
    return files


def _authority(folder: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate, bool]:
    cert_path, key_path = folder / "ca.crt", folder / "ca.key"
    if _still_good(cert_path) and key_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key, x509.load_pem_x509_certificate(cert_path.read_bytes()), False
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "order-platform development CA")])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2 * _VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(key_path, _private_pem(key), secret=True)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return key, cert, True


def _issue(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    name: str,
    role: Role | None,
    files: CertificateFiles,
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    if role is not None:
        names.append(x509.UniformResourceIdentifier(ROLE_URI_PREFIX + role.value))
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write(files.key, _private_pem(key), secret=True)
    _write(files.cert, cert.public_bytes(serialization.Encoding.PEM))


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _still_good(cert_path: Path) -> bool:
    if not cert_path.exists():
        return False
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except ValueError:
        return False
    return cert.not_valid_after_utc - _now() > _RENEW_WITHIN


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, content: bytes, *, secret: bool = False) -> None:
    # Keys are readable by their owner only, from the moment they exist.
    mode = 0o600 if secret else 0o644
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "wb") as file:
        os.fchmod(file.fileno(), mode)
        file.write(content)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server.devstack.certs", description=__doc__)
    parser.add_argument("folder", nargs="?", type=Path, default=TLS_DIR)
    args = parser.parse_args(argv)
    files = ensure_certificates(args.folder)
    print(f"development CA and certificates in {args.folder}: {', '.join(files)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
