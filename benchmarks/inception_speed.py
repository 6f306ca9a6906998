"""Inception features of 32x32 samples on XLA:CPU: lax.conv (YNNPACK, Eigen) against patches, and batch size.

  python benchmarks/inception_speed.py [--probe 400] [--num 10000] [--batches 25,50,100,200] [--json] [--doc]

Each variant runs `ganjax.inception.extract` (FIDInception on random weights: the speed does not depend
on the values) over `--probe` random 32x32 RGB images in a fresh process, compiled first, and reports
images per second:
- `xla`: flax's `nn.Conv` (lax.conv), XLA:CPU's default convolutions (YNNPACK);
- `xla_eigen`: the same with `ganjax.host.EIGEN_CONV_FLAG` (Eigen's convolutions);
- `patches`: every convolution as `lax.conv_general_dilated_patches` and one matmul (im2col), put in
  place of `nn.Conv` by `flax.linen.intercept_methods`.
Then the fastest variant extracts the features of `--num` images (10,000: what a periodic evaluation or
`ganjax.evaluate` of that many samples costs), timed end to end after compiling. A benchmark, not a test.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

START, END = '<!-- inception-speed:start -->', '<!-- inception-speed:end -->'


def patches_conv(next_fun, args, kwargs, context):
  """An `nn.intercept_methods` interceptor: nn.Conv's call as im2col and one matmul, same parameters."""
  import flax.linen as nn
  import jax
  import jax.numpy as jnp

  module = context.module
  if not isinstance(module, nn.Conv) or context.method_name != '__call__':
    return next_fun(*args, **kwargs)
  (x,) = args
  kernel = module.variables['params']['kernel']  # (kh, kw, C_in, C_out)
  kh, kw, c_in, c_out = kernel.shape
  strides = module.strides if isinstance(module.strides, tuple) else (module.strides,) * 2
  if (kh, kw) == (1, 1) and strides == (1, 1):
    return x @ kernel.reshape(c_in, c_out)
  # The patches' feature order is (C_in, kh, kw): the kernel is reordered to match.
  p = jax.lax.conv_general_dilated_patches(
    x, (kh, kw), strides, module.padding, dimension_numbers=('NHWC', 'HWIO', 'NHWC')
  )
  return p @ jnp.transpose(kernel, (2, 0, 1, 3)).reshape(c_in * kh * kw, c_out)


def run_variant(impl: str, batch: int, num: int) -> dict:
  """Images per second of `extract` over `num` images at `batch`, compiled before timing."""
  import contextlib

  import flax.linen as nn
  import jax
  import jax.numpy as jnp

  from ganjax import inception

  variables = jax.jit(inception.FIDInception().init)(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
  images = np.random.default_rng(0).integers(0, 256, (num, 32, 32, 3), dtype=np.uint8)
  inception._apply.cache_clear()
  scope = nn.intercept_methods(patches_conv) if impl == 'patches' else contextlib.nullcontext()
  with scope:
    t0 = time.perf_counter()
    inception.extract(variables, images[:batch], batch)
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    pool, _ = inception.extract(variables, images, batch)
    seconds = time.perf_counter() - t0
  assert np.isfinite(pool).all()
  return {'images_per_s': num / seconds, 'seconds': seconds, 'compile_s': compile_s}


def measure(impl: str, batch: int, num: int) -> dict:
  """`run_variant` in a fresh process (XLA reads its flags once; each variant compiles its own program)."""
  from ganjax.host import EIGEN_CONV_FLAG

  env = dict(os.environ)
  if impl == 'xla_eigen':
    env['XLA_FLAGS'] = f'{env.get("XLA_FLAGS", "")} {EIGEN_CONV_FLAG}'.strip()
  cmd = [sys.executable, __file__, '--worker', impl, '--batch', str(batch), '--num', str(num)]
  done = subprocess.run(cmd, env=env, capture_output=True, text=True)
  if done.returncode:
    raise SystemExit(f'{impl} at batch {batch} failed:\n{done.stderr[-2000:]}')
  return json.loads(done.stdout.splitlines()[-1])


def doc_table(probe: dict, full: dict, args) -> str:
  import datetime

  from quality import machine
  from readme_block import code_now

  impls, batches = sorted({k.split('|')[0] for k in probe}), sorted({int(k.split('|')[1]) for k in probe})
  names = {'xla': 'lax.conv (YNNPACK)', 'xla_eigen': 'lax.conv (Eigen)', 'patches': 'patches (im2col)'}
  lines = [
    f'Written by `python benchmarks/inception_speed.py --doc` on {datetime.date.today()}: {code_now()}; '
    f'{machine()}. FID Inception features (`ganjax.inception.extract`) of random 32x32 RGB images, images per '
    f'second over {args.probe} images after compiling, one process per cell:',
    '',
    '| convolutions | ' + ' | '.join(f'batch {b}' for b in batches) + ' |',
    '| --- |' + ' ---: |' * len(batches),
  ]
  for impl in impls:
    cells = [f'{probe[f"{impl}|{b}"]["images_per_s"]:.1f}' for b in batches]
    lines.append(f'| {names[impl]} | ' + ' | '.join(cells) + ' |')
  lines += [
    '',
    f'The fastest, {names[full["impl"]]} at batch {full["batch"]}: {args.num} images in {full["seconds"]:.0f} s '
    f'({full["images_per_s"]:.1f} images/s; compiling took {full["compile_s"]:.0f} s more).',
  ]
  return '\n'.join(lines)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--probe', type=int, default=400, help='images per variant')
  parser.add_argument('--num', type=int, default=10_000, help='images for the fastest variant (0: skip)')
  parser.add_argument('--batches', default='25,50,100,200')
  parser.add_argument('--impls', default='xla,xla_eigen,patches')
  parser.add_argument('--json', action='store_true')
  parser.add_argument('--doc', action='store_true', help='write the table into docs/performance.md')
  parser.add_argument('--worker', help=argparse.SUPPRESS)
  parser.add_argument('--batch', type=int, help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.worker:
    print(json.dumps(run_variant(args.worker, args.batch, args.num)))
    return
  probe = {}
  for impl in args.impls.split(','):
    for batch in map(int, args.batches.split(',')):
      probe[f'{impl}|{batch}'] = measure(impl, batch, args.probe)
      print(f'{impl:>10} batch {batch:>4}: {probe[f"{impl}|{batch}"]["images_per_s"]:.1f} images/s', flush=True)
  best = max(probe, key=lambda k: probe[k]['images_per_s'])
  impl, batch = best.split('|')
  full = {'impl': impl, 'batch': int(batch)}
  if args.num:
    full.update(measure(impl, int(batch), args.num))
    print(f'{impl} batch {batch}: {args.num} images in {full["seconds"]:.1f} s ({full["images_per_s"]:.1f}/s)')
  if args.doc and args.num:
    from readme_block import DOCS, write

    write(START, END, doc_table(probe, full, args), DOCS / 'performance.md')
  if args.json:
    print(json.dumps({'probe': probe, 'full': full}))


if __name__ == '__main__':
  main()
