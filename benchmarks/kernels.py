"""The machine facts behind the performance section: memory bandwidth, matmul rate at the conv's shapes, conv layers.

  python benchmarks/kernels.py

Prints, for this machine and XLA build: the rate of an elementwise op on a
12 MB array (cache-sized, like one batch-256 activation) and on a 256 MB one
(main memory); the fp32 matmul rate at D's second convolution's shapes at
batch 256 (forward, and the transposed-operand form of its weight gradient)
and for a 2048^3 matmul; and forward and forward+backward (gradient with
respect to parameters and input) times of the tutorial D's two convolutions
at batch 64 and 256, as lax.conv, as `patch_conv.PatchConv`, and in PyTorch when
it is installed. A script that prints numbers, not a test. Run it with
XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type=individual_dot,reduce to see
lax.conv on Eigen's convolutions instead of YNNPACK's.
"""

import os

import flax.linen as nn
import jax
import jax.numpy as jnp
from profile_step import _rate  # benchmarks/ is on sys.path when this file runs as a script

from ganjax import patch_conv


def _gbps(n_floats: int) -> float:
  x = jnp.ones((n_floats,), jnp.float32)
  f = jax.jit(lambda x: x * 1.5 + 0.5)
  ms = _rate(lambda: f(x).block_until_ready(), windows=5)
  return 2 * x.nbytes / ms / 1e6  # one read and one write per element


def _matmul_gflops(lhs_shape, rhs_shape, transpose_lhs: bool = False) -> float:
  a = jax.random.normal(jax.random.key(0), lhs_shape)
  b = jax.random.normal(jax.random.key(1), rhs_shape)
  f = jax.jit((lambda a, b: a.T @ b) if transpose_lhs else (lambda a, b: a @ b))
  ms = _rate(lambda: f(a, b).block_until_ready(), windows=5)
  m, k = (lhs_shape[1], lhs_shape[0]) if transpose_lhs else lhs_shape
  return 2 * m * k * rhs_shape[1] / ms / 1e6


def _ms(fn, *args) -> float:
  return _rate(lambda: jax.block_until_ready(fn(*args)), windows=5)


def _conv_times(batch: int, c_in: int, c_out: int, size: int) -> dict[str, tuple[float, float]]:
  """(forward ms, forward+backward ms) of one 3x3 stride-2 SAME conv and the loss sum(y^2)."""
  x = jax.random.normal(jax.random.key(0), (batch, size, size, c_in))
  times = {}
  for name, layer in (
    ('lax.conv', nn.Conv(c_out, (3, 3), strides=(2, 2), padding='SAME')),
    ('PatchConv', patch_conv.PatchConv(c_out)),
  ):
    params = layer.init(jax.random.key(1), x)
    fwd = jax.jit(lambda p, x, layer=layer: layer.apply(p, x))
    grad = jax.jit(jax.grad(lambda p, x, layer=layer: jnp.sum(layer.apply(p, x) ** 2), argnums=(0, 1)))
    times[name] = (_ms(fwd, params, x), _ms(grad, params, x))
  try:
    import torch
  except ImportError:
    return times
  conv = torch.nn.Conv2d(c_in, c_out, 3, 2, 1)
  xt = torch.randn(batch, c_in, size, size)

  def forward():
    with torch.no_grad():
      conv(xt)

  def backward():
    conv.zero_grad(set_to_none=True)
    (conv(xt.requires_grad_(True)) ** 2).sum().backward()

  times['PyTorch'] = (_rate(forward, windows=5), _rate(backward, windows=5))
  return times


def main() -> None:
  print(f'jax {jax.__version__}, XLA_FLAGS={os.environ.get("XLA_FLAGS", "")!r}')
  print(f'elementwise, 12 MB array: {_gbps(3 * 2**20):.1f} GB/s; 256 MB array: {_gbps(64 * 2**20):.1f} GB/s')
  fwd = _matmul_gflops((12544, 576), (576, 128))
  wgrad = _matmul_gflops((12544, 576), (12544, 128), transpose_lhs=True)
  square = _matmul_gflops((2048, 2048), (2048, 2048))
  print(
    f'matmul GFLOP/s: (12544 x 576) @ (576 x 128) {fwd:.0f}; (576 x 12544) @ (12544 x 128) {wgrad:.0f}; '
    f'2048^3 {square:.0f}'
  )
  print(f'{"3x3 stride-2 conv":<28}{"impl":<11}{"fwd ms":>8}{"fwd+bwd ms":>12}')
  for c_in, c_out, size in ((1, 64, 28), (64, 128, 14)):
    for batch in (64, 256):
      for name, (f, b) in _conv_times(batch, c_in, c_out, size).items():
        print(f'{f"{c_in} -> {c_out}, batch {batch}":<28}{name:<11}{f:>8.2f}{b:>12.2f}')


if __name__ == '__main__':
  main()
