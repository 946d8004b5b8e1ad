"""Pure-PyTorch float64 reference of the softsign math, written from docs/algorithms.md.
It depends on torch only; tests, golden values and benchmarks compare the fused paths
against it.

The package exports what each of its modules lists in `__all__`, and importing it imports
every module, so each optimizer's option table (written beside its reference) is in
options.OPTIONS: a new optimizer's reference module needs no edit here."""

import importlib as _importlib
import pkgutil as _pkgutil

__all__: list[str] = []
for _info in _pkgutil.iter_modules(__path__):
    _module = _importlib.import_module(f"{__name__}.{_info.name}")
    for _name in getattr(_module, "__all__", ()):
        globals()[_name] = getattr(_module, _name)
        __all__.append(_name)
__all__.sort()
