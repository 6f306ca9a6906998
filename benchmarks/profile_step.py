"""Where the tutorial step's time goes: its parts timed alone, in JAX (XLA:CPU) and in PyTorch.

  python benchmarks/profile_step.py [--batch 256] [--windows 5]
  python benchmarks/profile_step.py --ops [--config experiments/mnist_dcgan.py] [--batch 64] [--top 25]

Times, at one batch size, each piece of the step as its own jitted function
(JAX) or eager call (PyTorch, when installed): G forward, G forward+backward,
D forward, D forward+backward (w.r.t. params, and w.r.t. params and input as
in G's update), the Adam update of each network, and the whole step. The
pieces do not add up exactly to the step (XLA fuses across them), but they
show which layers XLA:CPU runs slower than PyTorch's kernels. A script that
prints numbers, not a test.

`--ops` instead traces the real, whole train step of any experiment with
`jax.profiler` and ranks the compiled program's XLA operations by wall time,
each with its output shape and the model code it came from (XLA's op_name
metadata, e.g. `transpose(jvp(Discriminator))/Conv_1/dot_general` is the
backward pass of D's second convolution). On XLA:CPU an op's multi-threaded
work runs in a thread pool the trace does not name, so each op is charged the
wall time from its launch to the next op's launch: ops that overlap share it.
"""

import argparse
import collections
import pathlib
import re
import tempfile
import time

import jax
import jax.numpy as jnp
import optax
import timing

from ganjax import input_pipeline, losses, objectives, samplers, states, train_step
from ganjax.config import load_experiment, tutorial_config

_rate = timing.median_ms  # milliseconds per call (also imported by kernels.py)


def jax_parts(batch: int, windows: int) -> dict[str, float]:
  config = tutorial_config()
  g_state, d_state = states.create_states(config, jax.random.key(0))
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
  cfg = objectives.StepConfig.from_config(config)
  step = jax.jit(lambda g, d, b, r: train_step.train_step(g, d, b, r, cfg))

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
    'whole step': _rate(block(lambda: step(g_state, d_state, {'image': x}, jax.random.key(3))), windows),
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


def _op_sources(hlo_text: str) -> dict[str, str]:
  """Instruction name -> 'shape  op_name' from compiled HLO text."""
  pattern = re.compile(r'^\s+%([\w.\-]+) = (\S+) .*?op_name="([^"]+)"', re.M)
  return {
    m.group(1): f'{m.group(2).split("{")[0]}  {m.group(3).removeprefix("jit(_fun)/")}'
    for m in pattern.finditer(hlo_text)
  }


def op_profile(config, steps: int) -> tuple[float, list[tuple[float, str, str]]]:
  """Milliseconds per step and (ms per step, XLA op, shape and source) of the real train step, slowest first."""
  replicated = train_step.replicate(states.create_states(config, jax.random.key(0)))
  step = train_step.make_train_step(config)
  sampler = samplers.make_sampler(config, input_pipeline.load(config), jax.random.key(1))
  batch, key = sampler.batch(0), jax.random.key(2)
  sources = _op_sources(step.lower(*replicated, batch, key).compile().as_text())
  state = list(replicated)

  def run(n):
    for _ in range(n):
      state[0], state[1], metrics = step(state[0], state[1], batch, key)
    jax.block_until_ready(metrics)

  run(3)  # compile and warm up outside the trace
  with tempfile.TemporaryDirectory() as trace_dir:
    t0 = time.perf_counter()
    with jax.profiler.trace(trace_dir):
      run(steps)
    ms_per_step = (time.perf_counter() - t0) / steps * 1e3
    (path,) = pathlib.Path(trace_dir).rglob('*.xplane.pb')
    profile = jax.profiler.ProfileData.from_file(str(path))
  starts = []  # (start ns, op) of every XLA op launched on the host's executor threads
  for plane in profile.planes:
    for line in plane.lines if plane.name == '/host:CPU' else ():
      if line.name == 'python':
        continue
      for event in line.events:
        if '::' not in event.name:  # XLA ops, not the executor's and thread pool's own events
          starts.append((event.start_ns, event.name.removeprefix('end: ')))
  starts.sort()
  charged = collections.Counter()
  for (t, op), (t_next, _) in zip(starts, starts[1:], strict=False):
    charged[op] += t_next - t
  rows = [(ns / 1e6 / steps, op, sources.get(op, '')) for op, ns in charged.most_common()]
  return ms_per_step, rows


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--batch', type=int, default=None, help="default: 256 (with --ops: the config's)")
  parser.add_argument('--windows', type=int, default=5)
  parser.add_argument('--ops', action='store_true', help="rank the whole step's XLA ops by wall time")
  parser.add_argument('--config', default=None, help='with --ops: an experiment file (default: the tutorial)')
  parser.add_argument('--top', type=int, default=25, help='with --ops: how many ops to list')
  parser.add_argument('--steps', type=int, default=10, help='with --ops: traced steps')
  args = parser.parse_args()
  args.batch_given = args.batch is not None
  args.batch = args.batch or 256
  if args.ops:
    config = load_experiment(args.config) if args.config else tutorial_config()
    if args.batch_given:
      config.train.batch_size = args.batch
    ms, rows = op_profile(config, args.steps)
    traced = sum(r[0] for r in rows)
    print(f'{args.config or "tutorial"}, batch {config.train.batch_size}: {ms:.1f} ms per step while traced,')
    print(f'{traced:.1f} ms of it charged to XLA ops; the slowest {args.top}:')
    print(f'{"ms/step":>8}{"share":>7}  {"op":<28}shape  source')
    for ms_op, op, source in rows[: args.top]:
      print(f'{ms_op:>8.2f}{100 * ms_op / traced:>6.1f}%  {op:<28}{source}')
    return
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
