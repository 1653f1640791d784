"""Set up the JWT bearer flow: the replacement for the retiring username-password flow.

Reference 15.6: Salesforce stops the username-password flow for connected apps in
Winter '27 (External Client Apps never had it). An integration that logs in with a
password moves to JWT bearer (or client credentials). What JWT bearer needs is an RSA key
pair and a certificate uploaded to the app; this module makes both with ``cryptography``
and says what to do with them. ``sfoauth login jwt --setup`` is its command line.

Example:
    >>> pair = generate_jwt_key_pair(common_name="billing-sync")
    >>> key_path, cert_path = write_jwt_key_pair(pair, "./salesforce-jwt")
    >>> print(jwt_setup_steps(pair, key_path=key_path, cert_path=cert_path))
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from .config import MIN_RSA_KEY_BITS
from .exceptions import ConfigurationError

__all__ = [
    "DEFAULT_CERTIFICATE_DAYS",
    "JwtKeyPair",
    "generate_jwt_key_pair",
    "jwt_setup_steps",
    "write_jwt_key_pair",
]

#: Two years: Salesforce accepts longer, but a certificate that never expires is one
#: nobody remembers to rotate.
DEFAULT_CERTIFICATE_DAYS = 730
KEY_FILE = "salesforce-jwt.key"
CERT_FILE = "salesforce-jwt.crt"


@dataclass(frozen=True)
class JwtKeyPair:
    """A private key and the self-signed certificate to upload to the app.

    Attributes:
        private_key_pem: unencrypted PKCS#8 PEM (kept out of ``repr``).
        certificate_pem: the X.509 certificate PEM (public; upload it to the app).
        fingerprint: SHA-256 fingerprint of the certificate, ``AA:BB:…``.
        not_after: when the certificate expires (UTC).
    """

    private_key_pem: str = field(repr=False)
    certificate_pem: str
    fingerprint: str
    not_after: datetime.datetime


def generate_jwt_key_pair(
    *,
    common_name: str = "sfoauth JWT bearer",
    days: int = DEFAULT_CERTIFICATE_DAYS,
    key_size: int = 2048,
) -> JwtKeyPair:
    """A new RSA key and a self-signed SHA-256 certificate for it.

    Args:
        common_name: the certificate's subject CN (shown in Salesforce's app settings).
        days: validity of the certificate.
        key_size: RSA key size in bits (at least 2048).

    Raises:
        ConfigurationError: ``key_size`` under 2048, ``days`` not positive or an empty
            ``common_name``.
    """
    if key_size < MIN_RSA_KEY_BITS:
        raise ConfigurationError("key_size", f"must be at least {MIN_RSA_KEY_BITS}")
    if days < 1:
        raise ConfigurationError("days", "must be at least 1")
    if not common_name.strip():
        raise ConfigurationError("common_name", "must not be empty")
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name.strip())])
    now = datetime.datetime.now(datetime.timezone.utc)
    not_after = now + datetime.timedelta(days=days)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    digest = certificate.fingerprint(hashes.SHA256()).hex().upper()
    return JwtKeyPair(
        private_key_pem=private_pem,
        certificate_pem=certificate.public_bytes(serialization.Encoding.PEM).decode(
            "ascii"
        ),
        fingerprint=":".join(digest[i : i + 2] for i in range(0, len(digest), 2)),
        not_after=certificate.not_valid_after_utc,
    )


def write_jwt_key_pair(
    pair: JwtKeyPair,
    directory: str | os.PathLike[str],
    *,
    overwrite: bool = False,
) -> tuple[Path, Path]:
    """Write the key (mode ``0600``) and the certificate into ``directory``.

    Returns:
        ``(key_path, certificate_path)``.

    Raises:
        ConfigurationError: a file is already there (``overwrite=False``: an existing
            key may be the one the app trusts today) or the directory is unusable.
    """
    folder = Path(directory).expanduser()
    key_path, cert_path = folder / KEY_FILE, folder / CERT_FILE
    if not overwrite:
        for path in (key_path, cert_path):
            if path.exists():
                raise ConfigurationError(
                    "directory", f"already has {path.name}; pass overwrite=True"
                )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # The key is created owner-only from the first byte (no chmod window).
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        descriptor = os.open(key_path, flags, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(pair.private_key_pem)
        os.chmod(key_path, 0o600)  # an existing file keeps its mode on O_TRUNC
        cert_path.write_text(pair.certificate_pem, encoding="ascii")
    except OSError as exc:
        raise ConfigurationError(
            "directory", f"cannot be written ({type(exc).__name__})"
        ) from None
    return key_path, cert_path


def jwt_setup_steps(
    pair: JwtKeyPair,
    *,
    key_path: str | os.PathLike[str],
    cert_path: str | os.PathLike[str],
    client_id: str | None = None,
    username: str | None = None,
    login_url: str | None = None,
) -> str:
    """What to do with the files: upload, pre-authorize, configure (plain text).

    Nothing here contains the private key; paths and public values only.
    """
    client = client_id or "<consumer key>"
    user = username or "<integration username>"
    host = login_url or "https://<your-domain>.my.salesforce.com"
    expires = pair.not_after.date().isoformat()
    return "\n".join(
        [
            f"Private key:  {key_path} (keep it secret; mode 0600)",
            f"Certificate:  {cert_path} (SHA-256 {pair.fingerprint}, "
            f"expires {expires})",
            "",
            "1. Upload the certificate to the app:",
            "   External Client App: Settings > OAuth Settings > Flow Enablement > "
            "Enable JWT Bearer Flow, upload the certificate.",
            "   Connected App: Edit > API (Enable OAuth Settings) > Use digital "
            "signatures, upload the certificate.",
            "2. Pre-authorize the integration user: set Permitted Users to 'Admin "
            "approved users are pre-authorized' and assign the user's profile or a "
            "permission set to the app.",
            "3. Log in from this machine:",
            f"   sfoauth login jwt --client-id {client} --username {user} "
            f"--key-file {key_path} --login-url {host}",
            "4. Settings for your code (environment):",
            f"   SFOAUTH_CLIENT_ID={client}",
            f"   SFOAUTH_USERNAME={user}",
            f"   SFOAUTH_PRIVATE_KEY_FILE={key_path}",
            f"   SFOAUTH_LOGIN_URL={host}",
            "   or ConnectedApp(client_id=..., private_key=<the key file's text>, "
            "username=..., login_url=...) and SalesforceOAuth(app).jwt_bearer().",
            f"5. Put a reminder before {expires}: upload a new certificate before the "
            "old one expires.",
            "",
            "The JWT audience is https://login.salesforce.com (production) or "
            "https://test.salesforce.com (sandbox); an External Client App may want "
            "your My Domain URL instead (`invalid_grant: audience is invalid`).",
        ]
    )
