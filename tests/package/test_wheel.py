"""The wheel as users get it (issue 37): `python -m build` makes the sdist and the wheel without node (the
panel built by `make install` goes in as it is), the wheel installs into a fresh virtual environment, and
from there JupyterLab lists the panel enabled and OK, the server lists its extension enabled, and the REST
routes answer. A wheel built from the sdist is the same wheel.

No download at test time: the build runs --no-isolation with the venv's hatchling and hatch-jupyter-builder
(the test extra), `pip install --no-deps --no-index` puts the wheel in the fresh venv, and a .pth file lends
it this venv's installed dependencies (torch, jupyter_server, jupyterlab...). The fresh venv's own
site-packages comes first, so `import jupyter_tune` there is the wheel's copy, never the editable one.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import sysconfig
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
VERSION = "0.1.0"
WHEEL = f"jupyter_tune-{VERSION}-py3-none-any.whl"
SDIST = f"jupyter_tune-{VERSION}.tar.gz"
DATA = f"jupyter_tune-{VERSION}.data/data"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# The console scripts a user's `pip install jupyter_tune jupyterlab` puts in the venv's bin/.
SCRIPTS = ("jupyter", "jupyter-labextension", "jupyter-server", "jupyter-lab")

if not (ROOT / "jupyter_tune" / "labextension" / "static" / "style.js").is_file():
    pytest.skip("the panel is not built (jupyter_tune/labextension): run make install", allow_module_level=True)


def _no_node_bin(tmp: Path) -> Path:
    """A bin folder whose `npm` and `node` record that they were called and fail: the only ones on PATH."""
    bin_dir = tmp / "no-node-bin"
    bin_dir.mkdir()
    for name in ("npm", "node", "npx", "yarn", "jlpm"):
        p = bin_dir / name
        p.write_text(f"#!/bin/sh\necho {name} \"$@\" >> '{tmp / 'node-was-called'}'\nexit 1\n")
        p.chmod(0o755)
    return bin_dir


def _clean_env(tmp: Path, path: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JUPYTER", "PYTHON", "VIRTUAL_ENV", "PIP_")) and k not in (
               "HATCH_JUPYTER_BUILDER_SKIP_NPM", "SKIP_JUPYTER_BUILDER", "SOURCE_DATE_EPOCH")}
    # Jupyter's per-user folders in the test's own tmp: nothing from ~/.jupyter or ~/.local/share/jupyter.
    for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                     ("JUPYTER_RUNTIME_DIR", "runtime"), ("JUPYTER_TUNE_HOME", "tune-home")):
        (tmp / "user" / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(tmp / "user" / sub)
    env["HOME"] = str(tmp / "user")
    env["PATH"] = path
    env["PIP_NO_INDEX"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["HF_HUB_OFFLINE"] = "1"
    return env


def _run(cmd: list[str], env: dict[str, str], cwd: Path, timeout: float = 300) -> str:
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    out = ANSI.sub("", proc.stdout + proc.stderr)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n{out[-4000:]}"
    return out


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("wheel")


@pytest.fixture(scope="module")
def built(work) -> dict[str, Path]:
    """The sdist and the wheel from the working tree, then a wheel from that sdist; nothing runs node."""
    no_node = _no_node_bin(work)
    env = _clean_env(work, str(no_node))
    out = _run([sys.executable, "-m", "build", "--no-isolation", "--sdist", "--wheel", "--outdir",
                str(work / "dist"), str(ROOT)], env, cwd=work)
    sdist = work / "dist" / SDIST
    out += _run([sys.executable, "-m", "build", "--no-isolation", "--wheel", "--outdir",
                 str(work / "from-sdist"), str(sdist)], env, cwd=work)
    assert not (work / "node-was-called").exists(), (work / "node-was-called").read_text()
    # skip-if-exists ([tool.hatch.build.hooks.jupyter-builder]) skipped the npm build, in all three builds
    assert out.count("Skip-if-exists file(s) found") == 3, out[-4000:]
    return {"wheel": work / "dist" / WHEEL, "sdist": sdist, "wheel_from_sdist": work / "from-sdist" / WHEEL}


@pytest.fixture(scope="module")
def fresh(work, built) -> dict:
    """A fresh venv with the wheel installed (--no-deps, --no-index), then this venv's packages lent to it
    by a .pth file, and the console scripts a user's install would have (jupyter, jupyter-labextension...)."""
    venv = work / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    no_node = work / "no-node-bin"
    env = _clean_env(work, f"{venv / 'bin'}:{no_node}")
    # pip from this venv, installing into the fresh one (which has no pip and, until the .pth, no packages)
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index",
          str(built["wheel"])], env, cwd=work)
    site = Path(subprocess.check_output([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        cwd=venv, text=True).strip())
    # A plain path line, not site.addsitedir: this venv's .pth files (the editable jupyter_tune) stay out.
    (site / "_jupyter_tune_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    code = ("import json, importlib.metadata as m; "
            f"print(json.dumps({{e.name: e.value for e in m.entry_points(group='console_scripts') "
            f"if e.name in {SCRIPTS!r}}}))")
    scripts = json.loads(subprocess.check_output([str(py), "-c", code], cwd=venv, text=True))
    assert set(scripts) == set(SCRIPTS), scripts
    for name, value in scripts.items():
        module, func = value.split(":")
        p = venv / "bin" / name
        p.write_text(f"#!{py}\nimport sys\nfrom {module} import {func}\nsys.exit({func}())\n")
        p.chmod(0o755)
    return {"venv": venv, "python": py, "site": site, "env": env}


# -- the build --

def test_the_wheel_ships_the_panel_and_the_server_config(built):
    names = set(zipfile.ZipFile(built["wheel"]).namelist())
    lab = f"{DATA}/share/jupyter/labextensions/jupyter-tune"
    for must in (f"{lab}/package.json", f"{lab}/install.json", f"{lab}/static/style.js",
                 f"{DATA}/etc/jupyter/jupyter_server_config.d/jupyter_tune.json",
                 "jupyter_tune/__init__.py", "jupyter_tune/server/routes.py"):
        assert must in names, must
    assert any(re.fullmatch(rf"{lab}/static/remoteEntry\.[0-9a-f]+\.js", n) for n in names)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    config = json.loads(zipfile.ZipFile(built["wheel"]).read(
        f"{DATA}/etc/jupyter/jupyter_server_config.d/jupyter_tune.json"))
    assert config["ServerApp"]["jpserver_extensions"] == {"jupyter_tune": True}


def test_the_sdist_ships_the_built_panel_and_no_caches(built):
    with tarfile.open(built["sdist"]) as tar:
        names = [n.split("/", 1)[1] for n in tar.getnames() if "/" in n]
    assert "jupyter_tune/labextension/static/style.js" in names  # a wheel builds from it without node
    assert "labextension/src/index.ts" in names and "pyproject.toml" in names
    for junk in ("node_modules/", "__pycache__/", ".hypothesis/", ".import_linter_cache/", "test-artifacts/",
                 ".venv/"):
        assert not [n for n in names if junk in f"/{n}/"], junk


def test_the_sdist_rebuilds_the_same_wheel(built):
    a, b = zipfile.ZipFile(built["wheel"]), zipfile.ZipFile(built["wheel_from_sdist"])
    assert sorted(a.namelist()) == sorted(b.namelist())
    differ = [n for n in a.namelist() if a.read(n) != b.read(n)]
    assert not differ, differ  # RECORD included: it holds hashes and sizes, no timestamps


# -- the installed wheel --

def test_the_fresh_venv_imports_the_wheels_copy(fresh):
    where = subprocess.check_output([str(fresh["python"]), "-c", "import jupyter_tune; print(jupyter_tune.__file__)"],
                                    env=fresh["env"], cwd=fresh["venv"], text=True).strip()
    assert Path(where).is_relative_to(fresh["site"]), where


def test_labextension_list_shows_the_panel_enabled_and_ok(fresh):
    out = _run([str(fresh["venv"] / "bin" / "jupyter"), "labextension", "list"], fresh["env"], cwd=fresh["venv"])
    line = next((ln for ln in out.splitlines() if ln.strip().startswith("jupyter-tune ")), None)
    assert line is not None, out
    assert re.search(rf"jupyter-tune v{re.escape(VERSION)} enabled\s+OK \(python, jupyter_tune\)", line), line
    # the copy in the fresh venv's prefix, installed by the wheel
    assert str(fresh["venv"] / "share" / "jupyter" / "labextensions") in out, out


def test_server_extension_list_shows_jupyter_tune_enabled(fresh):
    out = _run([str(fresh["venv"] / "bin" / "jupyter"), "server", "extension", "list"], fresh["env"],
               cwd=fresh["venv"])
    assert re.search(r"^\s*jupyter_tune enabled\s*$", out, re.M), out
    assert re.search(rf"jupyter_tune {re.escape(VERSION)} OK", out), out
    assert str(fresh["venv"] / "etc" / "jupyter") in out, out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, token: str) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, r.read()


def test_the_rest_routes_answer_from_jupyter_server(fresh, work):
    token = "wheel-test-token"
    port = _free_port()
    root = work / "server-root"
    root.mkdir(exist_ok=True)
    log_path = work / "server.log"
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(fresh["venv"] / "bin" / "jupyter"), "server", "--no-browser", "--allow-root",
             "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
             f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}"],
            cwd=root, env=fresh["env"], stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    status, body = _get(f"{url}/jupyter-tune/schema", token)
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        pytest.fail(f"jupyter server did not answer:\n{log_path.read_text()[-4000:]}")
                    time.sleep(0.3)
            assert status == 200
            assert "parameters" in json.loads(body)
            status, body = _get(f"{url}/jupyter-tune/jobs", token)
            assert status == 200
            json.loads(body)
            # the same authentication as the server's own API: no token, no answer
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(f"{url}/jupyter-tune/jobs", timeout=10)
            assert refused.value.code == 403
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    log_text = log_path.read_text()
    assert "jupyter_tune server extension loaded" in log_text, log_text[-4000:]
