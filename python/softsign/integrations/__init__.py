"""softsign in training stacks: what is common to them here, the Hugging Face Trainer in
`softsign.integrations.hf` and Lightning in `softsign.integrations.lightning` (each imports
its framework: `pip install "softsign[hf]"` or `"softsign[lightning]"`).

* `unwrap(opt)`, `temperature(opt, group)`: the softsign optimizer inside accelerate's and
  Lightning's wrappers, and its temperature.
* `phase`, `saturation`, `metrics`: what a logging step reads of each param group (host
  values, and device values read when asked, never inside step()).
* `fill_total_steps(opt, n)`: what the callbacks do for an optimizer built before the run's
  length is known (SoftSignum(..., total_steps="auto")), before its first step.
"""

from ._observe import (
    NULL_SINGULAR_VALUE,
    PHASES,
    SATURATION_LEVEL,
    THRESHOLDS,
    metrics,
    phase,
    saturation,
    temperature,
    unwrap,
)
from ._schedule import AUTO, fill_total_steps


def missing_framework(module: str, packages: str) -> ImportError:
    """The error of softsign.integrations.<module> imported without its framework (the
    extra of the same name installs it)."""
    return ImportError(
        f"softsign.integrations.{module} needs {packages}: pip install "
        f'"softsign[{module}]", or pip install {packages}'
    )


__all__ = [
    "missing_framework",
    "AUTO",
    "NULL_SINGULAR_VALUE",
    "PHASES",
    "SATURATION_LEVEL",
    "THRESHOLDS",
    "fill_total_steps",
    "metrics",
    "phase",
    "saturation",
    "temperature",
    "unwrap",
]
