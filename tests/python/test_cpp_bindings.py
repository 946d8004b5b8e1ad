"""The C++ optimizers (softsign::optim, bound as softsign._C): what is theirs beyond the
contract (test_contract.py runs each binding against its Python class bit for bit, in
every phase and across a save/load, and holds it to the same refusals of bad options)."""

import pytest
import torch

from softsign import _C


def test_cpp_muon_refuses_a_vector_in_a_matrix_group():
    with pytest.raises(RuntimeError, match="use_muon"):
        _C.Muon([([torch.zeros(3, requires_grad=True)], True)])
    with pytest.raises(RuntimeError, match="use_muon"):
        _C.SoftMuon([([torch.zeros(3, requires_grad=True)], True)], total_steps=100)
