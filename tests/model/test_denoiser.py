"""The denoiser: shapes, permutation invariance in the context set, and the effect of dropping the context."""

import numpy as np
import torch

from phenoseq.model.data import WellBatches, random_sets
from phenoseq.model.denoiser import ContextSet, Denoiser


def make(seed=0, tokens=3):
    torch.manual_seed(seed)
    net = Denoiser(latent_dim=6, n_features=9, dim=32, depth=2, heads=4, tokens=tokens).eval()
    # Zero-initialised output layers make a fresh network constant; give them weights so tests see signal.
    for p in net.parameters():
        if p.abs().sum() == 0:
            torch.nn.init.normal_(p, std=0.2)
    return net


def member_of(sets: list[list[int]], pool_size: int) -> torch.Tensor:
    """(1, C, P) membership of C cells' sets in one well's pool."""
    m = torch.zeros(1, len(sets), pool_size, dtype=torch.bool)
    for i, s in enumerate(sets):
        m[0, i, s] = True
    return m


def context(net, pools, member, drop=None):
    if drop is None:
        drop = torch.zeros(member.shape[:2], dtype=torch.bool)
    return ContextSet(net.encode(pools), member, drop)


def test_shapes():
    net = make()
    pools = torch.randn(3, 10, 9)
    member = torch.from_numpy(random_sets(np.random.default_rng(0), (3, 5), 10, 4))
    assert member.shape == (3, 5, 10) and (member.sum(-1) == 4).all()
    ctx = context(net, pools, member)
    assert net.encode(pools).shape == (3, 10, 32)
    assert net(torch.randn(15, 6), torch.rand(15), ctx).shape == (15, 6)


def test_permutation_invariant_in_the_context_set():
    net = make()
    pools = torch.randn(1, 12, 9)
    x, t = torch.randn(2, 6), torch.rand(2)
    sets = [[0, 3, 5, 7, 9], [1, 2, 4, 6, 8]]
    with torch.no_grad():
        a = net(x, t, context(net, pools, member_of(sets, 12)))
        # Reordering the pool (the same cells at other positions) must not change anything.
        order = torch.randperm(12, generator=torch.Generator().manual_seed(3))
        position = torch.argsort(order)  # where each original cell now sits
        moved = [[int(position[i]) for i in s] for s in sets]
        b = net(x, t, context(net, pools[:, order], member_of(moved, 12)))
    assert torch.allclose(a, b, atol=1e-5)


def test_each_cell_sees_only_its_own_set():
    net = make()
    pools = torch.randn(1, 12, 9)
    x, t = torch.randn(2, 6), torch.rand(2)
    with torch.no_grad():
        a = net(x, t, context(net, pools, member_of([[0, 1, 2, 3], [4, 5, 6, 7]], 12)))
        b = net(x, t, context(net, pools, member_of([[0, 1, 2, 3], [8, 9, 10, 11]], 12)))
    assert torch.allclose(a[0], b[0], atol=1e-5)  # cell 0's set is unchanged
    assert not torch.allclose(a[1], b[1], atol=1e-3)  # cell 1's set changed


def test_dropped_context_hides_the_set():
    net = make()
    pools = torch.randn(1, 12, 9)
    x, t = torch.randn(1, 6), torch.rand(1)
    drop = torch.ones(1, 1, dtype=torch.bool)
    with torch.no_grad():
        d1 = net(x, t, context(net, pools, member_of([[0, 1, 2, 3]], 12), drop))
        d2 = net(x, t, context(net, pools, member_of([[8, 9, 10, 11]], 12), drop))
    assert torch.allclose(d1, d2, atol=1e-6)


def test_prepared_conditioning_matches_raw_context():
    net = make()
    pools = torch.randn(2, 8, 9)
    member = torch.from_numpy(random_sets(np.random.default_rng(1), (2, 3), 8, 4))
    ctx = context(net, pools, member, torch.tensor([[False, True, False], [False, False, True]]))
    x, t = torch.randn(6, 6), torch.rand(6)
    with torch.no_grad():
        assert torch.allclose(net(x, t, ctx), net(x, t, net.condition(ctx)))


def test_one_token_skips_self_attention_without_changing_the_result():
    """With one RNA token per cell the block computes only the value projection; full attention over that one
    token gives the same output and the same gradients (zero for the query and key rows)."""
    net = make(tokens=1).train()
    pools, x, t = torch.randn(2, 10, 9), torch.randn(6, 6), torch.rand(6)
    member = torch.from_numpy(random_sets(np.random.default_rng(1), (2, 3), 10, 4))

    def run(full_attention: bool):
        net.zero_grad()
        cond = net.condition(context(net, pools, member))
        for block in net.blocks:
            # Any other count takes the general attention path (the one-token context is already prepared).
            block.tokens_per_cell = 2 if full_attention else 1
        out = net(x, t, cond)
        out.square().sum().backward()
        for block in net.blocks:
            block.tokens_per_cell = 1
        return out.detach(), [p.grad.clone() for p in net.parameters()]

    (short, short_grads), (full, full_grads) = run(False), run(True)
    assert torch.allclose(short, full, atol=1e-6)
    for a, b in zip(short_grads, full_grads):
        assert torch.allclose(a, b, atol=1e-6)
    qkv = [name for name, _ in net.named_parameters()].index("blocks.0.qkv.weight")
    assert not short_grads[qkv][:2 * net.dim].any() and short_grads[qkv][2 * net.dim:].any()


def test_well_batches_are_balanced_grids_of_one_well_per_row():
    wells = np.repeat([5, 7, 9], [40, 30, 50])
    batches = WellBatches(wells, batch_size=60, cells_per_well=10)
    assert (batches.n_wells, batches.cells_per_well) == (3, 20)
    taken = {5: [], 7: [], 9: []}
    for codes, idx in list(batches.epoch(np.random.default_rng(0)))[:2]:  # the first 120 cells
        assert idx.shape == (3, 20)
        for code, row in zip(codes, idx):
            assert (wells[row] == code).all()  # a row holds cells of its well only
            taken[int(code)].extend(row.tolist())
    assert all(len(v) == 40 for v in taken.values())  # wells weigh equally
    assert len(set(taken[5])) == 40 and len(set(taken[9])) == 40  # no repeats before a well is exhausted
    assert len(set(taken[7])) == 30  # a smaller well is cycled through in full
    many = WellBatches(np.repeat(np.arange(100), 3), batch_size=64, cells_per_well=16)
    assert (many.n_wells, many.cells_per_well) == (4, 16)
