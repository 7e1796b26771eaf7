"""The pre-flight memory estimate of full fine-tuning: weights, gradients and optimizer state.

Counted from the model's safetensors headers (no weights loaded) before the job starts; a model whose
training state will not fit the machine is refused with the numbers. Activations come on top and depend
on the batch; the estimate leaves them out and says so.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

_DTYPE_BYTES = {"F64": 8, "F32": 4, "BF16": 2, "F16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
                "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}


class InsufficientMemoryError(MemoryError):
    """The job's training state will not fit this machine; the message gives the numbers."""


def count_parameters(model_dir: str | Path) -> int:
    """Parameters stored in a model folder's safetensors files (tied weights once), read from the headers."""
    files = sorted(Path(model_dir).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"No .safetensors files in {model_dir}")
    total = 0
    for f in files:
        with open(f, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(n))
        for name, meta in header.items():
            if name == "__metadata__":
                continue
            count = 1
            for d in meta["shape"]:
                count *= d
            total += count
    return total


@dataclass
class FullTuningMemory:
    parameters: int
    weights: int       # bytes
    gradients: int
    optimizer: int     # AdamW's two moments, plus fp32 master weights for half-precision weights
    available: int | None
    device: str
    dtype: str

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer

    @property
    def fits(self) -> bool:
        return self.available is None or self.total <= self.available

    def to_json(self) -> dict:
        return {"parameters": self.parameters, "weights_bytes": self.weights, "gradients_bytes": self.gradients,
                "optimizer_bytes": self.optimizer, "total_bytes": self.total, "available_bytes": self.available,
                "device": self.device, "dtype": self.dtype}

    def describe(self) -> str:
        gb = lambda b: f"{b / 1e9:.2f} GB"  # noqa: E731
        master = " (fp32 master weights + AdamW's two moments)" if self.dtype != "float32" else \
            " (AdamW's two moments)"
        avail = f"; {self.device} has {gb(self.available)} available" if self.available is not None else ""
        return (f"full fine-tuning of {self.parameters / 1e6:,.0f}M parameters in {self.dtype} needs about "
                f"{gb(self.total)}: weights {gb(self.weights)}, gradients {gb(self.gradients)}, optimizer "
                f"state {gb(self.optimizer)}{master}, activations on top{avail}")


def available_memory(device: str) -> int | None:
    """Free memory of the device the job trains on (bytes), or None when it cannot be read."""
    try:
        if device == "cuda":
            import torch

            free, _ = torch.cuda.mem_get_info()
            return int(free)
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # noqa: BLE001 - no estimate rather than a refused job
        return None


def full_tuning_memory(model_dir: str | Path, half_precision: bool, device: str) -> FullTuningMemory:
    n = count_parameters(model_dir)
    width = 2 if half_precision else 4
    optimizer = n * 8 + (n * 4 if half_precision else 0)
    return FullTuningMemory(n, n * width, n * width, optimizer, available_memory(device), device,
                            "bfloat16" if half_precision else "float32")


def check_full_tuning_fits(model_dir: str | Path, params) -> FullTuningMemory:
    """The estimate for a full fine-tuning job; raises InsufficientMemoryError when it will not fit."""
    import torch

    cuda = torch.cuda.is_available()
    if params.precision == "auto":
        if cuda:
            half = True
        else:
            from ..models.hardware import cpu_has_fast_bf16

            half = cpu_has_fast_bf16()
    else:
        half = params.precision != "fp32"
    est = full_tuning_memory(model_dir, half, "cuda" if cuda else "cpu")
    if not est.fits:
        raise InsufficientMemoryError(
            f"method='full' refused: {est.describe()}. Use method='lora' (adapters: a fraction of this), a "
            "smaller model, or a machine with more memory.")
    return est


# -- adapters on a (possibly quantized) base: LoRA and QLoRA --
# NF4 packs two weights a byte; double quantization keeps one 8-bit absmax per 64 weights and one fp32
# constant per 256 of those (the QLoRA paper's 0.127 bits a weight). LLM.int8() keeps one byte a weight
# and an fp32 scale per row (left out: under 0.1 %).
_QUANT_BYTES = {"4bit": 0.5 + 8 / 64 / 8 + 32 / (64 * 256) / 8, "8bit": 1.0}


