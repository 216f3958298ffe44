"""The pre-commit hook works as README.md writes it (issue 25): `pre-commit try-repo` installs
this checkout as pre-commit does for a user (a fresh virtualenv, `pip install .`) and runs the
hook on a repository's model files; the README's snippet names the version pyproject.toml
declares (`rev: v<version>`, the release tag) and its arguments do what the README says.

try-repo pip-installs the checkout, which needs the build backend and every runtime dependency
(so it runs only when asked: `pytest -m install`; .ci/run does). They are installed here already
(the `test` extra holds setuptools>=77): the test packs them, as installed, into a folder of
wheels and points pip at it alone (PIP_NO_INDEX), so it needs no network and installs exactly
the versions under test.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from conftest import FIXTURES, ROOT, run_main

# [project] version = "..." (tomllib is Python 3.11's; the tests run on 3.10 too)
VERSION = re.findall(r'(?m)^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text())[0]
README = (ROOT / "README.md").read_text(encoding="utf-8")
HOOKS = (ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8")
GOOD = FIXTURES / "keras2/embedding_lstm_dense.h5"


def _readme_snippet() -> list[dict]:
    """The .pre-commit-config.yaml entry README.md shows."""
    start = README.index("```yaml\n- repo: ") + len("```yaml\n")
    return yaml.safe_load(README[start : README.index("```", start)])


def test_the_readme_snippet_names_this_version_and_a_hook_that_exists() -> None:
    (repo,) = _readme_snippet()
    assert repo["rev"] == f"v{VERSION}"  # a release is tagged `v` + pyproject's version
    (hook,) = repo["hooks"]
    manifest = yaml.safe_load(HOOKS)
    assert hook["id"] in {entry["id"] for entry in manifest}
    assert "--quiet" in hook["args"]  # what the README says a hook wants
    # The manifest's comment shows the same configuration.
    commented = "\n".join(line.removeprefix("# ").removeprefix("#") for line in HOOKS.splitlines())
    assert f"rev: v{VERSION}" in commented
    assert f"args: [{', '.join(hook['args'])}]" in commented


def test_the_hook_runs_on_every_suffix_a_directory_scan_reads() -> None:
    """pre-commit passes the hook the files its `files` pattern matches: every suffix a scan
    of a folder reads (`discover.MODEL_SUFFIXES`, GGUF included) must be among them."""
    from inspector.cli.discover import MODEL_SUFFIXES

    (hook,) = yaml.safe_load(HOOKS)
    pattern = re.compile(hook["files"])
    missed = sorted(s for s in MODEL_SUFFIXES if not pattern.search(f"models/model{s}"))
    assert not missed, f".pre-commit-hooks.yaml files: misses {missed}"
    assert not pattern.search("models/notes.txt")


def test_the_readme_snippet_s_arguments_pass_silently_and_fail_in_one_line() -> None:
    (repo,) = _readme_snippet()
    args = repo["hooks"][0]["args"]
    passing = run_main([*args, str(GOOD)])
    assert (passing.code, passing.stdout, passing.stderr) == (0, "", "")
    over = [*args[: args.index("--max-params") + 1], "10", *args[args.index("--max-params") + 2 :]]
    failing = run_main([*over, str(GOOD)])
    assert failing.code == 1 and failing.stdout == ""
    (line,) = failing.stderr.splitlines()
    assert line.startswith("rnninspect: gate failed:")


# --- try-repo: the hook installed and run as pre-commit does it ------------------------


def _closure(name: str) -> set[str]:
    """The installed distributions `name` needs at run time (those its markers select here
    are the ones installed)."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if current in seen:
            continue
        try:
            requires = metadata.distribution(current).requires or []
        except metadata.PackageNotFoundError:
            continue  # a requirement whose marker does not hold here
        seen.add(current)
        for requirement in requires:
            if "extra ==" not in requirement:
                todo.append(re.split(r"[\s;<>=!~\[(]", requirement, maxsplit=1)[0])
    return seen


def _wheel_of(name: str, folder: Path) -> None:
    """The installed distribution packed back into a wheel, as its RECORD lists it (bytecode
    and files outside site-packages, such as console scripts pip writes again, left out)."""
    dist = metadata.distribution(name)
    info = Path(str(dist._path))  # type: ignore[attr-defined]
    site = info.parent
    tags = [
        line.split(":", 1)[1].strip()
        for line in (info / "WHEEL").read_text().splitlines()
        if line.startswith("Tag:")
    ]
    interpreters, abis, platforms = (sorted({tag.split("-")[i] for tag in tags}) for i in range(3))
    stem = re.sub(r"[-_.]+", "_", dist.metadata["Name"])
    target = folder / (
        f"{stem}-{dist.version}-{'.'.join(interpreters)}-{'.'.join(abis)}-{'.'.join(platforms)}.whl"
    )
    record = io.StringIO()
    rows = csv.writer(record, lineterminator="\n")
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as wheel:
        for file in dist.files or []:
            path = file.as_posix()
            if path.startswith("..") or "__pycache__" in path or path.endswith(".pyc"):
                continue
            if path.endswith((".dist-info/RECORD", ".dist-info/INSTALLER", ".dist-info/REQUESTED")):
                continue
            if path.endswith(".dist-info/direct_url.json"):
                continue
            data = (site / path).read_bytes()
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            rows.writerow([path, f"sha256={digest.decode()}", len(data)])
            wheel.writestr(path, data)
        rows.writerow([f"{info.name}/RECORD", "", ""])
        wheel.writestr(f"{info.name}/RECORD", record.getvalue())


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(
        ["git", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        timeout=120,
        env={
            **os.environ,
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@t",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@t",
        },
    )


@pytest.mark.install
@pytest.mark.skipif(shutil.which("git") is None, reason="pre-commit needs git")
def test_try_repo_installs_the_hook_and_runs_it(tmp_path: Path) -> None:
    """About 15 s of CPU (pip builds the checkout and unpacks numpy and h5py): behind the
    `install` marker, run by .ci/run after the default suite (`pytest -m install`)."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for name in sorted({*_closure("rnninspect"), "setuptools"} - {"rnninspect"}):
        _wheel_of(name, wheels)
    build = metadata.version("setuptools")
    assert int(build.split(".")[0]) >= 77, f"setuptools {build}: pip install '.[test]' again"
    user = tmp_path / "user"  # the repository that uses the hook
    user.mkdir()
    shutil.copy(GOOD, user / "model.h5")
    (user / "broken.h5").write_bytes(b"not a model, only named like one\n" * 8)
    _git("init", "-q", cwd=user)
    _git("add", ".", cwd=user)
    env = {
        **os.environ,
        "PIP_NO_INDEX": "1",  # the wheels above and nothing else
        "PIP_FIND_LINKS": str(wheels),
        "PIP_NO_COMPILE": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PRE_COMMIT_HOME": str(tmp_path / "cache"),
        "VIRTUALENV_OVERRIDE_APP_DATA": str(tmp_path / "virtualenv"),
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pre_commit",
            "try-repo",
            str(ROOT),
            "rnninspect",
            "--all-files",
            "--verbose",
        ],
        cwd=user,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,  # a hang guard only
    )
    out = done.stdout + done.stderr
    assert done.returncode == 1, out  # broken.h5 fails the commit
    assert "rnninspect (parameter counts and budgets of model files)" in out
    assert "rnninspect: error: broken.h5: not a model file" in out
    assert "model.h5  [keras-h5]" not in out  # --quiet: the passing file says nothing
