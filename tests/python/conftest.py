import os
import tempfile

import pytest
import torch

# torch.compile's on-disk caches key a graph by the ops' names, not by their schemas: a cache
# filled by an older build of this library replays calls with its old arguments. Each
# session compiles into its own cache unless the caller chose one.
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="softsign-inductor-"))

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "cuda" in item.name and not torch.cuda.is_available():
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU"))


def step_kwargs(**over):
    """Keyword arguments of torch.ops.softsign.soft_sign_step_: a heavy-ball sign step (lr 0.1,
    momentum 0.9) with every flag off and no optional tensor, then `over`."""
    kw = dict(lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0.0)
    kw.update(dict.fromkeys(("nesterov", "maximize", "first_step"), False))
    kw.update(dict.fromkeys(("lr_tensor", "temperature", "grad_scale", "found_inf")))
    return dict(kw, **over)


@pytest.fixture(params=DEVICES)
def device(request):
    return torch.device(request.param)


# Tolerances of a multi-step run against the float64 reference, per storage dtype:
# float32 math over ~40 steps (errors ~1e-6 at lr 1e-2). For bf16/fp16 the reference
# rounds to the same storage after every step; float32 and float64 intermediates still
# round differently now and then (1 ulp), and those walk: 4 ulps of the format after
# 36 steps. The single-step tests in test_ops.py hold the kernels to 1 ulp.
TOLERANCES = {
    torch.float32: dict(rtol=1e-5, atol=1e-5),
    torch.float64: dict(rtol=1e-12, atol=1e-12),
    torch.bfloat16: dict(rtol=2**-6, atol=2**-7),
    torch.float16: dict(rtol=2**-8, atol=2**-9),
}
