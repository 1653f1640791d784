"""A local certificate authority for serving the emulator over HTTPS.

Some clients only speak https to an instance (simple-salesforce builds
``https://<instance>`` URLs). :meth:`EmulatorTLS.create` keeps a small CA in a directory
(created once, reused so that you trust it once) and a server certificate it signed for
the loopback addresses and the emulated Salesforce host names. Trust ``ca.pem``:

- Python ``ssl``, requests, httpx: ``SSL_CERT_FILE=ca.pem`` / ``REQUESTS_CA_BUNDLE=ca.pem``
  (each replaces the default bundle of that process), or
  ``httpx.Client(verify=tls.ssl_context())``;
- Node (jsforce): ``NODE_EXTRA_CA_CERTS=ca.pem`` (added to Node's bundle).

The CA's private key stays in the directory (mode 0600) and signs nothing but the
emulator's certificate; delete the directory to start over.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import ssl
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .constants import LOGIN_HOST, SANDBOX_LOGIN_HOST

__all__ = ["DEFAULT_TLS_NAMES", "EmulatorTLS", "default_tls_dir"]

#: Names every emulator server certificate covers: the loopback addresses and the
#: Salesforce host patterns the emulator answers on (see docs/emulator.md).
DEFAULT_TLS_NAMES: tuple[str, ...] = (
    "localhost",
    "127.0.0.1",
    "::1",
    LOGIN_HOST,
    SANDBOX_LOGIN_HOST,
    "*.my.salesforce.com",
    "*.sandbox.my.salesforce.com",
    "*.my.site.com",
    "*.my.salesforce-setup.com",
)

_CA_DAYS = 3650
_SERVER_DAYS = 397  # what browsers accept for a server certificate
_RENEW_BEFORE = datetime.timedelta(days=30)
_CA_NAME = "sfoauth emulator local CA"


def default_tls_dir() -> Path:
    """``$XDG_CACHE_HOME/sfoauth/emulator-tls`` (``~/.cache/...`` without it)."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "sfoauth" / "emulator-tls"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write ``path`` atomically with ``mode`` (a reader never sees half a file)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(temporary, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _general_names(names: Iterable[str]) -> list[x509.GeneralName]:
    result: list[x509.GeneralName] = []
    for name in dict.fromkeys(n.strip().lower().strip("[]") for n in names if n):
        try:
            result.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            result.append(x509.DNSName(name))
    return result


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Serialise two emulators creating the same files (POSIX; elsewhere a no-op)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(directory / ".lock", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _new_ca() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sfoauth"),
            x509.NameAttribute(NameOID.COMMON_NAME, _CA_NAME),
        ]
    )
    now = _now()
    public = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=_CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(public), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def _new_server_certificate(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_certificate: x509.Certificate,
    names: Iterable[str],
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    now = _now()
    ca_public = ca_key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sfoauth emulator")])
        )
        .issuer_name(ca_certificate.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=_SERVER_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.SubjectAlternativeName(_general_names(names)), critical=False
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(public), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_public),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, certificate


def _load_ca(
    ca_file: Path, ca_key_file: Path
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None:
    """The stored CA, or ``None`` when it is missing, unreadable, mismatched or about
    to expire."""
    try:
        certificate = x509.load_pem_x509_certificate(ca_file.read_bytes())
        key = serialization.load_pem_private_key(ca_key_file.read_bytes(), None)
    except (OSError, ValueError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        return None
    if key.public_key() != certificate.public_key():
        return None
    if certificate.not_valid_after_utc - _RENEW_BEFORE < _now():
        return None
    return key, certificate


def _server_certificate_ok(
    cert_file: Path, key_file: Path, ca: x509.Certificate, names: Iterable[str]
) -> bool:
    try:
        certificate = x509.load_pem_x509_certificate(cert_file.read_bytes())
        key = serialization.load_pem_private_key(key_file.read_bytes(), None)
        certificate.verify_directly_issued_by(ca)
        san = certificate.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value
    except (OSError, ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    if key.public_key() != certificate.public_key():
        return False
    if certificate.not_valid_after_utc - _RENEW_BEFORE < _now():
        return False
    return all(name in list(san) for name in _general_names(names))


@dataclass(frozen=True)
class EmulatorTLS:
    """The files of an HTTPS emulator: a local CA and a server certificate it signed.

    Attributes:
        directory: where the files live.
        ca_file: the CA certificate (PEM): the file clients trust.
        cert_file: the server certificate (PEM).
        key_file: the server's private key (PEM, mode 0600).
    """

    directory: Path
    ca_file: Path
    cert_file: Path
    key_file: Path

    @classmethod
    def create(
        cls, directory: str | Path | None = None, names: Iterable[str] = ()
    ) -> EmulatorTLS:
        """The CA and server certificate in ``directory``, made when missing.

        An existing CA is reused (trust it once); the server certificate is made again
        when it is missing, expiring, signed by another CA or lacks one of the names.

        Args:
            directory: default :func:`default_tls_dir`.
            names: host names or IP addresses the server certificate covers besides
                :data:`DEFAULT_TLS_NAMES` (an org's My Domain host, for example).

        Raises:
            OSError: the directory cannot be created or written.
        """
        root = Path(directory) if directory is not None else default_tls_dir()
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        tls = cls(
            directory=root,
            ca_file=root / "ca.pem",
            cert_file=root / "server.pem",
            key_file=root / "server-key.pem",
        )
        all_names = (*DEFAULT_TLS_NAMES, *names)
        ca_key_file = root / "ca-key.pem"
        with _locked(root):
            ca = _load_ca(tls.ca_file, ca_key_file)
            if ca is None:
                ca = _new_ca()
                _write(ca_key_file, _key_pem(ca[0]), 0o600)
                _write(tls.ca_file, _cert_pem(ca[1]), 0o644)
            ca_key, ca_certificate = ca
            if not _server_certificate_ok(
                tls.cert_file, tls.key_file, ca_certificate, all_names
            ):
                key, certificate = _new_server_certificate(
                    ca_key, ca_certificate, all_names
                )
                _write(tls.key_file, _key_pem(key), 0o600)
                _write(tls.cert_file, _cert_pem(certificate), 0o644)
        return tls

    def ssl_context(self) -> ssl.SSLContext:
        """A client context trusting only this CA: ``httpx.Client(verify=...)``."""
        return ssl.create_default_context(cafile=str(self.ca_file))
