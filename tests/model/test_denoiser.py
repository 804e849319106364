"""The denoiser: shapes, permutation invariance in the context set, and the effect of dropping the context."""

import torch

from phenoseq.model.denoiser import ContextSet, Denoiser


def make(seed=0):
    torch.manual_seed(seed)
    net = Denoiser(latent_dim=6, n_features=9, dim=32, depth=2, heads=4, tokens=3).eval()
    # Zero-initialised output layers make a fresh network constant; give them weights so tests see signal.
    for p in net.parameters():
        if p.abs().sum() == 0:
            torch.nn.init.normal_(p, std=0.2)
    return net


def context(net, pools, index, drop=None):
    b = index.shape[0]
    return ContextSet(net.encode(pools), torch.zeros(b, dtype=torch.long), index,
                      torch.zeros(b, dtype=torch.bool) if drop is None else drop)


def test_shapes():
    net = make()
    pools = torch.randn(3, 10, 9)
    ctx = ContextSet(net.encode(pools), torch.tensor([0, 1, 2, 2, 0]), torch.randint(0, 10, (5, 4)),
                     torch.zeros(5, dtype=torch.bool))
    assert net.encode(pools).shape == (3, 10, 32)
    out = net(torch.randn(5, 6), torch.rand(5), ctx)
    assert out.shape == (5, 6)


def test_permutation_invariant_in_the_context_set():
    net = make()
    pools = torch.randn(1, 12, 9)
    x, t = torch.randn(2, 6), torch.rand(2)
    index = torch.tensor([[0, 3, 5, 7, 9], [1, 2, 4, 6, 8]])
    perm = index[:, torch.tensor([4, 2, 0, 3, 1])]
    with torch.no_grad():
        a = net(x, t, context(net, pools, index))
        b = net(x, t, context(net, pools, perm))
        # Reordering the pool itself (and the indices with it) must not matter either.
        order = torch.randperm(12)
        inverse = torch.argsort(order)
        c = net(x, t, context(net, pools[:, order], inverse[index]))
    assert torch.allclose(a, b, atol=1e-5) and torch.allclose(a, c, atol=1e-5)


def test_output_depends_on_the_set_unless_dropped():
    net = make()
    pools = torch.randn(1, 12, 9)
    x, t = torch.randn(1, 6), torch.rand(1)
    i1, i2 = torch.tensor([[0, 1, 2, 3]]), torch.tensor([[8, 9, 10, 11]])
    with torch.no_grad():
        assert not torch.allclose(net(x, t, context(net, pools, i1)), net(x, t, context(net, pools, i2)))
        drop = torch.ones(1, dtype=torch.bool)
        d1 = net(x, t, context(net, pools, i1, drop))
        d2 = net(x, t, context(net, pools, i2, drop))
    assert torch.allclose(d1, d2, atol=1e-6)  # with the context dropped the set is invisible


def test_prepared_conditioning_matches_raw_context():
    net = make()
    pools = torch.randn(2, 8, 9)
    ctx = ContextSet(net.encode(pools), torch.tensor([0, 1, 1]), torch.randint(0, 8, (3, 4)),
                     torch.tensor([False, True, False]))
    x, t = torch.randn(3, 6), torch.rand(3)
    with torch.no_grad():
        assert torch.allclose(net(x, t, ctx), net(x, t, net.condition(ctx)))
