"""The tutorial GAN and the default experiment in idiomatic PyTorch: the references `step_speed.py`
compares ganjax with.

The tutorial: the same model and update as `ganjax.train_step` with `d_update='separate'`: D
on the real batch (label 1), a second Adam step on detached fakes (label 0),
then G through D with D's params not stepped; BCE on logits, Adam(2e-4,
b1=0.5) for both.

The default (`experiments/mnist_gan.py`): its networks (`DefaultG`, `DefaultD`) and update
(`default_step`), with `load_flax` to copy a ganjax state's weights in, so that
tests/test_benchmarks.py can check that both compute the same function.

Only the benchmarks and that test import it; torch is an optional extra (`pip install -e '.[bench]'`).
"""

import copy
from collections.abc import Callable

import numpy as np
import timing  # benchmarks/ is on sys.path for the scripts and the twin's test
import torch
import torch.nn.functional as F  # noqa: N812 (PyTorch's convention)
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


def warmed_runner(step) -> Callable[[int], None]:
  """`run(n)`: n calls of `step(i)`, after 10 warm-up calls (`timing.median_rate` times such runners)."""
  for i in range(10):
    step(i)

  def run(n: int) -> None:
    for i in range(n):
      step(i)

  return run


def calls_per_window(batch_size: int) -> int:
  """Steps per timed window: at least 640 images and 10 steps."""
  return max(10, 640 // batch_size)


def steps_per_second(batch_size: int, windows: int = 7, latent_dim: int = 100, seed: int = 0) -> float:
  """Median steps/s of the tutorial's step at `batch_size` on random data held in memory."""
  run = warmed_runner(tutorial_step(batch_size, latent_dim, seed))
  return timing.median_rate(run, calls_per_window(batch_size), windows)


def tutorial_step(batch_size: int, latent_dim: int = 100, seed: int = 0) -> Callable[[int], None]:
  """`step(i)`: one tutorial step at `batch_size` on random data held in memory."""
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

  return step


def _same_pad(size: int, k: int) -> tuple[int, int]:
  """(low, high) padding of a stride-2 'SAME' convolution, as XLA pads it (more on the high side)."""
  out = -(-size // 2)
  total = max((out - 1) * 2 + k - size, 0)
  return total // 2, total - total // 2


class DefaultG(nn.Module):
  """The default's generator: z times a category embedding -> Dense 7x7xF0 -> BN ReLU -> ConvT F1 -> BN ReLU
  -> ConvT 1 -> tanh (4x4 transposed kernels, stride 2, output 2x the input)."""

  def __init__(self, latent_dim=100, categories=10, features=(64, 32), kernel=4, bn_momentum=0.9):
    super().__init__()
    self.features = features
    self.embed = nn.Embedding(categories, latent_dim)
    self.dense = nn.Linear(latent_dim, 7 * 7 * features[0], bias=False)
    self.bn0 = nn.BatchNorm1d(7 * 7 * features[0], momentum=1 - bn_momentum)
    # Stride 2, padding 1 with a 4x4 kernel: the output is exactly 2x the input, as XLA's 'SAME'.
    self.up1 = nn.ConvTranspose2d(features[0], features[1], kernel, 2, padding=1, bias=False)
    self.bn1 = nn.BatchNorm2d(features[1], momentum=1 - bn_momentum)
    self.up2 = nn.ConvTranspose2d(features[1], 1, kernel, 2, padding=1)

  def forward(self, z, labels):
    x = torch.relu(self.bn0(self.dense(z * self.embed(labels))))
    x = x.view(-1, 7, 7, self.features[0]).permute(0, 3, 1, 2)  # ganjax's Dense output is laid out NHWC
    x = torch.relu(self.bn1(self.up1(x)))
    return torch.tanh(self.up2(x))


class DefaultD(nn.Module):
  """The default's discriminator: Conv 32, 64, 128 (3x3, stride 2, 'SAME', LeakyReLU 0.2) -> minibatch std
  -> Dense 256 LeakyReLU -> logit, and the InfoGAN Q head (Dense over the categories) on the same features."""

  def __init__(self, features=(32, 64, 128), hidden=256, categories=10, size=28):
    super().__init__()
    self.convs, self.pads = nn.ModuleList(), []
    channels = 1
    for width in features:
      self.pads.append(_same_pad(size, 3))
      self.convs.append(nn.Conv2d(channels, width, 3, stride=2))
      channels, size = width, -(-size // 2)
    self.hidden = nn.Linear(size * size * (channels + 1), hidden)
    self.logit = nn.Linear(hidden, 1)
    self.q = nn.Linear(hidden, categories)

  def forward(self, x):
    for conv, (low, high) in zip(self.convs, self.pads, strict=True):
      x = F.leaky_relu(conv(F.pad(x, (low, high, low, high))), 0.2)
    std = torch.sqrt(x.var(dim=0, unbiased=False) + 1e-8).mean()  # minibatch std (Karras et al. 2018)
    x = torch.cat([x, std.expand(x.shape[0], 1, *x.shape[2:])], dim=1)
    x = x.permute(0, 2, 3, 1).flatten(1)  # NHWC order, as ganjax flattens
    x = F.leaky_relu(self.hidden(x), 0.2)
    return self.logit(x)[:, 0], self.q(x)


def load_flax(g: DefaultG, d: DefaultD, g_params, g_stats, d_params) -> None:
  """Copies ganjax's default G and D (params and G's BatchNorm statistics) into the twins."""

  def t(x):
    return torch.from_numpy(np.array(x, np.float32))

  with torch.no_grad():
    g.embed.weight.copy_(t(g_params['Embed_0']['embedding']))
    g.dense.weight.copy_(t(g_params['Dense_0']['kernel']).T)
    for bn, name in ((g.bn0, 'BatchNorm_0'), (g.bn1, 'BatchNorm_1')):
      bn.weight.copy_(t(g_params[name]['scale']))
      bn.bias.copy_(t(g_params[name]['bias']))
      bn.running_mean.copy_(t(g_stats[name]['mean']))
      bn.running_var.copy_(t(g_stats[name]['var']))
    for up, name in ((g.up1, 'ConvTranspose_0'), (g.up2, 'ConvTranspose_1')):
      # ganjax (lax.conv_transpose) does not flip the kernel; PyTorch's transposed convolution does.
      up.weight.copy_(t(g_params[name]['kernel']).flip(0, 1).permute(2, 3, 0, 1))
    g.up2.bias.copy_(t(g_params['ConvTranspose_1']['bias']))
    for i, conv in enumerate(d.convs):
      conv.weight.copy_(t(d_params[f'Conv_{i}']['kernel']).permute(3, 2, 0, 1))
      conv.bias.copy_(t(d_params[f'Conv_{i}']['bias']))
    for layer, name in ((d.hidden, 'Hidden'), (d.logit, 'Dense_0'), (d.q, 'Q')):
      layer.weight.copy_(t(d_params[name]['kernel']).T)
      layer.bias.copy_(t(d_params[name]['bias']))


def default_d_loss(g: DefaultG, d: DefaultD, real, z, labels, info_weight: float = 0.2):
  """D's joint loss: half of (BCE on the reals + BCE on G's detached fakes + w x Q's cross-entropy)."""
  with torch.no_grad():
    fakes = g(z, labels)
  real_logits, _ = d(real)
  fake_logits, q = d(fakes)
  bce = F.binary_cross_entropy_with_logits
  real_loss = bce(real_logits, torch.ones_like(real_logits))
  return 0.5 * (real_loss + bce(fake_logits, torch.zeros_like(fake_logits)) + info_weight * F.cross_entropy(q, labels))


def default_g_loss(g: DefaultG, d: DefaultD, z, labels, info_weight: float = 0.2):
  """G's loss through the frozen D (its params out of autograd): BCE towards 'real' + w x Q's cross-entropy."""
  d.requires_grad_(False)
  logits, q = d(g(z, labels))
  d.requires_grad_(True)
  ones = torch.ones_like(logits)
  return F.binary_cross_entropy_with_logits(logits, ones) + info_weight * F.cross_entropy(q, labels)


def default_step(batch_size: int, seed: int = 0, num_steps: int = 4000) -> Callable[[int], None]:
  """`step(i)`: one step of the default at `batch_size`: one joint D step, one G step through the frozen D,
  Adam(1e-3, 0.5, 0.99, eps 1e-7) decaying linearly to 0, and G's EMA (0.999) with its own BatchNorm
  statistics advanced by a forward pass on the same latents, as ganjax does."""
  torch.manual_seed(seed)
  g, d = DefaultG(), DefaultD()
  ema = copy.deepcopy(g).requires_grad_(False)
  opts = [torch.optim.Adam(m.parameters(), lr=1e-3, betas=(0.5, 0.99), eps=1e-7) for m in (g, d)]
  scheds = [torch.optim.lr_scheduler.LambdaLR(o, lambda i: max(0.0, 1 - i / num_steps)) for o in opts]
  data = torch.rand(10_000, 1, 28, 28) * 2 - 1

  def step(i: int) -> None:
    real = data[torch.randint(0, len(data), (batch_size,))]
    z, c = torch.randn(batch_size, 100), torch.randint(0, 10, (batch_size,))
    opts[1].zero_grad(set_to_none=True)
    default_d_loss(g, d, real, z, c).backward()
    opts[1].step()
    z, c = torch.randn(batch_size, 100), torch.randint(0, 10, (batch_size,))
    opts[0].zero_grad(set_to_none=True)
    default_g_loss(g, d, z, c).backward()  # through the updated D, as ganjax's alternating step
    opts[0].step()
    for sched in scheds:
      sched.step()
    with torch.no_grad():
      torch._foreach_lerp_(list(ema.parameters()), list(g.parameters()), 1 - 0.999)
      ema(z, c)  # advances the EMA generator's own BatchNorm statistics (train mode)

  g.train(), d.train(), ema.train()
  return step
