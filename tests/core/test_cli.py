from __future__ import annotations

import pytest

from sfoauth_core import cli


def test_advise_server_to_server_with_key(capsys):
    assert cli.main(["advise", "--server-to-server", "--no-user"]) == 0
    out = capsys.readouterr().out
    assert "JWT Bearer" in out


def test_advise_public_client(capsys):
    assert cli.main(["advise", "--can-keep-secret", "no"]) == 0
    assert "PKCE" in capsys.readouterr().out


def test_advise_device(capsys):
    assert cli.main(["advise", "--device", "input_constrained"]) == 0
    assert "Device" in capsys.readouterr().out


def test_advise_server_to_server_without_key(capsys):
    assert (
        cli.main(
            ["advise", "--no-user", "--no-private-key", "--can-keep-secret", "yes"]
        )
        == 0
    )
    assert "Client Credentials" in capsys.readouterr().out


@pytest.mark.parametrize("value", ["maybe", "2"])
def test_advise_rejects_bad_tri_state(value):
    with pytest.raises(SystemExit):
        cli.main(["advise", "--can-keep-secret", value])


def test_tri_state_values():
    from sfoauth_core.cli.advise import _tri_state

    assert _tri_state("yes") is True
    assert _tri_state("No") is False
    assert _tri_state("unknown") is None


def test_emulator_command_runs_the_server(monkeypatch):
    calls = []
    import sfoauth_core.testing as testing

    monkeypatch.setattr(testing, "run", lambda **kw: calls.append(kw))
    assert cli.main(["emulator", "--port", "9123"]) == 0
    assert calls == [
        {
            "host": "127.0.0.1",
            "port": 9123,
            "config_file": None,
            "tls": False,
            "tls_port": 8443,
            "tls_dir": None,
            "jwt_certificate": None,
        }
    ]


def test_emulator_command_passes_tls_and_certificate_options(monkeypatch):
    calls = []
    import sfoauth_core.testing as testing

    monkeypatch.setattr(testing, "run", lambda **kw: calls.append(kw))
    argv = ["--tls", "--tls-port", "9444", "--tls-dir", "ca", "--jwt-certificate", "c"]
    assert cli.main(["emulator", *argv]) == 0
    assert calls[0]["tls"] is True and calls[0]["tls_port"] == 9444
    assert calls[0]["tls_dir"] == "ca" and calls[0]["jwt_certificate"] == "c"


def test_python_m_testing_takes_the_same_options(monkeypatch):
    calls = []
    import sfoauth_core.testing as testing
    from sfoauth_core.testing.__main__ import main as module_main

    monkeypatch.setattr(testing, "run", lambda **kw: calls.append(kw))
    assert module_main(["--port", "9124", "--tls"]) == 0
    assert calls[0]["port"] == 9124 and calls[0]["tls"] is True


