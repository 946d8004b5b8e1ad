"""step() on CUDA never waits for the device: checked on any machine, GPU or not.

The parameters are fake CUDA tensors (torch's FakeTensorMode: shapes, dtypes and devices,
no data), so every op of step() runs its fake kernel, ours included, and a recorder
underneath sees each call. A host synchronization has to show up there as one of:
  * a read of a device value (item, tolist, bool, a data-dependent shape: fake tensors
    have no data, so these raise as well);
  * a blocking copy between the host and the device (torch.tensor(..., device="cuda"),
    .cpu(), .to(..., non_blocking=False));
  * an explicit wait (torch.cuda.synchronize, an event's synchronize).
What this cannot see is a synchronization inside a native CUDA kernel's host code, which
the fake kernels replace; test_cuda.py checks the real thing with
torch.cuda.set_sync_debug_mode("error") where a GPU runs it. The one known case is
SoftMuon's fit step (torch.linalg.eigvalsh checks its solver status on the host), which
the fake run does not see and test_cuda.py exempts.

The temperature fit's status comes back through a non-blocking copy that a later step()
reads only once its event says it has landed (softsign/_fit.py). The runs here take both
branches: the copy never lands (every transition step runs from the device schedule), and
it lands one step after the fit (the host reads its own pinned buffer).
"""

from __future__ import annotations

import contextlib
import weakref

import pytest
import torch
from torch._subclasses.fake_tensor import (
    DataDependentOutputException,
    DynamicOutputShapeException,
    FakeTensorMode,
    unset_fake_temporarily,
)
from torch.utils._python_dispatch import TorchDispatchMode

import softsign
from softsign import _fit

aten = torch.ops.aten

pytestmark = pytest.mark.skipif(
    not torch.backends.cuda.is_built(), reason="fake CUDA tensors need a CUDA build of torch"
)


def _device(x):
    return x.device if isinstance(x, torch.Tensor) else None


class HostSyncRecorder(TorchDispatchMode):
    """Records every op that would make the host wait for a CUDA device."""

    def __init__(self):
        super().__init__()
        self.syncs: list[str] = []
        # Host tensors made with pin_memory=True: the only ones a non-blocking copy from the
        # device fills without a wait (into pageable memory the host waits for the copy).
        self.pinned: dict[int, weakref.ref] = {}  # by id: tensors compare elementwise

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is aten._local_scalar_dense.default and args[0].device.type == "cuda":
            self.syncs.append(f"{func}: read of a device value")
        elif func is aten.copy_.default:
            dst, src = args[0], args[1]
            blocking = not (args[2] if len(args) > 2 else kwargs.get("non_blocking", False))
            if dst.device != src.device:
                if blocking:
                    self.syncs.append(f"{func}: blocking copy {src.device} -> {dst.device}")
                elif dst.device.type == "cpu" and not self.is_pinned(dst):
                    self.syncs.append(f"{func}: copy {src.device} -> pageable host memory")
        elif func is aten._to_copy.default:
            # A non-blocking _to_copy to the host allocates pinned memory for its result.
            src, dst = args[0].device, kwargs.get("device") or args[0].device
            if torch.device(dst) != src and not kwargs.get("non_blocking", False):
                self.syncs.append(f"{func}: blocking copy {src} -> {dst}")
        out = func(*args, **kwargs)
        if kwargs.get("pin_memory") and isinstance(out, torch.Tensor):
            self.pinned[id(out)] = weakref.ref(out)
        return out

    def is_pinned(self, t) -> bool:
        ref = self.pinned.get(id(t))
        return ref is not None and ref() is t


@contextlib.contextmanager
def fake_cuda(monkeypatch, lands_after: int | None):
    """Fake CUDA tensors with a recorder of host syncs. The fit's status copy lands
    `lands_after` step() calls after the fit (never if None); the status it brings is a
    successful fit of median 0.5, MAD 0.25."""
    recorder = HostSyncRecorder()
    launch = _fit.PendingFit.launch.__func__
    clock = {"step": 0}

    def fake_launch(cls, stats, schedule):
        pending = launch(cls, stats, schedule)
        assert pending.event is not None, "a CUDA fit reads its status back asynchronously"
        with unset_fake_temporarily():  # the host buffer is real memory, read without a wait
            pending.host = torch.tensor([0.5, 0.25, float(_fit.OK)], dtype=torch.float64)
        pending.launched_at = clock["step"]
        return pending

    def ready(pending):
        if lands_after is None:
            return False
        return clock["step"] - pending.launched_at >= lands_after

    def wait(pending):
        recorder.syncs.append("PendingFit.wait: event synchronize")

    def synchronize(*args, **kwargs):
        recorder.syncs.append("torch.cuda.synchronize")

    monkeypatch.setattr(_fit.PendingFit, "launch", classmethod(fake_launch))
    monkeypatch.setattr(_fit.PendingFit, "ready", ready)
    monkeypatch.setattr(_fit.PendingFit, "wait", wait)
    monkeypatch.setattr(torch.cuda, "synchronize", synchronize)
    with FakeTensorMode():
        recorder.clock = clock
        yield recorder


