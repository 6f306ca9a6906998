"""The SNGAN ResNet's convolutions on XLA:CPU: lax.conv (YNNPACK, and Eigen through a flag) against patches.

  python benchmarks/resnet_convs.py [--batch 16] [--windows 5] [--json]

Times forward + backward (gradients of the input and the kernel) of the ResNet's stride-1 convolutions
at their 32x32 sizes, G's upsampling block's first convolution with its nearest-neighbour 2x before
it, and D's 3x3 convolutions, each as:
- `xla`: `lax.conv_general_dilated` (flax's `nn.Conv`), XLA:CPU's default (YNNPACK) convolutions;
- `xla_eigen`: the same with `ganjax.host.EIGEN_CONV_FLAG` (Eigen's convolutions), in a subprocess;
- `patches`: the 9 shifted copies of the padded input concatenated and one matmul (im2col), as
  `ganjax.patch_conv` does for stride 2, its backward written by autodiff; for the upsampling
  convolution, `ganjax.resnet.upsample_conv` instead: four 2x2 convolutions of the input, one per
  output phase (16 taps per 2x2 output block instead of 36), what `resnet`'s G runs by default.
The winner is what `model.*_conv_impl='auto'` should pick for `resnet` on CPU. A benchmark, not a test.
"""

import argparse
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import timing

from ganjax.host import EIGEN_CONV_FLAG
from ganjax.resnet import upsample_conv

# (name, side, C_in, C_out, upsample first): G's 32x32 block (256 channels) and D's first blocks (128).
CASES = (
  ('G up 16->32, 3x3 256->256', 16, 256, 256, True),
  ('G 32x32, 3x3 256->256', 32, 256, 256, False),
  ('D 32x32, 3x3 3->128', 32, 3, 128, False),
  ('D 32x32, 3x3 128->128', 32, 128, 128, False),
  ('D 16x16, 3x3 128->128', 16, 128, 128, False),
)


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


def time_case(impl, side, c_in, c_out, up, batch, windows) -> float:
  """Milliseconds per forward + backward."""
  conv = conv_patches if impl == 'patches' else conv_xla
  kx, kw = jax.random.split(jax.random.key(0))
  x = jax.random.normal(kx, (batch, side, side, c_in))
  w = jax.random.normal(kw, (3, 3, c_in, c_out)) * 0.05

  def loss(x, w):
    if up and impl == 'patches':
      return jnp.sum(upsample_conv(x, w) ** 2)
    return jnp.sum(conv(_upsample(x) if up else x, w) ** 2)

  grad = jax.jit(jax.grad(loss, argnums=(0, 1)))
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
    "with `ganjax.host.EIGEN_CONV_FLAG`; patches: im2col, or for G's upsampling convolution its four "
    'output phases (`resnet.upsample_conv`).',
    '',
    '| convolution | lax.conv (YNNPACK) | lax.conv (Eigen) | patches / phases | patches / phases (Eigen) |',
    '| --- | ---: | ---: | ---: | ---: |',
  ]
  for name, *_ in CASES:
    cells = [f'{result[f"{impl}|{name}"]:.1f}' for impl in ('xla', 'xla_eigen', 'patches', 'patches_eigen')]
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
    print(json.dumps(run_all(['xla', 'patches'], args.batch, args.windows)))
    return
  result = run_all(['xla', 'patches'], args.batch, args.windows)
  env = {**os.environ, 'XLA_FLAGS': f'{os.environ.get("XLA_FLAGS", "")} {EIGEN_CONV_FLAG}'.strip()}
  cmd = [sys.executable, __file__, '--worker', '--batch', str(args.batch), '--windows', str(args.windows)]
  eigen = json.loads(subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout.splitlines()[-1])
  result.update({f'{k.split("|")[0]}_eigen|{k.split("|")[1]}': v for k, v in eigen.items()})
  print(f'batch {args.batch}, ms per forward + backward (median of {args.windows} windows)')
  columns = (('xla', 10), ('xla_eigen', 11), ('patches', 10), ('patches_eigen', 15))
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
