"""Fixed values of the emulated Salesforce: default org, users, apps and wire constants.

The identifiers follow Salesforce's shapes (reference sections 2 and 9): 18-character
ids with the real case-checksum suffix, consumer keys that start with ``3MVG9``, access
tokens ``<15-char org id>!<opaque>`` and refresh tokens starting ``5Aep``.
"""

from __future__ import annotations

from pathlib import Path

from ._ids import to_18

__all__ = [
    "API_VERSIONS",
    "ASSET_APP_CLIENT_ID",
    "CC_APP_CLIENT_ID",
    "CLAIMS_SUPPORTED",
    "DEFAULT_CALLBACK_URLS",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_ORG_ID",
    "DEFAULT_ORG_NAME",
    "DEFAULT_PASSWORD",
    "DEFAULT_SECURITY_TOKEN",
    "DEFAULT_USERNAME",
    "DEFAULT_USER_ID",
    "DEVICE_APP_CLIENT_ID",
    "INACTIVE_USERNAME",
    "INTEGRATION_USERNAME",
    "INTEGRATION_USER_ID",
    "JWT_APP_CERTIFICATE_FILE",
    "JWT_APP_CERTIFICATE_PEM",
    "JWT_APP_CLIENT_ID",
    "JWT_APP_PRIVATE_KEY_FILE",
    "JWT_APP_PRIVATE_KEY_PEM",
    "LOGIN_HOST",
    "MAX_API_VERSION",
    "MIN_API_VERSION",
    "OLDEST_API_VERSION",
    "PUBLIC_APP_CLIENT_ID",
    "SANDBOX_LOGIN_HOST",
    "SCOPES_SUPPORTED",
    "WEB_APP_CLIENT_ID",
    "api_version_range",
    "release_label",
]

LOGIN_HOST = "login.salesforce.com"
SANDBOX_LOGIN_HOST = "test.salesforce.com"

DEFAULT_ORG_NAME = "acme"
DEFAULT_ORG_ID = to_18("00DXX0000001abc")
DEFAULT_SITE_ID = to_18("0DBXX0000000001")

DEFAULT_USERNAME = "jane@acme.com"
DEFAULT_PASSWORD = "Secr3t-Passw0rd"
DEFAULT_SECURITY_TOKEN = "SECTOKEN1234567890ABCDEFG"
DEFAULT_USER_ID = to_18("005XX000001xyzQ")

INTEGRATION_USERNAME = "integration@acme.com"
INTEGRATION_PASSWORD = "Integr4tion-Passw0rd"
INTEGRATION_USER_ID = to_18("005XX0000012run")

INACTIVE_USERNAME = "inactive@acme.com"
INACTIVE_PASSWORD = "Inact1ve-Passw0rd"
INACTIVE_USER_ID = to_18("005XX0000013old")

WEB_APP_CLIENT_ID = "3MVG9Example.WebServerApp"
PUBLIC_APP_CLIENT_ID = "3MVG9Example.PublicPkceApp"
JWT_APP_CLIENT_ID = "3MVG9Example.JwtBearerApp"
CC_APP_CLIENT_ID = "3MVG9Example.ClientCredentialsApp"
DEVICE_APP_CLIENT_ID = "3MVG9Example.DeviceFlowApp"
ASSET_APP_CLIENT_ID = "3MVG9Example.AssetTokenApp"
DEFAULT_CLIENT_SECRET = "1F2E3D4C5B6A7980A1B2C3D4E5F60718"

# The ``jwt`` app's key pair is fixed and published with the package (a test key: never
# register its certificate with a real org), so a JWT bearer client in any process can
# sign for any emulator, served or in-process.
_KEYS_DIR = Path(__file__).resolve().parent / "keys"
JWT_APP_PRIVATE_KEY_FILE = _KEYS_DIR / "jwt-app-key.pem"
"""The ``jwt`` app's RSA private key (unencrypted PKCS#8 PEM)."""
JWT_APP_CERTIFICATE_FILE = _KEYS_DIR / "jwt-app-cert.pem"
"""The ``jwt`` app's self-signed X.509 certificate (PEM), as uploaded at Salesforce."""
JWT_APP_PRIVATE_KEY_PEM = JWT_APP_PRIVATE_KEY_FILE.read_text(encoding="ascii")
JWT_APP_CERTIFICATE_PEM = JWT_APP_CERTIFICATE_FILE.read_text(encoding="ascii")

