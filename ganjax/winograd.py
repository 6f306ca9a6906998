"""3x3 stride-1 convolutions by Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray 2016).

Each 2x2 block of outputs comes from the 4x4 input tile around it: the tile and the kernel are moved
into a transformed space by small matrices of 0, +-1 and 1/2, where the convolution becomes 16
independent matrix products of (tiles, C_in) by (C_in, C_out); one more small transform brings the
products back. 16 multiplies per 2x2 outputs and channel pair instead of 36, so on a machine where
the convolutions already run at its matmul rate (XLA:CPU on the SNGAN's 256-channel layers) the work
falls by up to 2.25x. Autodiff of these steps gives backward passes of the same shape, so the savings
hold for gradients too. The numbers equal lax.conv's up to float32 rounding (tested).

`Conv3x3` has `nn.Conv(features, (3, 3), padding=1)`'s parameters, so checkpoints move between the two;
for a few output channels, where 16 products of a few columns each would be slow, it computes all nine
taps in one matmul instead (`narrow_conv3x3`).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

# G of F(2x2, 3x3): the kernel's transform, U = G g G^T. numpy, not jnp: a jax array made at import would
# start the backend before a multi-process run's jax.distributed.initialize.
_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])


def _input_transform(d: list[jax.Array]) -> list[jax.Array]:
  """B^T d along one axis of a 4-tile: B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]."""
  return [d[0] - d[2], d[1] + d[2], d[2] - d[1], d[1] - d[3]]


def _output_transform(m: list[jax.Array]) -> list[jax.Array]:
  """A^T m along one axis: A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]."""
  return [m[0] + m[1] + m[2], m[1] - m[2] - m[3]]


def conv3x3(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """`lax.conv(x, kernel)` with padding 1 and stride 1 (NHWC, HWIO), no bias, by F(2x2, 3x3)."""
  n, height, width, _ = x.shape
  h2, w2 = -(-height // 2), -(-width // 2)
  # Pad by 1 (the convolution's padding) and up to an even output size.
  padded = jnp.pad(x, ((0, 0), (1, 1 + 2 * h2 - height), (1, 1 + 2 * w2 - width), (0, 0)))
  rows = _input_transform([padded[:, r : r + 2 * h2 : 2] for r in range(4)])
  tiles = [_input_transform([row[:, :, s : s + 2 * w2 : 2] for s in range(4)]) for row in rows]
  v = jnp.stack([t for row in tiles for t in row]).reshape(16, n * h2 * w2, x.shape[-1])
  g = jnp.asarray(_G, kernel.dtype)
  u = jnp.einsum('ar,rsio,bs->abio', g, kernel, g)
  m = jnp.matmul(v, u.reshape(16, *kernel.shape[2:])).reshape(4, 4, n, h2, w2, kernel.shape[-1])
  cols = [_output_transform([m[a, b] for b in range(4)]) for a in range(4)]
  y = [_output_transform([cols[a][q] for a in range(4)]) for q in range(2)]  # y[q][p]
  out = jnp.stack([jnp.stack(y[q], axis=0) for q in range(2)], axis=1)  # (p, q, n, h2, w2, o)
  out = out.transpose(2, 3, 0, 4, 1, 5).reshape(n, 2 * h2, 2 * w2, kernel.shape[-1])
  return out[:, :height, :width]


def narrow_conv3x3(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """The same convolution for a few output channels (G's last layer, to RGB): one matmul of the padded
  input by all nine taps' kernels, then the nine tap outputs shifted and summed. lax.conv's matmul is
  as narrow as the output; this one is nine times wider."""
  n, height, width, c = x.shape
  padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  taps = (padded.reshape(-1, c) @ kernel.transpose(2, 0, 1, 3).reshape(c, -1)).reshape(n, height + 2, width + 2, 9, -1)
  return sum(taps[:, u : u + height, v : v + width, 3 * u + v] for u in range(3) for v in range(3))


def literal_conv3x3(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """`nn.Conv`'s 3x3 convolution with padding 1, no bias, as lax.conv computes it."""
  return jax.lax.conv_general_dilated(x, kernel, (1, 1), ((1, 1), (1, 1)), dimension_numbers=('NHWC', 'HWIO', 'NHWC'))


class Conv3x3(nn.Module):
  """`nn.Conv(features, (3, 3), padding=1)` with the same parameters ('kernel', 'bias'), so checkpoints
  move between the two; `fast` computes it by `conv3x3`, or by `narrow_conv3x3` for fewer than 16 output
  channels; else literally. Subclasses (resnet.UpConv, resnet.ConvPool) put a step before or after the
  convolution: they override `literal` and `fast_path` and keep the parameters."""

  features: int
  kernel_init: nn.initializers.Initializer
  fast: bool = True

  def literal(self, x: jax.Array, kernel: jax.Array) -> jax.Array:
    return literal_conv3x3(x, kernel)

  def fast_path(self, x: jax.Array, kernel: jax.Array) -> jax.Array | None:
    """The same function with fewer FLOPs, or None where this input has no such path."""
    return (conv3x3 if self.features >= 16 else narrow_conv3x3)(x, kernel)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param('kernel', self.kernel_init, (3, 3, x.shape[-1], self.features), jnp.float32)
    bias = self.param('bias', nn.initializers.zeros_init(), (self.features,), jnp.float32)
    y = self.fast_path(x, kernel) if self.fast else None
    return (self.literal(x, kernel) if y is None else y) + bias
