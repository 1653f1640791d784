"""``sfoauth emulator`` as a user runs it, in its own process (issue 10 items 1 and 14,
issue 14 items 5 and 6): the banner names every app's client id, fake secret and
callback URLs, the JWT key files and how to use your own certificate; a JWT client in
another process signs with the published key; ``--jwt-certificate`` uploads an X.509
certificate; ``--tls`` adds an HTTPS listener whose CA the banner says how to trust;
Ctrl-C stops it cleanly."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from sfoauth_core.testing import (
    DEFAULT_CALLBACK_URLS,
    DEFAULT_USERNAME,
    JWT_APP_CERTIFICATE_FILE,
    JWT_APP_CLIENT_ID,
    JWT_APP_PRIVATE_KEY_FILE,
    SalesforceEmulator,
    certificate_pem_for,
    new_private_key_pem,
)

pytestmark = pytest.mark.loopback

READY = "Press Ctrl-C to stop."
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


class Emulator:
    """A ``sfoauth emulator`` child process and the banner it printed."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sfoauth_core.cli", "emulator", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()
        self.banner = self._read_banner()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def _read_banner(self, timeout: float = 60.0) -> list[str]:
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no banner within {timeout}s: {seen}") from None
            if line is None:
                raise AssertionError(f"the emulator exited: {seen}")
            seen.append(line)
            if line == READY:
                return seen

    @property
    def text(self) -> str:
        return "\n".join(self.banner)

    def url(self, scheme: str) -> str:
        match = re.search(rf"^\s+({scheme}://127\.0\.0\.1:\d+)\s", self.text, re.M)
        assert match, self.text
        return match.group(1)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=30)
        finally:
            if self.process.poll() is None:  # pragma: no cover - did not stop
                self.process.kill()
                self.process.wait()
            self.thread.join(timeout=10)
            assert self.process.stdout is not None
            self.process.stdout.close()


@pytest.fixture
def default_emulator() -> Iterator[Emulator]:
    emulator = Emulator("--port", "0")
    yield emulator
    assert emulator.stop() == 0


def jwt_token(base_url: str, private_key_pem: str, **client: object) -> httpx.Response:
    claims = {
        "iss": JWT_APP_CLIENT_ID,
        "sub": DEFAULT_USERNAME,
        "aud": base_url,
        "exp": int(time.time()) + 180,
    }
    return httpx.post(
        base_url + "/services/oauth2/token",
        data={
            "grant_type": JWT_GRANT,
            "assertion": jwt.encode(claims, private_key_pem, algorithm="RS256"),
        },
        timeout=10,
        **client,  # type: ignore[arg-type]
    )


def test_banner_names_apps_secrets_callbacks_and_jwt_files(
    default_emulator: Emulator,
) -> None:
    text = default_emulator.text
    for app in SalesforceEmulator().apps.values():
        assert f"client_id={app.client_id}" in text
        assert f"client_secret={app.client_secret}" in text
    for url in DEFAULT_CALLBACK_URLS:
        assert re.search(rf"^\s+{re.escape(url)}$", text, re.M), url
    assert f"private key: {JWT_APP_PRIVATE_KEY_FILE}" in text
    assert f"certificate: {JWT_APP_CERTIFICATE_FILE}" in text
    assert "sfoauth emulator --jwt-certificate server.crt" in text
    assert "/__emulator__/apps/jwt" in text
    assert "TLS" not in text  # no --tls, no CA


def test_another_process_signs_with_the_published_key(
    default_emulator: Emulator,
) -> None:
    base_url = default_emulator.url("http")
    answer = jwt_token(base_url, JWT_APP_PRIVATE_KEY_FILE.read_text())
    assert answer.status_code == 200, answer.text
    assert answer.json()["instance_url"] == base_url


def test_tls_listener_and_an_uploaded_certificate(tmp_path: Path) -> None:
    mine = new_private_key_pem()
    certificate = tmp_path / "server.crt"
    certificate.write_text(certificate_pem_for(mine))
    tls_dir = tmp_path / "tls"
    emulator = Emulator(
        "--port",
        "0",
        "--tls",
        "--tls-port",
        "0",
        "--tls-dir",
        str(tls_dir),
        "--jwt-certificate",
        str(certificate),
    )
    try:
        text = emulator.text
        ca = tls_dir / "ca.pem"
        assert f"TLS: trust the local CA {ca}" in text
        assert f"SSL_CERT_FILE={ca}" in text and f"REQUESTS_CA_BUNDLE={ca}" in text
        assert f"NODE_EXTRA_CA_CERTS={ca}" in text
        assert f'verify=ssl.create_default_context(cafile="{ca}")' in text
        assert "your uploaded certificate" in text
        assert str(JWT_APP_PRIVATE_KEY_FILE) not in text

        https_url = emulator.url("https")
        import ssl

        context = ssl.create_default_context(cafile=str(ca))
        answer = jwt_token(https_url, mine, verify=context)
        assert answer.status_code == 200, answer.text
        assert answer.json()["instance_url"] == https_url
        # The plain listener serves the same org; the published key no longer fits.
        refused = jwt_token(emulator.url("http"), JWT_APP_PRIVATE_KEY_FILE.read_text())
        assert refused.status_code == 400
        assert refused.json()["error"] == "invalid_grant"
    finally:
        assert emulator.stop() == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(https_url + "/id/keys", verify=context, timeout=2)
