"""The emulator over HTTPS (issue 14 item 6): a local CA made once and reused, a server
certificate for the loopback addresses and the Salesforce host names, trusted by httpx
(``verify=``), Python's ``ssl`` in strict mode and Node (``NODE_EXTRA_CA_CERTS``)."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import ssl
import stat
import subprocess
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from sfoauth_core import SalesforceOAuth
from sfoauth_core.testing import EmulatorTLS, SalesforceEmulator
from sfoauth_emulator.tls import DEFAULT_TLS_NAMES, default_tls_dir

pytestmark = pytest.mark.loopback


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> EmulatorTLS:
    return EmulatorTLS.create(tmp_path_factory.mktemp("tls"))


def san_of(path: Path) -> x509.SubjectAlternativeName:
    certificate = x509.load_pem_x509_certificate(path.read_bytes())
    return certificate.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value


def test_a_served_emulator_answers_https_with_a_trusted_certificate(
    tls: EmulatorTLS,
) -> None:
    emu = SalesforceEmulator()
    with emu.serve(tls=tls) as base_url:
        assert base_url.startswith("https://127.0.0.1:")
        port = base_url.rsplit(":", 1)[1]
        context = tls.ssl_context()
        context.verify_flags |= ssl.VERIFY_X509_STRICT  # Python 3.13's default
        with httpx.Client(verify=context) as http:
            for origin in (base_url, f"https://localhost:{port}"):
                discovery = http.get(origin + "/.well-known/openid-configuration")
                assert discovery.status_code == 200
                assert discovery.json()["issuer"] == origin
        # sfoauth itself, as a user's app would use it (instance_url is https).
        with httpx.Client(verify=context) as http:
            oauth = SalesforceOAuth(emu.connected_app("cc"), http_client=http)
            token = oauth.client_credentials()
        assert token.instance_url == base_url
        api = httpx.get(
            f"{token.instance_url}/services/data/v64.0/limits",
            headers={"Authorization": f"Bearer {token.access_token}"},
            verify=context,
        )
        assert api.status_code == 200


def test_an_untrusting_client_is_refused(tls: EmulatorTLS) -> None:
    emu = SalesforceEmulator()
    with emu.serve(tls=tls) as base_url:
        with httpx.Client(verify=ssl.create_default_context()) as http:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                http.get(base_url + "/id/keys")


def test_the_certificate_names_loopback_and_salesforce_hosts(tls: EmulatorTLS) -> None:
    san = san_of(tls.cert_file)
    dns = san.get_values_for_type(x509.DNSName)
    ips = san.get_values_for_type(x509.IPAddress)
    for name in ("localhost", "login.salesforce.com", "test.salesforce.com"):
        assert name in dns
    assert "*.my.salesforce.com" in dns and "*.sandbox.my.salesforce.com" in dns
    assert ipaddress.ip_address("127.0.0.1") in ips
    assert ipaddress.ip_address("::1") in ips
    assert set(DEFAULT_TLS_NAMES) - {"127.0.0.1", "::1"} <= set(dns)


def test_the_ca_is_kept_and_the_server_certificate_follows_the_names(
    tmp_path: Path,
) -> None:
    first = EmulatorTLS.create(tmp_path)
    ca = first.ca_file.read_bytes()
    server = first.cert_file.read_bytes()
    assert stat.S_IMODE(os.stat(tmp_path / "ca-key.pem").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(first.key_file).st_mode) == 0o600

    again = EmulatorTLS.create(tmp_path)
    assert again.ca_file.read_bytes() == ca  # trusted once, reused
    assert again.cert_file.read_bytes() == server

    more = EmulatorTLS.create(tmp_path, names=["beta.my.salesforce.com"])
    assert more.ca_file.read_bytes() == ca
    assert more.cert_file.read_bytes() != server
    assert "beta.my.salesforce.com" in san_of(more.cert_file).get_values_for_type(
        x509.DNSName
    )

    (tmp_path / "ca-key.pem").write_text("damaged")
    fresh = EmulatorTLS.create(tmp_path)
    assert fresh.ca_file.read_bytes() != ca  # a new CA signs a new server certificate
    certificate = x509.load_pem_x509_certificate(fresh.cert_file.read_bytes())
    certificate.verify_directly_issued_by(
        x509.load_pem_x509_certificate(fresh.ca_file.read_bytes())
    )


def test_the_default_directory_follows_xdg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", "/somewhere")
    assert default_tls_dir() == Path("/somewhere/sfoauth/emulator-tls")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_tls_dir() == Path.home() / ".cache/sfoauth/emulator-tls"


NODE_CLIENT = """
const https = require("https");
https.get(process.argv[1] + "/.well-known/openid-configuration", (res) => {
  let body = "";
  res.on("data", (chunk) => (body += chunk));
  res.on("end", () => { console.log(JSON.stringify({status: res.statusCode, body})); });
}).on("error", (err) => { console.log(JSON.stringify({error: err.code})); });
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_node_trusts_it_through_node_extra_ca_certs(tls: EmulatorTLS) -> None:
    node = shutil.which("node")
    assert node is not None
    emu = SalesforceEmulator()
    with emu.serve(tls=tls) as base_url:
        results = {}
        for label, extra in (
            ("trusted", {"NODE_EXTRA_CA_CERTS": str(tls.ca_file)}),
            ("bare", {}),
        ):
            env = {k: v for k, v in os.environ.items() if k != "NODE_EXTRA_CA_CERTS"}
            run = subprocess.run(
                [node, "-e", NODE_CLIENT, base_url],
                env={**env, **extra},
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )
            results[label] = json.loads(run.stdout.strip().splitlines()[-1])
    assert results["trusted"]["status"] == 200
    assert json.loads(results["trusted"]["body"])["issuer"] == base_url
    assert results["bare"]["error"] in (
        "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
        "SELF_SIGNED_CERT_IN_CHAIN",
        "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
    )
