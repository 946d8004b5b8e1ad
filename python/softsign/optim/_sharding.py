"""DTensor parameters (FSDP2's fully_shard, torch.distributed.tensor) in the optimizers.

Note [sharded parameters]
The fused ops take plain tensors, so a DTensor parameter is updated through its local
shard (`local`); its optimizer state is created with zeros_like(param) and stays a DTensor,
which torch.distributed.checkpoint saves and reshards. Two things need more than a shard:
* The temperature fit (docs/algorithms.md section 3) is a median and MAD over every element
  of a group.
  Each rank histograms the elements it holds and the histograms are all-reduced over the
  mesh dimensions that shard the group (`StatisticLayout`), so every rank selects the same
  exact values and holds the same schedule. An element held by several ranks (a Replicate
  mesh dimension, or a plain tensor next to sharded ones, which is taken to be replicated)
  is counted on the rank of coordinate 0 alone.
* SoftMuon's maps are functions of whole matrices. `MatrixExchange` gives each sharded
  matrix an owner rank (balanced by Newton-Schulz cost), gathers the shards of the owned
  matrices with one all_to_all, and sends the owner's result back with another, so the
  matrix work is split across ranks rather than repeated (microsoft/dion's layout).
Nothing here runs for plain tensors: single-process use never touches torch.distributed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ._validate import check_grad

try:
    from torch.distributed.tensor import DTensor
except ImportError:  # a torch built without distributed support
    DTensor = None


def is_dtensor(t) -> bool:
    return DTensor is not None and isinstance(t, DTensor)


def any_dtensor(tensors) -> bool:
    return DTensor is not None and any(isinstance(t, DTensor) for t in tensors)


def local(t: torch.Tensor) -> torch.Tensor:
    """The tensor a fused op updates in place: the local shard of a DTensor (an alias of
    its storage under no_grad), else the tensor itself."""
    return t.to_local() if is_dtensor(t) else t


def _shard_dims(p, owner: str) -> dict[int, int]:
    """{mesh dim: tensor dim} of the Shard placements of DTensor p (checked: no Partial)."""
    dims = {}
    for mesh_dim, placement in enumerate(p.placements):
        if placement.is_partial():
            raise ValueError(
                f"{owner}: a parameter has a Partial placement {p.placements}; optimizers "
                "need parameters whose values are complete on each rank"
            )
        if placement.is_shard():
            dims[mesh_dim] = placement.dim
    return dims


def _group_mesh(params: Sequence[torch.Tensor], owner: str):
    """The one DeviceMesh of the group's DTensors, or None when there are none."""
    mesh = None
    for p in params:
        if not is_dtensor(p):
            continue
        if mesh is None:
            mesh = p.device_mesh
        elif p.device_mesh != mesh:
            raise ValueError(
                f"{owner}: a param group holds DTensors on different device meshes; put "
                "parameters of different meshes in different param groups"
            )
    return mesh


@dataclass
class StatisticLayout:
    """Which local elements of a group enter its statistic on this rank, and the hook that
    sums histograms over the ranks holding the other elements (Note [sharded parameters])."""

    mesh: object
    reduce_dims: tuple[int, ...]

    @classmethod
    def of(cls, params: Sequence[torch.Tensor], owner: str) -> StatisticLayout | None:
        """None for a group of plain tensors (nothing to sum)."""
        mesh = _group_mesh(params, owner)
        if mesh is None:
            return None
        dims = set()
        for p in params:
            if is_dtensor(p):
                dims |= set(_shard_dims(p, owner))
        return cls(mesh, tuple(sorted(dims)))

    def coordinate(self, mesh_dim: int) -> int:
        return self.mesh.get_local_rank(mesh_dim)

    def counts_here(self, p: torch.Tensor, owner_rank: dict[int, int] | None = None) -> bool:
        """Whether this rank counts p's local elements. `owner_rank` ({mesh dim: rank}) says
        which rank of a shard dimension counts a whole matrix gathered there."""
        sharded = _shard_dims(p, "") if is_dtensor(p) else {}
        for d in self.reduce_dims:
            if owner_rank is not None and d in owner_rank:
                if self.coordinate(d) != owner_rank[d]:
                    return False
            elif d not in sharded and self.coordinate(d) != 0:
                return False
        return True

    def hook(self) -> Callable[[torch.Tensor], None] | None:
        if not self.reduce_dims:
            return None
        groups = [self.mesh.get_group(d) for d in self.reduce_dims]

        def all_reduce(hist: torch.Tensor) -> None:
            # A sum over the product of the shard dimensions' groups, one dimension at a time.
            for group in groups:
                dist.all_reduce(hist, group=group)

        return all_reduce


