"""The wheel on its own: built, installed into a fresh virtual environment and run from an
empty folder, with no editable install and no checkout on the path.

The wheel is built from a copy of the source tree, so that nothing a previous build left in
the checkout (``build/``, ``*.egg-info``) can stand in for a file the packaging forgot. The
fresh environment gets the wheel alone (``--no-deps``); the third-party packages it needs
come from this test run's environment through a ``.pth`` line, added after the install. A
``.pth`` line adds a folder to ``sys.path`` without running the ``.pth`` files inside it, so
the editable install of this checkout stays out: only the wheel's ``cases`` can be imported.
To show that the e-mails come from the templates packaged in the wheel, a marker is written
into the installed copy of the outreach template and looked for in what was sent.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
T0 = "2026-11-02T09:00:00Z"
# what development and earlier builds leave in a checkout; none of it belongs in a wheel
LEFT_BY_BUILDS = (
    ".git",
    ".venv",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
    ".caseward",
)


@dataclass
class Installed:
    """A virtual environment with the wheel installed, and an empty folder to run in."""

    venv: Path
    cwd: Path
    site_packages: Path
    marker: str

    def env(self) -> dict[str, str]:
        keep = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("CASEWARD_", "PYTHON", "PREFECT_"))
            and k not in {"VIRTUAL_ENV", "SENDGRID_API_KEY"}
        }
        return keep | {
            "PATH": f"{self.venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
            "CASEWARD_SIMULATION": "true",  # simulated times; placeholder links and sender
        }

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            args, cwd=self.cwd, env=self.env(), capture_output=True, text=True, timeout=180
        )
        assert done.returncode == 0, f"{' '.join(args)}\n{done.stdout}\n{done.stderr}"
        return done

    def caseward(self, *args: str) -> Any:
        """Run the installed ``caseward`` command with ``--json``; its parsed output."""
        return json.loads(self.run(str(self.venv / "bin" / "caseward"), *args, "--json").stdout)


def _call(*args: str | Path, cwd: Path) -> None:
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    work = tmp_path_factory.mktemp("wheel")
    source, dist, venv, cwd = work / "source", work / "dist", work / "venv", work / "run"
    cwd.mkdir()
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*LEFT_BY_BUILDS))
    _call(sys.executable, "-m", "pip", "wheel", source, "--no-deps", "-q", "-w", dist, cwd=work)
    (wheel,) = dist.glob("caseward-*.whl")
    _call(sys.executable, "-m", "venv", "--without-pip", venv, cwd=work)
    python = venv / "bin" / "python"
    _call(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
          "-q", wheel, cwd=work)  # fmt: skip
    site = Path(
        subprocess.check_output(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            text=True,
        ).strip()
    )
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "zz_dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    marker = f"packaged-template-{uuid.uuid4().hex[:12]}"
    outreach = site / "cases" / "email" / "templates" / "outreach.txt.j2"
    text = outreach.read_text(encoding="utf-8")
    outreach.write_text(text.replace("{% block body %}\n", f"{{% block body %}}\n{marker}\n", 1))
    return Installed(venv=venv, cwd=cwd, site_packages=site, marker=marker)


def test_the_installed_packages_come_from_the_wheel_not_the_checkout(installed: Installed) -> None:
    probe = (
        "import json, sys, importlib.resources as r, cases, caseward, flows; "
        "import cases.enforcement, cases.core; "
        "print(json.dumps({'path': sys.path, 'files': [m.__file__ for m in (cases, caseward, "
        "flows)], 'templates': str(r.files('cases.email.templates')), "
        "'catalog': str(r.files('cases.enforcement') / 'catalog.toml'), "
        "'statements': str(r.files('cases.statements') / 'catalog.toml'), "
        "'migrations': str(r.files('cases.core') / 'migrations')}))"
    )
    found = json.loads(installed.run(str(installed.venv / "bin" / "python"), "-c", probe).stdout)
    assert not [p for p in found["path"] if p and Path(p).resolve() == ROOT]
    for where in [*found["files"], found["templates"], found["catalog"], found["migrations"]]:
        assert Path(where).is_relative_to(installed.site_packages), where
    assert Path(found["catalog"]).is_file() and Path(found["statements"]).is_file()
    assert (Path(found["migrations"]) / "versions").is_dir()


def test_a_case_runs_from_an_empty_folder_on_the_installed_wheel(installed: Installed) -> None:
    installed.run(str(installed.venv / "bin" / "caseward"), "init")
    truth = installed.caseward("demo-data", "snapshot", "--apps", "100")
    assert truth["violations"]
    findings = installed.caseward("--now", T0, "detect", "--data", "snapshot")
    case_id = findings[0]["case_id"]
    confirmed = installed.caseward(
        "--now", T0, "--actor", "lead-ann", "cases", "confirm", str(case_id), "--reason", "seen"
    )
    assert confirmed["status"] == "confirmed"
    steps = installed.caseward("--now", T0, "advance", "--no-deliver")
    assert case_id in steps["send-outreach"]["done"]
    sent = installed.caseward("--now", T0, "outbox", "send")
    assert sent["sent"] >= 1 and not sent["failed"]

    mails = sorted((installed.cwd / ".caseward" / "mail").glob(f"case-{case_id}-*-outreach.eml"))
    assert mails, "the outreach was not written to the default mail folder"
    message = email.message_from_bytes(mails[0].read_bytes(), policy=email.policy.default)
    body = message.get_body(("plain",))
    assert body is not None and installed.marker in body.get_content()
    assert message["Subject"].startswith(f"[CW-{case_id}] ")

    installed.run(str(installed.venv / "bin" / "caseward"), "statements", "export")
    preview = installed.caseward(
        "--now", T0, "email", "preview", "outreach", "--case", str(case_id)
    )
    assert installed.marker in preview["text"]
    assert "<html" in preview["html"].lower()


def test_serve_finds_its_deployments_in_the_installed_wheel(installed: Installed) -> None:
    probe = (
        "import json; from flows.deployments import PREFECT_YAML, runner_deployments; "
        "print(json.dumps({'file': str(PREFECT_YAML), "
        "'entrypoints': {d.name: d.entrypoint for d in runner_deployments()}}))"
    )
    found = json.loads(installed.run(str(installed.venv / "bin" / "python"), "-c", probe).stdout)
    assert Path(found["file"]).is_relative_to(installed.site_packages)
    assert set(found["entrypoints"]) >= {"advance-cases", "deliver-email", "approve-enforcement"}
    for entrypoint in found["entrypoints"].values():
        assert Path(entrypoint.partition(":")[0]).is_relative_to(installed.site_packages)
    installed.run(str(installed.venv / "bin" / "caseward"), "serve", "--help")
