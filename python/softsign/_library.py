"""Loads the native library (which registers torch.ops.softsign) and the fake kernels."""

from __future__ import annotations

from pathlib import Path

import torch

_LIB = Path(__file__).with_name("libsoftsign.so")
if not _LIB.exists():  # pragma: no cover - only in a source tree that was never built
    raise ImportError(
        f"softsign's native library {_LIB} is missing: build the package with "
        "`pip install --no-build-isolation .` from a checkout"
    )
try:
    from softsign._build_info import TORCH_VERSION as _BUILT_WITH
except ImportError:  # pragma: no cover - a tree built by hand
    _BUILT_WITH = None
if _BUILT_WITH is not None and _BUILT_WITH != torch.__version__:
    raise ImportError(
        f"softsign was compiled against torch {_BUILT_WITH}, but torch {torch.__version__} is "
        "installed: its native library only works with the torch it was built with. Reinstall "
        "softsign from source in this environment (`pip install --no-build-isolation .`)."
    )
torch.ops.load_library(str(_LIB))

ops = torch.ops.softsign


def _opmath(t: torch.Tensor) -> torch.dtype:
    return torch.float64 if t.dtype == torch.float64 else torch.float32


@torch.library.register_fake("softsign::soft_sign_step_")
def _soft_sign_step_fake(params, grads, momentum_buffers, **kwargs):
    return None


@torch.library.register_fake("softsign::soft_sign_direction")
def _soft_sign_direction_fake(grads, momentum_buffers, **kwargs):
    return [torch.empty_like(g, dtype=_opmath(g)) for g in grads]


@torch.library.register_fake("softsign::median_mad")
def _median_mad_fake(tensors):
    t = tensors[0]
    return t.new_empty((), dtype=torch.float64), t.new_empty((), dtype=torch.float64)


@torch.library.register_fake("softsign::temperature_schedule")
def _temperature_schedule_fake(median, mad, steps, **kwargs):
    return median.new_empty((steps,), dtype=torch.float64)


@torch.library.register_fake("softsign::direction_median_mad")
def _direction_median_mad_fake(grads, momentum_buffers, first_step_grads, **kwargs):
    t = (list(grads) + list(first_step_grads))[0]
    return t.new_empty((), dtype=torch.float64), t.new_empty((), dtype=torch.float64)


@torch.library.register_fake("softsign::radix_select_histogram")
def _radix_select_histogram_fake(grads, momentum_buffers, state, *, digit_bits, **kwargs):
    return state.new_empty(((1 << digit_bits) + 1,))


@torch.library.register_fake("softsign::radix_select_advance_")
def _radix_select_advance_fake(state, histogram, **kwargs):
    return None


@torch.library.register_fake("softsign::radix_select_result")
def _radix_select_result_fake(state, **kwargs):
    return state.new_empty((), dtype=torch.float64), state.new_empty((), dtype=torch.float64)


@torch.library.register_fake("softsign::temperature_at")
def _temperature_at_fake(median, mad, index, steps, **kwargs):
    return median.new_empty((), dtype=torch.float64)


@torch.library.register_fake("softsign::fit_temperature")
def _fit_temperature_fake(median, mad, **kwargs):
    return median.new_empty((3,), dtype=torch.float64), median.new_empty((2,), dtype=torch.float64)


def _work_dtype(t: torch.Tensor, float32: bool) -> torch.dtype:
    if t.dtype == torch.float64:
        return torch.float64
    return torch.float32 if float32 else torch.bfloat16


@torch.library.register_fake("softsign::newton_schulz5")
def _newton_schulz5_fake(matrices, **kwargs):
    return torch.empty_like(
        matrices, dtype=_work_dtype(matrices, False), memory_format=torch.contiguous_format
    )


@torch.library.register_fake("softsign::soft_spectral_map")
def _soft_spectral_map_fake(matrices, tau, *, method="newton_schulz", **kwargs):
    return torch.empty_like(
        matrices,
        dtype=_work_dtype(matrices, method == "accurate"),
        memory_format=torch.contiguous_format,
    )


@torch.library.register_fake("softsign::singular_values")
def _singular_values_fake(tensors):
    out = []
    for t in tensors:
        rows = 1 if t.dim() <= 1 else t.shape[0]
        cols = t.numel() // rows if rows else 0
        dtype = torch.float64 if t.dtype == torch.float64 else torch.float32
        out.append(t.new_empty((min(rows, cols),), dtype=dtype))
    return out


@torch.library.register_fake("softsign::muon_step_")
def _muon_step_fake(params, grads, momentum_buffers, **kwargs):
    return None


@torch.library.register_fake("softsign::muon_momentum_")
def _muon_momentum_fake(grads, momentum_buffers, directions, **kwargs):
    return None


@torch.library.register_fake("softsign::muon_orthogonalize")
def _muon_orthogonalize_fake(directions, **kwargs):
    return [torch.empty_like(d, memory_format=torch.contiguous_format) for d in directions]


@torch.library.register_fake("softsign::muon_apply_")
def _muon_apply_fake(params, updates, **kwargs):
    return None