def with_grads(params, owner: str):
    """(p, what the ops update for p, what they read for its grad, whether p is sharded)
    of each of params that has a gradient, checked (check_grad, the gradient's layout)
    before anything changes. Per parameter Python is what a step of thousands of small tensors
    costs: the DTensor questions are asked once per parameter."""
    for p in params:
        grad = p.grad
        if grad is None:
            continue
        check_grad(owner, grad)
        p_sharded, grad_sharded = is_dtensor(p), is_dtensor(grad)
        if not (p_sharded or grad_sharded):
            yield p, p, grad, False
            continue
        # The gradient must be laid out as its parameter.
        if p_sharded != grad_sharded or tuple(grad.placements) != tuple(p.placements):
            raise ValueError(
                f"{owner}: a gradient's layout differs from its parameter's "
                f"({getattr(grad, 'placements', 'a plain tensor')} for "
                f"{getattr(p, 'placements', 'a plain tensor')}); redistribute it first"
            )
        yield p, p.to_local(), grad.to_local(), True


def matrix_dims(t: torch.Tensor) -> tuple[int, int]:
    """(rows, cols) of t as Muon sees it: size(0) by the rest (csrc/ops/muon_step.cpp)."""
    rows = t.shape[0]
    return rows, t.numel() // max(rows, 1)


# -- SoftMuon: whole matrices ----------------------------------------------------------------