# Matching is exact (reference 13 item 11), so every callback URL the docs, the example
# projects and ``sfoauth login web`` use is registered as written: Django's URL pattern
# ends with a slash, FastAPI's does not, the CLI listens on localhost:1717.
DEFAULT_CALLBACK_URLS = (
    "https://app.example.com/callback",
    "http://localhost:8000/salesforce/callback",
    "http://127.0.0.1:8000/salesforce/callback",
    "http://localhost:8000/salesforce/callback/",
    "http://127.0.0.1:8000/salesforce/callback/",
    "https://app.example.com/salesforce/callback",
    "https://app.example.com/salesforce/callback/",
    "http://localhost:1717/OauthRedirect",
    "http://127.0.0.1:1717/OauthRedirect",
)

# Salesforce ships three releases a year, each with the next API version: 62.0 was
# Winter '25, 63.0 Spring '25, 64.0 Summer '25 (and so back to 31.0, Summer '14, and on).
_RELEASE_SEASONS = ("Winter", "Spring", "Summer")


def release_label(version: str) -> str:
    """The release name of an API version, e.g. ``"68.0"`` → ``"Winter '27"``."""
    step = int(float(version)) - 62
    season = _RELEASE_SEASONS[step % 3]
    return f"{season} '{25 + step // 3:02d}"


# The API versions Salesforce serves (developer.salesforce.com "API End-of-Life Policy",
# December 2026: 31.0 through 68.0 supported; 21.0-30.0 retired in Summer '25, 7.0-20.0 in
# Summer '22, both answering 410 GONE). The range is per org: EmulatedOrg.min_api_version
# and max_api_version.
MIN_API_VERSION = "31.0"
MAX_API_VERSION = "68.0"
OLDEST_API_VERSION = "7.0"


def api_version_range(low: str, high: str) -> tuple[tuple[str, str], ...]:
    """``(label, version)`` pairs from ``low`` to ``high``, oldest first."""
    return tuple(
        (release_label(f"{n}.0"), f"{n}.0")
        for n in range(int(float(low)), int(float(high)) + 1)
    )


# (label, version), oldest first; the last one is "latest".
API_VERSIONS = api_version_range(MIN_API_VERSION, MAX_API_VERSION)

# Reference 1.3: the 36 scopes of the live discovery document.
SCOPES_SUPPORTED: tuple[str, ...] = (
    "api",
    "web",
    "full",
    "id",
    "openid",
    "profile",
    "email",
    "address",
    "phone",
    "refresh_token",
    "offline_access",
    "chatter_api",
    "visualforce",
    "lightning",
    "content",
    "custom_permissions",
    "wave_api",
    "eclair_api",
    "pardot_api",
    "cdp_api",
    "cdp_ingest_api",
    "cdp_query_api",
    "cdp_profile_api",
    "cdp_segment_api",
    "cdp_identityresolution_api",
    "cdp_calculated_insight_api",
    "data_cloud_user_claims",
    "chatbot_api",
    "interaction_api",
    "einstein_gpt_api",
    "sfap_api",
    "scrt_api",
    "mcp_api",
    "user_registration_api",
    "pwdless_login_api",
    "forgot_password",
)

CLAIMS_SUPPORTED: tuple[str, ...] = (
    "active",
    "address",
    "email",
    "email_verified",
    "family_name",
    "given_name",
    "is_app_installed",
    "language",
    "locale",
    "name",
    "nickname",
    "organization_id",
    "phone_number",
    "phone_number_verified",
    "photos",
    "picture",
    "preferred_username",
    "profile",
    "sub",
    "updated_at",
    "urls",
    "user_id",
    "user_type",
    "zoneinfo",
)

TOKEN_PATH = "/services/oauth2/token"
AUTHORIZE_PATH = "/services/oauth2/authorize"
CONTROL_PREFIX = "/__emulator__"

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"

ID_TOKEN_KID = "246"