def tensor_shapes(model_dir: str | Path) -> dict[str, list[int]]:
    """Every stored tensor's shape, from the safetensors headers (no weights loaded)."""
    files = sorted(Path(model_dir).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"No .safetensors files in {model_dir}")
    shapes = {}
    for f in files:
        with open(f, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(n))
        shapes.update({k: v["shape"] for k, v in header.items() if k != "__metadata__"})
    return shapes


@dataclass
class AdapterTuningMemory:
    parameters: int
    quantized_parameters: int   # the linear layers' weights bitsandbytes quantizes
    weights: int                # bytes: the base as it sits in memory
    adapter_state: int          # bytes: LoRA weights, gradients and AdamW's moments (fp32)
    available: int | None
    device: str
    dtype: str
    quantization: str | None

    @property
    def total(self) -> int:
        return self.weights + self.adapter_state

    @property
    def fits(self) -> bool:
        return self.available is None or self.total <= self.available

    def to_json(self) -> dict:
        return {"parameters": self.parameters, "quantized_parameters": self.quantized_parameters,
                "quantization": self.quantization, "weights_bytes": self.weights,
                "adapter_state_bytes": self.adapter_state, "total_bytes": self.total,
                "available_bytes": self.available, "device": self.device, "dtype": self.dtype}

    def describe(self) -> str:
        gb = lambda b: f"{b / 1e9:.2f} GB"  # noqa: E731
        base = (f"{self.quantized_parameters / 1e6:,.0f}M weights in {self.quantization}, the other "
                f"{(self.parameters - self.quantized_parameters) / 1e6:,.0f}M in fp32" if self.quantization
                else f"{self.parameters / 1e6:,.0f}M weights in {self.dtype}")
        avail = f"; {self.device} has {gb(self.available)} available" if self.available is not None else ""
        return (f"the base ({base}) takes about {gb(self.weights)} and the adapters' training state "
                f"{gb(self.adapter_state)}, activations on top{avail}")


def adapter_tuning_memory(model_dir: str | Path, quantization: str | None, rank: int, half_precision: bool,
                          device: str) -> AdapterTuningMemory:
    """Base weights (4-bit/8-bit linear layers counted as bitsandbytes stores them) plus the state of rank-r
    adapters on every linear layer. Quantized: the layers left unquantized (embeddings, norms, an untied
    output layer) are counted in fp32, as peft's prepare_model_for_kbit_training casts them."""
    shapes = tensor_shapes(model_dir)
    try:
        vocab = int(json.loads((Path(model_dir) / "config.json").read_text()).get("vocab_size") or 0)
    except (OSError, ValueError):
        vocab = 0
    total = linear = adapter = 0
    for name, shape in shapes.items():
        count = 1
        for d in shape:
            count *= d
        total += count
        # a linear layer's weight: 2-D and not an embedding (vocab rows); these get quantized and adapters
        if len(shape) == 2 and name.endswith(".weight") and shape[0] != vocab:
            linear += count
            adapter += rank * (shape[0] + shape[1])
    if quantization:
        weights = int(linear * _QUANT_BYTES[quantization]) + (total - linear) * 4
    else:
        weights = total * (2 if half_precision else 4)
    return AdapterTuningMemory(total, linear if quantization else 0, weights, adapter * 16,
                               available_memory(device), device, "bfloat16" if half_precision else "float32",
                               quantization)


def check_adapter_tuning_fits(model_dir: str | Path, params) -> AdapterTuningMemory | None:
    """The estimate for a LoRA/QLoRA job (None for a model without safetensors files); raises
    InsufficientMemoryError when the base will not fit."""
    import torch

    if not any(Path(model_dir).glob("*.safetensors")):
        return None

    cuda = torch.cuda.is_available()
    if params.precision == "auto":
        from ..models.hardware import cpu_has_fast_bf16

        half = cuda or cpu_has_fast_bf16()
    else:
        half = params.precision != "fp32"
    est = adapter_tuning_memory(model_dir, params.effective_quantization, params.adapter_size, half,
                                "cuda" if cuda else "cpu")
    if not est.fits:
        raise InsufficientMemoryError(
            f"method={params.effective_method!r} refused: {est.describe()}. Use a smaller model or a machine "
            "with more memory.")
    return est
