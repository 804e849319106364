"""Schedule maths and sampler consistency against an analytic denoiser with a known answer."""

import math

import pytest
import torch

from phenoseq.model.diffusion import Diffusion


@pytest.mark.parametrize("prediction", ["v", "eps"])
def test_schedule_and_targets(prediction):
    d = Diffusion(prediction=prediction)
    t = torch.linspace(0, 1, 101)
    a, s = d.alpha_sigma(t)
    assert torch.allclose(a**2 + s**2, torch.ones_like(a), atol=1e-5)
    lam = d.logsnr(t)
    assert torch.all(lam[1:] < lam[:-1])  # SNR falls monotonically with time
    assert math.isclose(lam[0].item(), 15.0, abs_tol=1e-6) and math.isclose(lam[-1].item(), -15.0, abs_tol=1e-6)
    x0, noise, tt = torch.randn(64, 5), torch.randn(64, 5), torch.rand(64) * 0.98 + 0.01
    x_t, target = d.noisy(x0, tt, noise)
    x0_hat, eps_hat = d.to_x0_eps(x_t, tt, target)  # the true target must map back to the truth
    assert torch.allclose(x0_hat, x0, atol=1e-3) and torch.allclose(eps_hat, noise, atol=1e-3)


def mixture_model_fn(d: Diffusion, means, sd, weights):
    """Exact v-prediction for data from a 1-D Gaussian mixture (posterior mean in closed form)."""
    means, weights = torch.tensor(means), torch.tensor(weights)

    def fn(x, t):
        a, s = (v[:, None] for v in d.alpha_sigma(t))
        var = a**2 * sd**2 + s**2  # marginal variance of each component at time t
        logp = torch.log(weights) - 0.5 * (x - a * means) ** 2 / var - 0.5 * torch.log(var)
        r = torch.softmax(logp, dim=1)
        post = means + a * sd**2 / var * (x - a * means)  # E[x0 | x_t, component]
        x0 = (r * post).sum(dim=1, keepdim=True)
        eps = (x - a * x0) / s
        return a * eps - s * x0

    return fn


def test_fast_sampler_agrees_with_many_step_ddim():
    d = Diffusion()
    fn = mixture_model_fn(d, [-2.0, 3.0], 0.5, [0.3, 0.7])
    noise = torch.randn(8_000, 1, generator=torch.Generator().manual_seed(0))
    fast = d.sample(fn, noise, steps=12, sampler="dpm++2m")
    ddim = d.sample(fn, noise, steps=100, sampler="ddim")
    for x in (fast, ddim):
        right = (x > 0.5).float().mean().item()
        assert abs(right - 0.7) < 0.02  # mode weights recovered
        assert abs(x[x > 0.5].std().item() - 0.5) < 0.05 and abs(x[x > 0.5].mean().item() - 3.0) < 0.05
    # deterministic samplers from the same noise land on (nearly) the same points
    assert (fast - ddim).abs().median().item() < 0.05


def test_few_step_ddim_is_worse_than_dpm():
    d = Diffusion()
    fn = mixture_model_fn(d, [-2.0, 3.0], 0.5, [0.3, 0.7])
    noise = torch.randn(2_000, 1, generator=torch.Generator().manual_seed(1))
    ref = d.sample(fn, noise, steps=100, sampler="ddim")
    err = {s: (d.sample(fn, noise, steps=8, sampler=s) - ref).abs().mean().item() for s in ("ddim", "dpm++2m")}
    assert err["dpm++2m"] < err["ddim"]


def test_sampler_arguments():
    d = Diffusion()
    with pytest.raises(ValueError, match="unknown sampler"):
        d.sample(lambda x, t: x, torch.zeros(1, 1), 4, sampler="euler")
    with pytest.raises(ValueError, match="prediction"):
        Diffusion(prediction="x0")
