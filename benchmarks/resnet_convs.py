"""The SNGAN ResNet's convolutions on XLA:CPU: lax.conv (YNNPACK, and Eigen through a flag), patches, ganjax's.

  python benchmarks/resnet_convs.py [--batch 16] [--windows 5] [--json] [--doc]

Times forward + backward (gradients of the input and the kernel) of the ResNet's convolutions at
their 32x32 sizes: G's upsampling block's first convolution with its nearest-neighbour 2x before it,
G's and D's stride-1 3x3s, and D's first block's second convolution with the 2x2 average pooling
after it. Each as:
- `xla`: `lax.conv_general_dilated` (flax's `nn.Conv`), XLA:CPU's default (YNNPACK) convolutions;
- `patches`: the 9 shifted copies of the padded input concatenated and one matmul (im2col), as
  `ganjax.patch_conv` does for stride 2, its backward written by autodiff;
- `ganjax`: what `resnet` runs on CPU: the upsampling convolution by its four output phases
  (`resnet.upsample_conv`, 16 taps per 2x2 output block instead of 36), the convolution and pooling
  as one 2x2 convolution of the space-to-depth (`resnet.conv_pool`, 16 taps per pooled output
  instead of 36), G's other 3x3s by Winograd's F(2x2, 3x3) (`ganjax.winograd`), D's by lax.conv;
each also with `ganjax.host.EIGEN_CONV_FLAG` (Eigen's convolutions), in a subprocess. The winner is
what `model.*_conv_impl='auto'` should pick for `resnet` on CPU. A benchmark, not a test.
"""

import argparse
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import timing

from ganjax import winograd
from ganjax.host import EIGEN_CONV_FLAG
from ganjax.resnet import _avg_pool, conv_pool, upsample_conv

# (name, side, C_in, C_out, kind): G's 32x32 block (256 channels) and D's first blocks (128); kind 'up'
# (nearest 2x first), 'g' (G's stride-1 3x3: Winograd in ganjax), 'plain' or 'pool' (2x2 average pooling after).
CASES = (
  ('G up 16->32, 3x3 256->256', 16, 256, 256, 'up'),
  ('G 32x32, 3x3 256->256', 32, 256, 256, 'g'),
  ('D 32x32, 3x3 3->128', 32, 3, 128, 'plain'),
  ('D 32x32, 3x3 128->128', 32, 128, 128, 'plain'),
  ('D 32x32, 3x3 128->128, pool', 32, 128, 128, 'pool'),
  ('D 16x16, 3x3 128->128', 16, 128, 128, 'plain'),
)
IMPLS = ('xla', 'patches', 'ganjax')


def _upsample(x):
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def conv_xla(x, w):
  return jax.lax.conv_general_dilated(x, w, (1, 1), ((1, 1), (1, 1)), dimension_numbers=('NHWC', 'HWIO', 'NHWC'))


def conv_patches(x, w):
  """3x3, stride 1, padding 1 as one matmul over the 9 taps (ordered as the HWIO kernel reshaped)."""
  b, h, wd, c = x.shape
  p = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  taps = jnp.concatenate([p[:, t : t + h, u : u + wd] for t in range(3) for u in range(3)], axis=-1)
  return taps @ w.reshape(9 * c, -1)


def layer(impl: str, kind: str):
  """The layer as `impl` computes it; 'ganjax' is what `resnet` runs on CPU (model.*_conv_impl='auto')."""
  if impl == 'ganjax':
    if kind == 'up':
      return upsample_conv
    if kind == 'pool':
      return conv_pool
    return winograd.conv3x3 if kind == 'g' else conv_xla
  conv = conv_patches if impl == 'patches' else conv_xla
  if kind == 'up':
    return lambda x, w: conv(_upsample(x), w)
  if kind == 'pool':
    return lambda x, w: _avg_pool(conv(x, w))
  return conv


def time_case(impl, side, c_in, c_out, kind, batch, windows) -> float:
  """Milliseconds per forward + backward."""
  kx, kw = jax.random.split(jax.random.key(0))
  x = jax.random.normal(kx, (batch, side, side, c_in))
  w = jax.random.normal(kw, (3, 3, c_in, c_out)) * 0.05
  f = layer(impl, kind)
  grad = jax.jit(jax.grad(lambda x, w: jnp.sum(f(x, w) ** 2), argnums=(0, 1)))
  return timing.median_ms(lambda: jax.block_until_ready(grad(x, w)), windows, calls=3)


def run_all(impls, batch: int, windows: int) -> dict:
  return {f'{impl}|{name}': time_case(impl, *case, batch, windows) for impl in impls for name, *case in CASES}


START, END = '<!-- resnet-convs:start -->', '<!-- resnet-convs:end -->'


def doc_table(result: dict, batch: int, windows: int) -> str:
  import datetime

  from quality import machine
  from readme_block import code_now

  lines = [
    f'Written by `python benchmarks/resnet_convs.py --doc` on {datetime.date.today()}: {code_now()}; {machine()}. '
    f'Milliseconds per forward + backward at batch {batch}, median of {windows} windows; "Eigen": '
    "with `ganjax.host.EIGEN_CONV_FLAG`; patches: im2col; ganjax: what `resnet` runs on CPU (G's "
    'upsampling convolution by its four output phases, `resnet.upsample_conv`; a convolution with '
    "pooling after as one 2x2 convolution, `resnet.conv_pool`; G's other 3x3s by Winograd's F(2x2, 3x3), "
    "`ganjax.winograd`; D's by lax.conv).",
    '',
    '| convolution | lax.conv (YNNPACK) | lax.conv (Eigen) | patches | patches (Eigen) | ganjax | ganjax (Eigen) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ]
  for name, *_ in CASES:
    cells = [f'{result[f"{impl}|{name}"]:.1f}' for impl in IMPLS + tuple(f'{i}_eigen' for i in IMPLS)]
    cells = cells[0::3] + cells[1::3] + cells[2::3]  # each impl beside its Eigen run
    lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--batch', type=int, default=16)
  parser.add_argument('--windows', type=int, default=5)
  parser.add_argument('--json', action='store_true')
  parser.add_argument('--doc', action='store_true', help='write the table into docs/performance.md')
  parser.add_argument('--worker', action='store_true', help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.worker:  # under EIGEN_CONV_FLAG
    print(json.dumps(run_all(IMPLS, args.batch, args.windows)))
    return
  result = run_all(IMPLS, args.batch, args.windows)
  env = {**os.environ, 'XLA_FLAGS': f'{os.environ.get("XLA_FLAGS", "")} {EIGEN_CONV_FLAG}'.strip()}
  cmd = [sys.executable, __file__, '--worker', '--batch', str(args.batch), '--windows', str(args.windows)]
  eigen = json.loads(subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout.splitlines()[-1])
  result.update({f'{k.split("|")[0]}_eigen|{k.split("|")[1]}': v for k, v in eigen.items()})
  print(f'batch {args.batch}, ms per forward + backward (median of {args.windows} windows)')
  columns = tuple((name, len(name) + 2) for impl in IMPLS for name in (impl, f'{impl}_eigen'))
  print(f'{"convolution":<30}' + ''.join(f'{impl:>{width}}' for impl, width in columns))
  for name, *_ in CASES:
    cells = (f'{result[f"{impl}|{name}"]:>{width}.1f}' for impl, width in columns)
    print(f'{name:<30}' + ''.join(cells))
  if args.doc:
    from readme_block import DOCS, write

    write(START, END, doc_table(result, args.batch, args.windows), DOCS / 'performance.md')
  if args.json:
    print(json.dumps(result))


if __name__ == '__main__':
  main()
