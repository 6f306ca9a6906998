"""Stride-2 convolutions and transposed convolutions as patch matmuls, tuned for XLA:CPU.

`PatchConv` and `PatchConvTranspose` compute the same functions, with the same parameter trees, as
`nn.Conv(features, (k, k), strides=2, padding='SAME')` and `nn.ConvTranspose(...)`, so a checkpoint
moves between them and lax's layers (`model.d_conv_impl`, `model.g_conv_impl`). Their backward passes
are written out as custom VJPs; docs/performance.md has the measurements and the reasoning.
"""

import functools
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

# Keras' default kernel initialiser (flax defaults to LeCun-normal), as in ganjax.models.
_KERNEL_INIT = nn.initializers.xavier_uniform()


def _same_low_pad(size: int, k: int) -> int:
  """The low padding of a stride-2 SAME convolution with a k x k kernel on `size` pixels."""
  return max((-(-size // 2) - 1) * 2 + k - size, 0) // 2


Pair = tuple[int, int]  # (rows, columns)


def _taps(x: jax.Array, k: int, low: Pair, out: Pair) -> jax.Array:
  """Stride-2 patches: (B, H, W, C) -> (B, out, k * k * C), p[m, n, (t, u, c)] = x[2m + t - low, 2n + u - low, c].

  Zero outside x. Ordered (row, column, channel): the order of a (k, k, C_in, C_out) kernel reshaped
  to (k * k * C_in, C_out). One strided slice of the zero-padded x per tap, all in one concatenation.
  """
  batch, height, width, channels = x.shape
  high = [max((o - 1) * 2 + k - lo - n, 0) for o, lo, n in zip(out, low, (height, width), strict=True)]
  x = jnp.pad(x, ((0, 0), (low[0], high[0]), (low[1], high[1]), (0, 0)))
  end = [2 * (o - 1) + 1 for o in out]  # one past the last tap, from the tap's offset

  def tap(t, u):
    return jax.lax.slice(x, (0, t, u, 0), (batch, t + end[0], u + end[1], channels), (1, 2, 2, 1))

  return jnp.concatenate([tap(t, u) for t in range(k) for u in range(k)], axis=-1)


def _untaps(p: jax.Array, k: int, low: Pair, size: Pair) -> jax.Array:
  """The transpose of `_taps`: (B, M, N, k * k * C) -> (B, size, C), out[2m + t - low] += p[m, t].

  Written per output phase: output row 2q + a only receives the taps t = a + low (mod 2), each from
  one input row, q + (a + low - t) / 2. So each phase is a sum of a few shifted tap maps (a quarter of
  the output each), and the four phases interleave into the output. XLA:CPU fuses this into one pass
  over the output; the transposes autodiff writes (one interior-padded, full-size add per tap) took
  6x as long for G's 64 -> 32 layer at batch 256.
  """
  batch, rows, cols, _ = p.shape
  channels = p.shape[-1] // (k * k)
  taps = jnp.split(p, k * k, axis=-1)
  half = [-(-n // 2) for n in size]  # rows and columns of each phase, before an odd size's crop
  zero = jnp.zeros((), p.dtype)

  def shifted(tap, d_row, d_col):  # tap[q + d_row, r + d_col] for q, r < half, zero outside
    pads = ((0, 0, 0), (-d_row, half[0] - rows + d_row, 0), (-d_col, half[1] - cols + d_col, 0), (0, 0, 0))
    return jax.lax.pad(tap, zero, pads)

  def phase_taps(a, axis):  # (tap, offset of the input row or column) for output rows or columns 2q + a
    return [(t, (a + low[axis] - t) // 2) for t in range(k) if (a + low[axis] - t) % 2 == 0]

  phases = []
  for a in range(2):
    row = []
    for b in range(2):
      terms = [shifted(taps[t * k + u], dt, du) for t, dt in phase_taps(a, 0) for u, du in phase_taps(b, 1)]
      row.append(functools.reduce(jnp.add, terms) if terms else jnp.zeros((batch, *half, channels), p.dtype))
    phases.append(jnp.stack(row, axis=3))  # (B, half rows, half columns, 2, C): column phases
  out = jnp.stack(phases, axis=2).reshape(batch, 2 * half[0], 2 * half[1], channels)  # rows 2q + a, columns 2r + b
  return out[:, : size[0], : size[1]]


def _kernel_grad(inputs: jax.Array, grad: jax.Array) -> jax.Array:
  """inputs.T @ grad over all rows, for a kernel (C_in, C_out) applied as inputs @ kernel.

  XLA:CPU transposes one operand for it, and autodiff let it pick the output gradient even where that
  is the larger (C_out = 64 > k * k * C_in = 9 in D's first layer, 512 > 64 in G's transposed
  convolution); transposing the smaller one, behind a barrier XLA keeps, halved those backward passes.
  A second barrier keeps the small result's transpose out of the dot: folded into it, the dot's output
  layout sent it to a slower (Eigen) kernel, 2x slower for G's last layer (32 x 16 kernel).
  """
  flat, grad = inputs.reshape(-1, inputs.shape[-1]), grad.reshape(-1, grad.shape[-1])
  if flat.shape[1] <= grad.shape[1]:
    return jax.lax.optimization_barrier(flat.T) @ grad
  return jax.lax.optimization_barrier(jax.lax.optimization_barrier(grad.T) @ flat).T


def _conv_geometry(size: Pair, k: int) -> tuple[Pair, Pair]:
  """(low padding, output size) of a stride-2 SAME convolution on `size`, per axis."""
  return tuple(_same_low_pad(n, k) for n in size), tuple(-(-n // 2) for n in size)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _patch_conv(x: jax.Array, kernel: jax.Array, k: int) -> jax.Array:
  """x's stride-2 SAME convolution with `kernel` reshaped to (k * k * C_in, C_out), no bias."""
  return _taps(x, k, *_conv_geometry(x.shape[1:3], k)) @ kernel


def _patch_conv_fwd(x, kernel, k):
  patches = _taps(x, k, *_conv_geometry(x.shape[1:3], k))
  return patches @ kernel, (patches, kernel, x.shape[1:3])


def _patch_conv_bwd(k, residuals, grad):
  patches, kernel, size = residuals
  # The patches are linear in x: the input gradient is their transpose applied to d_patches.
  d_x = _untaps(grad @ kernel.T, k, _conv_geometry(size, k)[0], size)
  return d_x, _kernel_grad(patches, grad)


_patch_conv.defvjp(_patch_conv_fwd, _patch_conv_bwd)


def _transposed_low(k: int) -> int:
  """Where tap 0 of a flipped stride-2 SAME transposed-convolution kernel lands, above its input's row: k - 1
  minus lax.conv_transpose's low padding."""
  return k - 1 - (k - 1 if k <= 2 else -(-k // 2))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _patch_conv_transpose(x: jax.Array, flipped: jax.Array, k: int) -> jax.Array:
  """x's stride-2 SAME transposed convolution, the kernel flipped and reshaped to (C_in, k * k * C_out).

  Each input pixel's matmul row holds its k * k output taps; flipped tap t of input i lands on output
  2i + t - `_transposed_low(k)`: the transpose of a stride-2 convolution's patches, `_untaps`.
  """
  low = _transposed_low(k)
  return _untaps(x @ flipped, k, (low, low), (2 * x.shape[1], 2 * x.shape[2]))


def _patch_conv_transpose_fwd(x, flipped, k):
  return _patch_conv_transpose(x, flipped, k), (x, flipped)


def _patch_conv_transpose_bwd(k, residuals, grad):
  x, flipped = residuals
  # The gradient of the taps is the strided patches of the output gradient (a stride-2 convolution).
  low = _transposed_low(k)
  d_taps = _taps(grad, k, (low, low), x.shape[1:3])
  return d_taps @ flipped.T, _kernel_grad(x, d_taps)


_patch_conv_transpose.defvjp(_patch_conv_transpose_fwd, _patch_conv_transpose_bwd)


class PatchConv(nn.Module):
  """A k x k, stride-2, SAME convolution as strided slices of the padded input and one matmul.

  The same function and parameters ('kernel' (k, k, C_in, C_out), 'bias') as
  `nn.Conv(features, (k, k), strides=2, padding='SAME')`. Its backward pass
  is written out (a custom VJP): the same gradients, with the kernel
  gradient's transpose on the smaller operand. Faster than lax.conv on
  XLA:CPU; the measurements are in docs/performance.md and come from
  benchmarks/kernels.py and benchmarks/step_speed.py.
  """

  features: int
  kernel_size: int = 3

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k, channels = self.kernel_size, x.shape[-1]
    kernel = self.param('kernel', _KERNEL_INIT, (k, k, channels, self.features))
    bias = self.param('bias', nn.initializers.zeros, (self.features,))
    return _patch_conv(x, kernel.reshape(k * k * channels, self.features), k) + bias


class PatchConvTranspose(nn.Module):
  """A k x k, stride-2, SAME transposed convolution as one matmul and a per-phase sum of its taps.

  The same function and parameters ('kernel' (k, k, C_in, C_out), 'bias') as
  `nn.ConvTranspose(features, (k, k), strides=2, padding='SAME')`: each input
  pixel's matmul row holds its k * k output taps, which `_untaps` adds into
  the output one phase (even or odd row and column) at a time; the backward
  pass is a stride-2 patch matmul (a custom VJP). On XLA:CPU the kernel
  gradient of lax's version is a convolution with a dilated window that
  dominated the DCGAN step; the measurements are in docs/performance.md
  (benchmarks/step_speed.py).
  """

  features: int
  kernel_size: int = 5
  use_bias: bool = True
  kernel_init: Callable = _KERNEL_INIT

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k, channels = self.kernel_size, x.shape[-1]
    kernel = self.param('kernel', self.kernel_init, (k, k, channels, self.features))
    flipped = kernel[::-1, ::-1].transpose(2, 0, 1, 3).reshape(channels, k * k * self.features)
    out = _patch_conv_transpose(x, flipped, k)
    if self.use_bias:
      out = out + self.param('bias', nn.initializers.zeros, (self.features,))
    return out