def run_steps(recorder, opt, params, steps, amp=False):
    if amp:  # what GradScaler hands a fused optimizer instead of unscaling on the host
        opt.grad_scale = torch.ones((), device="cuda")
        opt.found_inf = torch.zeros((), device="cuda")
    for k in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, device="cuda", dtype=p.dtype)
        with recorder:
            try:
                opt.step()
            except (DataDependentOutputException, DynamicOutputShapeException) as e:
                pytest.fail(f"step {k + 1} depends on device data on the host: {e!r}")
        recorder.clock["step"] += 1
        assert not recorder.syncs, f"step {k + 1} synchronizes: {recorder.syncs}"


def vectors_and_matrices():
    shapes = [(1,), (333,), (48, 64), (64, 8, 3, 3)]
    dtypes = (torch.float32, torch.bfloat16, torch.float16)
    return [torch.randn(s, device="cuda").to(dt).requires_grad_() for s in shapes for dt in dtypes]


def muon_groups(params):
    return [
        dict(params=[p for p in params if p.dim() >= 2], use_muon=True),
        dict(params=[p for p in params if p.dim() < 2], use_muon=False),
    ]


def test_recorder_catches_the_usual_host_syncs(monkeypatch):
    culprits = [
        lambda x: x.sum().item(),
        lambda x: x.cpu(),
        lambda x: torch.tensor([1.0, 2.0], device="cuda"),
        lambda x: x.to("cpu"),
        lambda x: torch.zeros(3).copy_(x[:3]),
        lambda x: torch.zeros(3).copy_(x[:3], non_blocking=True),  # into pageable memory
    ]
    with fake_cuda(monkeypatch, None) as recorder:
        x = torch.randn(8, device="cuda")
        for culprit in culprits:
            recorder.syncs.clear()
            with recorder, contextlib.suppress(Exception):
                culprit(x)
            assert recorder.syncs, culprit
        recorder.syncs.clear()
        with recorder:  # the asynchronous copies step() may use
            torch.empty(3, pin_memory=True).copy_(x[:3], non_blocking=True)
            x.to("cpu", non_blocking=True)
        assert not recorder.syncs


# softsign's element-wise pairs, {name: (plain, soft)}: each is run below with no edit here.
PAIRS = softsign.elementwise_pairs()


def _own(cls, options: dict) -> dict:
    """Those of `options` that `cls` takes: the momentum variants (Nesterov, no momentum,
    dampening) run where the class has them; the rest runs for every class."""
    return {k: v for k, v in options.items() if k in cls._table}


@pytest.mark.parametrize("lands_after", [None, 1])
@pytest.mark.parametrize(
    "options",
    [
        dict(nesterov=True, weight_decay=0.1),
        dict(momentum=0.0, maximize=True, amp=True),
        dict(dampening=0.5, lr_tensor="cuda"),
        dict(nesterov=True, lr_tensor="cpu"),
        dict(nesterov=True, fused=False),
        dict(nesterov=True, fused=False, amp=True),
    ],
    ids=["fused", "fused-amp", "fused-lr-tensor", "fused-lr-cpu-tensor", "foreach", "foreach-amp"],
)
@pytest.mark.parametrize("name", sorted(PAIRS))
def test_soft_elementwise_step_never_waits_for_the_device(monkeypatch, name, lands_after, options):
    cls = PAIRS[name][1]
    options = dict(options)
    amp, lr_tensor = options.pop("amp", False), options.pop("lr_tensor", False)
    with fake_cuda(monkeypatch, lands_after) as recorder:
        params = vectors_and_matrices()
        lr = torch.tensor(1e-2, device=lr_tensor) if lr_tensor else 1e-2
        opt = cls(params, lr=lr, total_steps=12, alpha_sign=0.5, **_own(cls, options))
        run_steps(recorder, opt, params, 15, amp)  # sign, fit, transition, after
        assert (lands_after is None) == (opt.param_groups[0]["fit"] is None)


@pytest.mark.parametrize("fused", [None, False])
@pytest.mark.parametrize("name", sorted(PAIRS))
def test_plain_elementwise_step_never_waits_for_the_device(monkeypatch, name, fused):
    cls = PAIRS[name][0]
    with fake_cuda(monkeypatch, None) as recorder:
        params = vectors_and_matrices()
        options = _own(cls, dict(nesterov=True, weight_decay=0.1))
        opt = cls(params, lr=1e-2, fused=fused, **options)
        run_steps(recorder, opt, params, 4, amp=fused is None)


@pytest.mark.parametrize("lands_after", [None, 1])
@pytest.mark.parametrize("soft_map", ["newton_schulz", "accurate"])
def test_soft_muon_step_never_waits_for_the_device(monkeypatch, lands_after, soft_map):
    with fake_cuda(monkeypatch, lands_after) as recorder:
        params = vectors_and_matrices()
        opt = softsign.SoftMuon(
            muon_groups(params),
            sign_steps=3,
            transition_steps=4,
            soft_map=soft_map,
            weight_decay=0.01,
        )
        run_steps(recorder, opt, params, 9)
        assert (lands_after is None) == (opt.param_groups[0]["fit"] is None)


def test_muon_step_never_waits_for_the_device(monkeypatch):
    with fake_cuda(monkeypatch, None) as recorder:
        params = vectors_and_matrices()
        opt = softsign.Muon(muon_groups(params), weight_decay=0.01)
        run_steps(recorder, opt, params, 3)
