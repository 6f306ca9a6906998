"""The tutorial GAN in idiomatic PyTorch: the reference `step_speed.py` compares ganjax with.

Same model and update as `ganjax.train_step` with `d_update='separate'`: D
on the real batch (label 1), a second Adam step on detached fakes (label 0),
then G through D with D's params not stepped; BCE on logits, Adam(2e-4,
b1=0.5) for both. Only the benchmark imports it; torch is an optional extra
(`pip install torch==2.13.0`).
"""

import statistics
import time

import torch
from torch import nn


def make_models(latent_dim: int = 100) -> tuple[nn.Module, nn.Module]:
  g = nn.Sequential(
    nn.Linear(latent_dim, 256),
    nn.ReLU(),
    nn.Linear(256, 512),
    nn.ReLU(),
    nn.Linear(512, 1024),
    nn.ReLU(),
    nn.Linear(1024, 784),
    nn.Tanh(),
    nn.Unflatten(1, (1, 28, 28)),
  )
  d = nn.Sequential(
    nn.Conv2d(1, 64, 3, stride=2, padding=1),
    nn.LeakyReLU(0.2),
    nn.Conv2d(64, 128, 3, stride=2, padding=1),
    nn.LeakyReLU(0.2),
    nn.Flatten(),
    nn.Linear(7 * 7 * 128, 1),
  )
  return g, d


def steps_per_second(batch_size: int, windows: int = 7, latent_dim: int = 100, seed: int = 0) -> float:
  """Median steps/s of the tutorial's step at `batch_size` on random data held in memory."""
  torch.manual_seed(seed)
  g, d = make_models(latent_dim)
  g_opt = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
  d_opt = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
  bce = nn.BCEWithLogitsLoss()
  data = torch.rand(10_000, 1, 28, 28) * 2 - 1
  ones, zeros = torch.ones(batch_size, 1), torch.zeros(batch_size, 1)

  def step(i: int) -> None:
    real = data[torch.randint(0, len(data), (batch_size,))]
    fake = g(torch.randn(batch_size, latent_dim)).detach()
    d_opt.zero_grad(set_to_none=True)
    bce(d(real), ones).backward()
    d_opt.step()
    d_opt.zero_grad(set_to_none=True)
    bce(d(fake), zeros).backward()
    d_opt.step()
    g_opt.zero_grad(set_to_none=True)
    bce(d(g(torch.randn(batch_size, latent_dim))), ones).backward()
    g_opt.step()  # only G steps; D's grads from this pass are cleared before D's next step

  for i in range(10):
    step(i)
  n = max(10, 640 // batch_size)
  rates = []
  for _ in range(windows):
    t0 = time.perf_counter()
    for i in range(n):
      step(i)
    rates.append(n / (time.perf_counter() - t0))
  return statistics.median(rates)
