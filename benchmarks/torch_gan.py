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


def warmed_runner(step, warm: int = 10) -> Callable[[int], None]:
  """`run(n)`: n calls of `step(i)`, after `warm` warm-up calls (`timing.median_rate` times such runners)."""
  for i in range(warm):
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


# The SNGAN ResNet of experiments/images_sngan.py (ganjax/resnet.py), as mimicry's `sngan_32.py` writes it.


def _up(x):
  return F.interpolate(x, scale_factor=2, mode='nearest')


def _sn(layer: nn.Module) -> nn.Module:
  return nn.utils.parametrizations.spectral_norm(layer)


class SNGANGBlock(nn.Module):
  """(BN, ReLU, nearest 2x, conv3, BN, ReLU, conv3) + conv1(nearest 2x)."""

  def __init__(self, c_in: int, c_out: int):
    super().__init__()
    self.b1, self.b2 = nn.BatchNorm2d(c_in), nn.BatchNorm2d(c_out)
    self.c1, self.c2 = nn.Conv2d(c_in, c_out, 3, 1, 1), nn.Conv2d(c_out, c_out, 3, 1, 1)
    self.c_sc = nn.Conv2d(c_in, c_out, 1)

  def forward(self, x):
    h = self.c1(_up(torch.relu(self.b1(x))))
    return self.c2(torch.relu(self.b2(h))) + self.c_sc(_up(x))


class SNGANG(nn.Module):
  """z -> Linear to 4x4xF0 -> upsampling blocks -> BN, ReLU, conv3 to 3 channels, tanh."""

  def __init__(self, latent_dim: int = 128, widths=(256, 256, 256), channels: int = 3):
    super().__init__()
    self.width = widths[0]
    self.l1 = nn.Linear(latent_dim, 16 * widths[0])
    self.blocks = nn.Sequential(*[SNGANGBlock(a, b) for a, b in zip((widths[0], *widths[:-1]), widths, strict=True)])
    self.b_out, self.c_out = nn.BatchNorm2d(widths[-1]), nn.Conv2d(widths[-1], channels, 3, 1, 1)

  def forward(self, z):
    x = self.l1(z).view(-1, 4, 4, self.width).permute(0, 3, 1, 2)  # ganjax's Dense output is laid out NHWC
    return torch.tanh(self.c_out(torch.relu(self.b_out(self.blocks(x)))))


class SNGANDBlock(nn.Module):
  """(ReLU, conv3, ReLU, conv3[, pool]) + shortcut, spectrally normalised; the optimised first block:
  (conv3, ReLU, conv3, pool) + conv1(pool(x))."""

  def __init__(self, c_in: int, c_out: int, downsample: bool, optimised: bool = False):
    super().__init__()
    self.downsample, self.optimised = downsample, optimised
    self.c1, self.c2 = _sn(nn.Conv2d(c_in, c_out, 3, 1, 1)), _sn(nn.Conv2d(c_out, c_out, 3, 1, 1))
    learnable = optimised or downsample or c_in != c_out
    self.c_sc = _sn(nn.Conv2d(c_in, c_out, 1)) if learnable else None

  def forward(self, x):
    h = self.c2(torch.relu(self.c1(x if self.optimised else torch.relu(x))))
    if self.downsample:
      h = F.avg_pool2d(h, 2)
    if self.optimised:
      return h + self.c_sc(F.avg_pool2d(x, 2))
    if self.c_sc is None:
      return h + x
    shortcut = self.c_sc(x)
    return h + (F.avg_pool2d(shortcut, 2) if self.downsample else shortcut)


class SNGAND(nn.Module):
  """Optimised block, downsampling blocks, two plain blocks, ReLU, sum over positions, SN linear."""

  def __init__(self, widths=(128, 128, 128, 128), channels: int = 3):
    super().__init__()
    downs = len(widths) - 2
    ins = (channels, *widths[:-1])
    self.blocks = nn.Sequential(
      *[SNGANDBlock(a, b, i < downs, i == 0) for i, (a, b) in enumerate(zip(ins, widths, strict=True))]
    )
    self.l_out = _sn(nn.Linear(widths[-1], 1))

  def forward(self, x):
    return self.l_out(torch.relu(self.blocks(x)).sum(dim=(2, 3)))[:, 0]


