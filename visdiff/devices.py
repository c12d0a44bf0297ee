"""Devices and precisions for every model-running stage (scorers, captioners).

:func:`check_device` runs before any model loads, so ``--device tpu`` or ``--device cuda`` on a
machine without a GPU fails at once with the choices, not after minutes of work. torch is
imported when a device is asked about, not with this module: the CLI's options import it,
and ``visdiff --help`` need not wait for torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from visdiff.errors import InputError

if TYPE_CHECKING:
    import torch

DEVICE_TYPES = ("cpu", "cuda", "mps")
# Precision names and the torch dtypes they stand for.
PRECISIONS = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def available_devices() -> list[str]:
    """Device types usable on this machine, best first."""
    import torch

    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.append("mps")
    return found + ["cpu"]


def check_device(device: str | torch.device | None) -> torch.device | None:
    """``device`` parsed and checked to exist here, or ``InputError`` naming the choices."""
    if device is None:
        return None
    import torch

    available = available_devices()
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise InputError(f"unknown device {str(device)!r}; choose one of: {', '.join(available)}") from e
    if parsed.type not in DEVICE_TYPES:
        raise InputError(f"unsupported device {str(device)!r}; choose one of: {', '.join(available)}")
    if parsed.type not in available:
        raise InputError(f"device {str(device)!r} is not available on this machine; choose one of: {', '.join(available)}")
    if parsed.type == "cuda" and parsed.index is not None and parsed.index >= torch.cuda.device_count():
        raise InputError(f"device {str(device)!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return parsed


def auto_device(device: str | torch.device | None = None) -> torch.device:
    """The given device (checked), else CUDA, then Apple MPS, then CPU."""
    import torch

    return check_device(device) or torch.device(available_devices()[0])


def auto_dtype(device: torch.device, precision: str = "auto") -> torch.dtype:
    """fp16 on accelerators (bf16 where asked), fp32 on CPU."""
    import torch

    if precision != "auto":
        if precision not in PRECISIONS:
            raise InputError(f"unknown precision {precision!r}; choose one of: auto, {', '.join(PRECISIONS)}")
        return getattr(torch, PRECISIONS[precision])
    return torch.float32 if device.type == "cpu" else torch.float16