def test_emulator_command_reports_a_bad_certificate(tmp_path, capsys):
    bad = tmp_path / "server.crt"
    bad.write_text("not a certificate")
    argv = ["emulator", "--port", "0", "--jwt-certificate", str(bad)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("sfoauth emulator: ")
    assert "expected an X.509 certificate PEM" in err
    missing = ["emulator", "--port", "0", "--jwt-certificate", str(tmp_path / "no")]
    assert cli.main(missing) == 2
    assert "No such file" in capsys.readouterr().err


def test_emulator_command_without_the_extra(monkeypatch, capsys):
    import builtins

    real_import = builtins.__import__

    def blocked(name, *args, **kwargs):
        if name == "testing" or name.endswith(".testing"):
            raise ImportError("no starlette")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", blocked)
    assert cli.main(["emulator"]) == 2
    err = capsys.readouterr().err
    # sfoauth is not on PyPI: the hint is the install that works from a checkout.
    assert 'pip install -e ".[emulator]"' in err
    assert "checkout" in err and "sfoauth[emulator]'" not in err


def test_emulator_refuses_non_loopback_hosts(capsys):
    assert cli.main(["emulator", "--host", "0.0.0.0"]) == 2
    assert "loopback" in capsys.readouterr().err


def test_login_and_token_are_wired(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["login", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for command in ("web", "jwt", "device", "client-credentials", "password"):
        assert command in out
    with pytest.raises(SystemExit):
        cli.main(["token", "--help"])
    out = capsys.readouterr().out
    assert "introspect" in out and "revoke" in out and "userinfo" in out


def test_interactive_advise_is_wired(monkeypatch, capsys):
    import io

    # An empty answer takes each question's default.
    monkeypatch.setattr("sys.stdin", io.StringIO("\n" * 14))
    assert cli.main(["advise", "-i"]) == 0
    assert "Recommended" in capsys.readouterr().out


def test_emulator_command_names_a_port_in_use(capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        assert cli.main(["emulator", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "pick another port" in err


def test_emulator_command_names_a_broken_config_file(tmp_path, capsys):
    config = tmp_path / "emulator.json"
    config.write_text("{not json")
    assert cli.main(["emulator", "--port", "0", "--config", str(config)]) == 2
    assert f"{config}: not valid JSON" in capsys.readouterr().err
    config.write_text('{"apps": [{"name": "web", "no_such_field": 1}]}')
    assert cli.main(["emulator", "--port", "0", "--config", str(config)]) == 2
    assert "EmulatedApp has no field 'no_such_field'" in capsys.readouterr().err


def test_one_module_per_command_group_and_python_m():
    import subprocess
    import sys

    from sfoauth_core.cli import advise, demo, emulator, login, token

    assert {
        m.__name__.rsplit(".", 1)[1] for m in (advise, demo, emulator, login, token)
    }
    result = subprocess.run(
        [sys.executable, "-m", "sfoauth_core.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    for command in ("emulator", "advise", "login", "token", "demo"):
        assert command in result.stdout


def test_the_demo_launcher_is_not_in_the_core():
    from pathlib import Path

    import sfoauth_core

    core = Path(sfoauth_core.__file__).parent
    assert not list(core.rglob("*demo*.py")) or [
        p.relative_to(core).as_posix() for p in core.rglob("*demo*.py")
    ] == ["cli/demo.py"]
    source = (core / "cli" / "demo.py").read_text(encoding="utf-8")
    assert "SalesforceEmulator" not in source and "uvicorn" not in source


def test_demo_from_an_installed_wheel_points_to_the_repository(monkeypatch, capsys):
    from sfoauth_core.cli import demo

    monkeypatch.delitem(__import__("sys").modules, demo.LAUNCHER_MODULE, raising=False)
    monkeypatch.setattr(demo, "launcher_path", lambda: None)
    assert cli.main(["demo", "django", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "not in the installed package" in err
    assert "./scripts/demo django" in err


def test_demo_from_the_wheel_layout_without_patching(tmp_path):
    # The wheel's packages (pyproject: sfoauth_core, sfoauth_emulator...) in a
    # site-packages of their own, without the repository around them.
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    site = tmp_path / "site-packages"
    for package in ("sfoauth_core", "sfoauth_emulator"):
        shutil.copytree(
            root / package, site / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    result = subprocess.run(
        [sys.executable, "-m", "sfoauth_core.cli", "demo", "fastapi"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "./scripts/demo fastapi" in result.stderr
    assert "Traceback" not in result.stderr


def test_advise_external_client_app_has_no_password_flow(capsys):
    assert cli.main(["advise", "--development-only", "--no-user"]) == 0
    assert "[username_password]" in capsys.readouterr().out
    assert (
        cli.main(["advise", "--development-only", "--no-user", "--external-client-app"])
        == 0
    )
    out = " ".join(capsys.readouterr().out.split())
    assert "Recommended: JWT Bearer flow [jwt_bearer]" in out
    assert "[username_password]" not in out
    assert "External Client App: there is no username-" in out