def _top_singular(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
  u, _, vh = torch.linalg.svd(weight.flatten(1), full_matrices=False)
  return u[:, 0].contiguous(), vh[0].contiguous()


def load_sngan(g: SNGANG, d: SNGAND, g_params, g_stats, d_params) -> dict:
  """Copies ganjax's SNGAN G (params, BatchNorm statistics) and D into the twins. Each spectrally
  normalised layer gets its weight's exact top singular vectors in both frameworks (the twin's `_u`,
  `_v`; returned as ganjax's D `batch_stats`, whose `u` is the same vector), so that both divide by
  the exact largest singular value: torch's power iteration ends on v and flax's on u, so equal
  estimates after a step need converged vectors."""

  def t(x):
    return torch.from_numpy(np.array(x, np.float32))

  def copy_bn(bn, params, stats):
    bn.weight.copy_(t(params['BatchNorm_0']['scale']))
    bn.bias.copy_(t(params['BatchNorm_0']['bias']))
    bn.running_mean.copy_(t(stats['BatchNorm_0']['mean']))
    bn.running_var.copy_(t(stats['BatchNorm_0']['var']))

  def copy_conv(conv, params):
    weight = conv.parametrizations.weight.original if hasattr(conv, 'parametrizations') else conv.weight
    weight.copy_(t(params['kernel']).permute(3, 2, 0, 1) if params['kernel'].ndim == 4 else t(params['kernel']).T)
    conv.bias.copy_(t(params['bias']))

  d_stats = {}
  with torch.no_grad():
    g.l1.weight.copy_(t(g_params['l1']['kernel']).T)  # its output laid out NHWC, as the twin's view expects
    g.l1.bias.copy_(t(g_params['l1']['bias']))
    for i, block in enumerate(g.blocks):
      p, s = g_params[f'block{i + 2}'], g_stats[f'block{i + 2}']
      copy_bn(block.b1, p['b1'], s['b1'])
      copy_bn(block.b2, p['b2'], s['b2'])
      for name in ('c1', 'c2', 'c_sc'):
        copy_conv(getattr(block, name), p[name])
    copy_bn(g.b_out, g_params['b_out'], g_stats['b_out'])
    copy_conv(g.c_out, g_params['c_out'])
    named = [(f'block{i + 1}', n, getattr(b, n)) for i, b in enumerate(d.blocks) for n in ('c1', 'c2', 'c_sc')]
    for block, name, layer in [*named, (None, 'l_out', d.l_out)]:
      if layer is None:
        continue
      copy_conv(layer, d_params[block][name] if block else d_params[name])
      u, v = _top_singular(layer.parametrizations.weight.original)
      sn = layer.parametrizations.weight[0]
      sn._u.copy_(u), sn._v.copy_(v)
      stats = {f'{name}/kernel/u': u[None].numpy(), f'{name}/kernel/sigma': np.float32(0)}
      (d_stats.setdefault(block, {}) if block else d_stats)[f'{name}_sn'] = stats
  return d_stats


def hinge_d_loss(d: SNGAND, real, fakes):
  """D's joint hinge loss, half the sum as ganjax's joint update: 0.5 (E relu(1 - D(x)) + E relu(1 + D(G(z))))."""
  return 0.5 * (torch.relu(1 - d(real)).mean() + torch.relu(1 + d(fakes)).mean())


def hinge_g_loss(g: SNGANG, d: SNGAND, z):
  """G's hinge loss, -E D(G(z)), through D with its params out of autograd and its spectral-norm
  vectors not advanced (eval mode: D has no other train-mode layer), as ganjax's `update_stats=False`."""
  d.requires_grad_(False), d.eval()
  loss = -d(g(z)).mean()
  d.requires_grad_(True), d.train()
  return loss


def sngan_step(
  batch_size: int,
  seed: int = 0,
  n_critic: int = 5,
  num_steps: int = 100_000,
  g_widths=(256,) * 3,
  d_widths=(128,) * 4,
  size: int = 32,
) -> Callable[[int], None]:
  """`step(i)`: one step of experiments/images_sngan.py at `batch_size`: `n_critic` D updates, each on
  its own real batch and G's detached fakes (train-mode G), then one G update; Adam(2e-4, (0.0, 0.9))
  for both, decaying linearly to 0 over `num_steps` G steps (D's over its own updates)."""
  torch.manual_seed(seed)
  g, d = SNGANG(128, g_widths), SNGAND(d_widths)
  g_opt = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.0, 0.9))
  d_opt = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.0, 0.9))
  g_sched = torch.optim.lr_scheduler.LambdaLR(g_opt, lambda i: max(0.0, 1 - i / num_steps))
  d_sched = torch.optim.lr_scheduler.LambdaLR(d_opt, lambda i: max(0.0, 1 - i / (n_critic * num_steps)))
  data = torch.rand(10_000, 3, size, size) * 2 - 1

  def step(i: int) -> None:
    for _ in range(n_critic):
      real = data[torch.randint(0, len(data), (batch_size,))]
      with torch.no_grad():
        fakes = g(torch.randn(batch_size, 128))
      d_opt.zero_grad(set_to_none=True)
      hinge_d_loss(d, real, fakes).backward()
      d_opt.step()
      d_sched.step()
    g_opt.zero_grad(set_to_none=True)
    hinge_g_loss(g, d, torch.randn(batch_size, 128)).backward()
    g_opt.step()
    g_sched.step()

  g.train(), d.train()
  return step
