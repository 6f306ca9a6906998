"""Where the tutorial step's time goes: its parts timed alone, in JAX (XLA:CPU) and in PyTorch.

  python benchmarks/profile_step.py [--batch 256] [--windows 5]

Times, at one batch size, each piece of the step as its own jitted function
(JAX) or eager call (PyTorch, when installed): G forward, G forward+backward,
D forward, D forward+backward (w.r.t. params, and w.r.t. params and input as
in G's update), the Adam update of each network, and the whole step. The
pieces do not add up exactly to the step (XLA fuses across them), but they
show which layers XLA:CPU runs slower than PyTorch's kernels. A script that
prints numbers, not a test.
"""

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import optax

from ganjax import losses, train_step
from ganjax.config import tutorial_config


def _rate(fn, windows: int, calls: int = 10) -> float:
  """Median milliseconds per call over timed windows, after a warm-up call."""
  fn()
  times = []
  for _ in range(windows):
    t0 = time.perf_counter()
    for _ in range(calls):
      fn()
    times.append((time.perf_counter() - t0) / calls * 1e3)
  return statistics.median(times)


def jax_parts(batch: int, windows: int) -> dict[str, float]:
  config = tutorial_config()
  g_state, d_state = train_step.create_states(config, jax.random.key(0))
  g_apply = lambda p, z: g_state.apply_fn({'params': p}, z, train=True)  # noqa: E731
  d_apply = lambda p, x: d_state.apply_fn({'params': p}, x, train=True)  # noqa: E731
  z = jax.random.normal(jax.random.key(1), (batch, 100))
  x = jax.random.uniform(jax.random.key(2), (batch, 28, 28, 1), minval=-1, maxval=1)
  gp, dp = g_state.params, d_state.params
  g_fwd = jax.jit(g_apply)
  g_bwd = jax.jit(jax.grad(lambda p, z: jnp.sum(g_apply(p, z))))
  d_fwd = jax.jit(d_apply)
  d_bwd = jax.jit(jax.grad(lambda p, x: losses.bce(d_apply(p, x), 1.0)))
  d_bwd_x = jax.jit(jax.grad(lambda p, x: losses.bce(d_apply(p, x), 1.0), argnums=(0, 1)))
  tx = optax.adam(2e-4, b1=0.5)
  g_opt, d_opt = tx.init(gp), tx.init(dp)
  adam = jax.jit(lambda p, s, g: optax.apply_updates(p, tx.update(g, s, p)[0]))
  step = jax.jit(train_step.train_step)

  def block(f):
    return lambda: jax.block_until_ready(f())

  return {
    'G forward': _rate(block(lambda: g_fwd(gp, z)), windows),
    'G forward+backward': _rate(block(lambda: g_bwd(gp, z)), windows),
    'D forward': _rate(block(lambda: d_fwd(dp, x)), windows),
    'D forward+backward (params)': _rate(block(lambda: d_bwd(dp, x)), windows),
    'D forward+backward (params, input)': _rate(block(lambda: d_bwd_x(dp, x)), windows),
    'Adam update G': _rate(block(lambda: adam(gp, g_opt, gp)), windows),
    'Adam update D': _rate(block(lambda: adam(dp, d_opt, dp)), windows),
    'whole step': _rate(block(lambda: step(g_state, d_state, x, jax.random.key(3))), windows),
  }


def torch_parts(batch: int, windows: int) -> dict[str, float] | None:
  try:
    import torch
    import torch_gan  # benchmarks/ is on sys.path when this file runs as a script
  except ImportError:
    return None
  torch.manual_seed(0)
  g, d = torch_gan.make_models()
  z = torch.randn(batch, 100)
  x = torch.rand(batch, 1, 28, 28) * 2 - 1
  bce = torch.nn.BCEWithLogitsLoss()
  ones = torch.ones(batch, 1)
  g_opt = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
  d_opt = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))

  def g_fwd():
    with torch.no_grad():
      g(z)

  def g_bwd():
    g.zero_grad(set_to_none=True)
    g(z).sum().backward()

  def d_fwd():
    with torch.no_grad():
      d(x)

  def d_bwd():
    d.zero_grad(set_to_none=True)
    bce(d(x), ones).backward()

  def d_bwd_x():
    d.zero_grad(set_to_none=True)
    xi = x.clone().requires_grad_(True)
    bce(d(xi), ones).backward()

  g_bwd()
  d_bwd()
  parts = {
    'G forward': _rate(g_fwd, windows),
    'G forward+backward': _rate(g_bwd, windows),
    'D forward': _rate(d_fwd, windows),
    'D forward+backward (params)': _rate(d_bwd, windows),
    'D forward+backward (params, input)': _rate(d_bwd_x, windows),
    'Adam update G': _rate(g_opt.step, windows),
    'Adam update D': _rate(d_opt.step, windows),
  }
  parts['whole step'] = 1e3 / torch_gan.steps_per_second(batch, windows)
  return parts


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--batch', type=int, default=256)
  parser.add_argument('--windows', type=int, default=5)
  args = parser.parse_args()
  ours = jax_parts(args.batch, args.windows)
  theirs = torch_parts(args.batch, args.windows)
  print(f'batch {args.batch}, milliseconds per call (median of {args.windows} windows)')
  print(f'{"part":<38}{"jax ms":>9}{"torch ms":>10}{"jax/torch":>11}')
  for name, ms in ours.items():
    other = theirs[name] if theirs else float('nan')
    print(f'{name:<38}{ms:>9.2f}{other:>10.2f}{ms / other:>10.2f}x')
  if theirs is None:
    print('torch is not installed: PyTorch columns are empty (pip install torch==2.13.0)')


if __name__ == '__main__':
  main()