def _chunk(size: int, parts: int, index: int) -> tuple[int, int]:
    """[start, end) of chunk `index` of `size` rows split as torch.chunk and DTensor's Shard
    split them: chunks of ceil(size / parts), the last ones short or empty."""
    step = -(-size // parts) if size else 0
    start = min(index * step, size)
    return start, min(start + step, size)


@dataclass
class _Matrix:
    index: int  # position in the caller's list
    shape: torch.Size  # global shape
    tensor_dim: int  # the sharded tensor dim
    owner: int  # rank (in the shard group) that gathers it


class MatrixExchange:
    """Gathers whole matrices from shards at their owners and scatters results back, for
    DTensors sharded on one mesh dimension (FSDP2: Shard(0), any dim works). Built once per
    step from the group's parameters; every rank builds the same plan."""

    def __init__(self, params: Sequence[torch.Tensor], owner: str):
        self.mesh = _group_mesh(params, owner)
        # (mesh dim, dtype) -> matrices sharded on that mesh dim: one all_to_all each way.
        self.sharded: dict[tuple[int, torch.dtype], list[_Matrix]] = {}
        self.plain: list[int] = []  # indices of the matrices this rank holds whole
        costs = []
        for i, p in enumerate(params):
            dims = _shard_dims(p, owner) if is_dtensor(p) else {}
            if len(dims) > 1:
                raise NotImplementedError(
                    f"{owner}: a matrix sharded on several mesh dimensions ({p.placements}) "
                    "is not supported; shard matrices on one dimension (FSDP2 does)"
                )
            if not dims or self.mesh.size(next(iter(dims))) == 1:
                self.plain.append(i)  # whole on every rank (a single-rank shard dimension)
                continue
            ((mesh_dim, tensor_dim),) = dims.items()
            rows, cols = matrix_dims(p)
            costs.append((-rows * cols * min(rows, cols), i, mesh_dim, tensor_dim))
        # Largest first to the least loaded rank of its shard dimension (the Newton-Schulz
        # cost of an m x n matrix is about m n min(m, n)); every rank computes the same.
        loads: dict[int, list[int]] = {}
        self._owner: dict[int, dict[int, int]] = {}
        for cost, i, mesh_dim, tensor_dim in sorted(costs):
            load = loads.setdefault(mesh_dim, [0] * self.mesh.size(mesh_dim))
            rank = min(range(len(load)), key=lambda r: (load[r], r))
            load[rank] -= cost
            key = (mesh_dim, params[i].dtype)
            self.sharded.setdefault(key, []).append(_Matrix(i, params[i].shape, tensor_dim, rank))
            self._owner[i] = {mesh_dim: rank}
        for matrices in self.sharded.values():
            matrices.sort(key=lambda m: m.index)

    def owned(self) -> list[int]:
        """Indices of the sharded matrices this rank gathers."""
        return sorted(
            m.index
            for (d, _), matrices in self.sharded.items()
            for m in matrices
            if m.owner == self.mesh.get_local_rank(d)
        )

    def owner_ranks(self, index: int) -> dict[int, int]:
        """{mesh dim: owner rank} of a sharded matrix ({} for a plain one)."""
        return self._owner.get(index, {})

    def gather(self, shards: Sequence[torch.Tensor]) -> dict[int, torch.Tensor]:
        """{index: whole matrix} for the matrices this rank owns, from every rank's local
        `shards` (one per parameter, in the caller's order)."""
        out = {}
        for (d, _), matrices in self.sharded.items():
            out.update(self._gather(d, matrices, shards))
        return out

    def scatter(
        self, results: dict[int, torch.Tensor], like: Sequence[torch.Tensor]
    ) -> dict[int, torch.Tensor]:
        """{index: this rank's shard of the result} for every sharded matrix, from the owners'
        whole `results`; `like` (local shards) gives shapes, dtypes and devices."""
        out = {}
        for (d, _), matrices in self.sharded.items():
            out.update(self._scatter(d, matrices, results, like))
        return out

    # -- internals ----------------------------------------------------------------------------
    def _shard_shape(self, m: _Matrix, rank: int, world: int) -> list[int]:
        shape = list(m.shape)
        start, end = _chunk(shape[m.tensor_dim], world, rank)
        shape[m.tensor_dim] = end - start
        return shape

    def _gather(self, d, matrices, shards):
        group, world, me = self.mesh.get_group(d), self.mesh.size(d), self.mesh.get_local_rank(d)
        for m in matrices:
            if list(shards[m.index].shape) != self._shard_shape(m, me, world):
                raise ValueError(
                    f"softsign: the local shard {tuple(shards[m.index].shape)} of a "
                    f"{tuple(m.shape)} matrix is not the chunk this rank should hold"
                )
        send = [[] for _ in range(world)]
        for m in matrices:
            send[m.owner].append(shards[m.index].reshape(-1))
        mine = [m for m in matrices if m.owner == me]
        recv_sizes = [
            sum(math.prod(self._shard_shape(m, r, world)) for m in mine) for r in range(world)
        ]
        received = self._all_to_all(send, recv_sizes, shards[matrices[0].index], group)
        pieces = {m.index: [] for m in mine}
        for r, flat in enumerate(received):
            offset = 0
            for m in mine:
                shape = self._shard_shape(m, r, world)
                n = math.prod(shape)
                pieces[m.index].append(flat[offset : offset + n].view(shape))
                offset += n
        return {m.index: torch.cat(pieces[m.index], dim=m.tensor_dim) for m in mine}

    def _scatter(self, d, matrices, results, like):
        group, world, me = self.mesh.get_group(d), self.mesh.size(d), self.mesh.get_local_rank(d)
        send = [[] for _ in range(world)]
        for m in matrices:
            if m.owner != me:
                continue
            for r in range(world):
                start, end = _chunk(m.shape[m.tensor_dim], world, r)
                part = results[m.index].narrow(m.tensor_dim, start, end - start)
                send[r].append(part.reshape(-1))
        recv_sizes = [0] * world
        for m in matrices:
            recv_sizes[m.owner] += like[m.index].numel()
        received = self._all_to_all(send, recv_sizes, like[matrices[0].index], group)
        out, offsets = {}, [0] * world
        for m in matrices:
            n = like[m.index].numel()
            flat = received[m.owner]
            out[m.index] = flat[offsets[m.owner] : offsets[m.owner] + n].view(like[m.index].shape)
            offsets[m.owner] += n
        return out

    @staticmethod
    def _all_to_all(send, recv_sizes, like, group) -> list[torch.Tensor]:
        """One all_to_all_single of the flat pieces in `send[r]` (to rank r); returns the flat
        buffer received from each rank."""
        dtype, device = like.dtype, like.device
        chunks = [torch.cat(parts) if parts else like.new_empty(0) for parts in send]
        inp = torch.cat(chunks) if chunks else like.new_empty(0)
        out = torch.empty(sum(recv_sizes), dtype=dtype, device=device)
        dist.all_to_all_single(out, inp, recv_sizes, [c.numel() for c in chunks], group=group)
        return list(out.split(recv_sizes))
