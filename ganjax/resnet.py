"""The SNGAN ResNet generator and discriminator (Miyato et al. 2018), as mimicry's `sngan_32.py` builds them.

G: z -> Dense to a 4x4 (4-7 per side) map of `features[0]` channels -> one upsampling residual block
per doubling (BatchNorm, ReLU, nearest 2x, 3x3 conv, twice; a 1x1 conv on the shortcut) -> BatchNorm,
ReLU, 3x3 conv to the image's channels, tanh. At 32x32 with 256 channels and z of 128: 4,276,739
parameters, mimicry's count.

D: an "optimised" first block (3x3 conv, ReLU, 3x3 conv, 2x2 average pool; shortcut: pool, then a 1x1
conv), downsampling blocks to 8x8 (6 for 48, ...), two plain blocks, ReLU, a sum over positions and a
linear layer to one logit; every layer spectrally normalised. At 32x32 with 128 channels: 1,053,825
parameters, mimicry's count.

Conditional (`num_classes` > 0): G's BatchNorms take a per-class scale and shift (conditional BN);
D adds the projection term <embed(y), features> (Miyato & Koyama 2018); unlike mimicry's, the class
embedding is not spectrally normalised.

How it computes (`model.*_conv_impl`; 'auto' is 'patches' on XLA:CPU): the same functions with fewer
multiplies. G's upsampling convolution by output phases (`upsample_conv`), its other 3x3 convolutions
by Winograd's F(2x2, 3x3) (`ganjax.winograd`), its 1x1 shortcut before the upsampling; D's 3x3
convolution and pooling as one 2x2 convolution (`conv_pool`), its pooled shortcut pooled first (its
other convolutions are lax.convs: Winograd made D's step no faster). 'xla' runs the layers literally.
Parameters are the same either way.

Initialisation as mimicry: Xavier-uniform kernels, gain sqrt(2) inside residual branches and 1 for
shortcuts and the dense layers; biases start at zero (torch keeps its default uniform biases there).
"""

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ganjax import augment, winograd
from ganjax.config import first_map, upsamplings


def _xavier(gain: float) -> nn.initializers.Initializer:
  return nn.initializers.variance_scaling(gain**2, 'fan_avg', 'uniform')


_BRANCH = _xavier(math.sqrt(2.0))
_SHORTCUT = _xavier(1.0)


def _upsample(x: jax.Array) -> jax.Array:
  """Nearest-neighbour 2x, as torch's `F.interpolate(scale_factor=2)`."""
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def _avg_pool(x: jax.Array) -> jax.Array:
  return nn.avg_pool(x, (2, 2), strides=(2, 2))


def _phase_kernels(kernel: jax.Array) -> list[list[jax.Array]]:
  """The 2x2 kernels of the four output phases of a 3x3 convolution (padding 1) on a nearest-2x input.

  Output row 2i + a reads upsampled rows 2i + a - 1 .. 2i + a + 1, which are input rows (i - 1, i, i)
  for a = 0 and (i, i, i + 1) for a = 1: kernel rows (0, 1 + 2) on rows (i - 1, i), and (0 + 1, 2)
  on rows (i, i + 1). The same holds for columns.
  """

  def fold(k, axis):
    k0, k1, k2 = (jnp.take(k, t, axis=axis) for t in range(3))
    return [jnp.stack([k0, k1 + k2], axis), jnp.stack([k0 + k1, k2], axis)]

  return [fold(rows, 1) for rows in fold(kernel, 0)]


def upsample_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """`conv3x3(nearest2x(x))` (padding 1, no bias) computed on x: each of the four output phases is a
  2x2 convolution of x, 16 taps per 2x2 output block instead of 36, the same numbers up to rounding."""
  height, width = x.shape[1:3]
  padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  dims = ('NHWC', 'HWIO', 'NHWC')

  def phase(a, b, k):
    window = padded[:, a : a + height + 1, b : b + width + 1]
    return jax.lax.conv_general_dilated(window, k, (1, 1), 'VALID', dimension_numbers=dims)

  kernels = _phase_kernels(kernel)
  rows = [jnp.stack([phase(a, b, kernels[a][b]) for b in (0, 1)], axis=3) for a in (0, 1)]
  out = jnp.stack(rows, axis=2)  # (B, H, 2, W, 2, C): phase a of row i is output row 2i + a
  return out.reshape(x.shape[0], 2 * height, 2 * width, kernel.shape[-1])


def conv_pool(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """`avg_pool2x2(conv3x3(x))` (padding 1, no bias; even sides) as one 2x2 convolution of x's space-to-depth.

  The pooled output at (i, j) reads padded rows and columns 2i .. 2i + 3: a 4x4 stride-2 convolution
  whose kernel is the 3x3 kernel averaged over its four shifts. Grouping the padded input's pixels in
  2x2 blocks (channels a, b, c) makes that a stride-1 2x2 convolution: 16 taps per pooled output instead
  of 36, and a backward pass without zero-dilated inputs. The same numbers up to rounding.
  """
  n, height, width, c = x.shape
  o = kernel.shape[-1]
  k4 = 0.25 * sum(jnp.pad(kernel, ((a, 1 - a), (b, 1 - b), (0, 0), (0, 0))) for a in (0, 1) for b in (0, 1))
  k = k4.reshape(2, 2, 2, 2, c, o).transpose(0, 2, 1, 3, 4, 5).reshape(2, 2, 4 * c, o)
  padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  blocks = padded.reshape(n, height // 2 + 1, 2, width // 2 + 1, 2, c).transpose(0, 1, 3, 2, 4, 5)
  blocks = blocks.reshape(n, height // 2 + 1, width // 2 + 1, 4 * c)
  return jax.lax.conv_general_dilated(blocks, k, (1, 1), 'VALID', dimension_numbers=('NHWC', 'HWIO', 'NHWC'))


class ConvPool(winograd.Conv3x3):
  """`nn.Conv(features, (3, 3), padding=1)` then 2x2 average pooling, with the conv's parameters; `fast`
  computes it with `conv_pool` (fewer FLOPs) on even sides, else literally (`model.d_conv_impl='xla'`)."""

  def literal(self, x: jax.Array, kernel: jax.Array) -> jax.Array:
    return _avg_pool(winograd.literal_conv3x3(x, kernel))  # pooling commutes with the bias

  def fast_path(self, x: jax.Array, kernel: jax.Array) -> jax.Array | None:
    return conv_pool(x, kernel) if x.shape[1] % 2 == 0 and x.shape[2] % 2 == 0 else None


class UpConv(winograd.Conv3x3):
  """nearest 2x, then `nn.Conv(features, (3, 3), padding=1)` with its parameters; `fast` computes it with
  `upsample_conv` (fewer FLOPs: faster on XLA:CPU, benchmarks/resnet_convs.py), else literally
  (`model.g_conv_impl='xla'`)."""

  def literal(self, x: jax.Array, kernel: jax.Array) -> jax.Array:
    return winograd.literal_conv3x3(_upsample(x), kernel)

  def fast_path(self, x: jax.Array, kernel: jax.Array) -> jax.Array:
    return upsample_conv(x, kernel)


class _Norm(nn.Module):
  """BatchNorm, with a per-class scale and shift when `num_classes` > 0 (conditional BN)."""

  num_classes: int = 0
  momentum: float = 0.9

  @nn.compact
  def __call__(self, x, train: bool, axis_name, labels):
    conditional = self.num_classes > 0
    x = nn.BatchNorm(
      use_running_average=not train,
      momentum=self.momentum,
      epsilon=1e-5,
      axis_name=axis_name if train else None,
      use_scale=not conditional,
      use_bias=not conditional,
    )(x)
    if not conditional:
      return x
    channels = x.shape[-1]
    gamma = nn.Embed(self.num_classes, channels, embedding_init=nn.initializers.ones, name='scale')(labels)
    beta = nn.Embed(self.num_classes, channels, embedding_init=nn.initializers.zeros, name='shift')(labels)
    return x * gamma[:, None, None, :] + beta[:, None, None, :]


class GBlock(nn.Module):
  """G's residual block: (BN, ReLU, upsample, conv3, BN, ReLU, conv3) + conv1(upsample(x))."""

  features: int
  num_classes: int = 0
  phases: bool = True  # UpConv's `fast`, Winograd's c2 and the shortcut convolved before upsampling

  @nn.compact
  def __call__(self, x, train: bool, axis_name, labels):
    h = nn.relu(_Norm(self.num_classes, name='b1')(x, train, axis_name, labels))
    h = UpConv(self.features, _BRANCH, self.phases, name='c1')(h)
    h = nn.relu(_Norm(self.num_classes, name='b2')(h, train, axis_name, labels))
    h = winograd.Conv3x3(self.features, _BRANCH, self.phases, name='c2')(h)
    shortcut = nn.Conv(self.features, (1, 1), padding=0, kernel_init=_SHORTCUT, name='c_sc')
    # A 1x1 convolution commutes with nearest upsampling: at a quarter of the pixels first.
    return h + (_upsample(shortcut(x)) if self.phases else shortcut(_upsample(x)))


class ResNetGenerator(nn.Module):
  """The SNGAN ResNet G (see the module's docstring); `features`: the channels of each upsampling block."""

  features: Sequence[int] = (256, 256, 256)
  image_shape: Sequence[int] = (32, 32, 3)
  num_classes: int = 0
  conv_impl: str = 'patches'  # 'patches': phases, Winograd, 1x1 before upsampling; 'xla': literally

  @nn.compact
  def __call__(self, z, train: bool = True, axis_name: str | None = None, labels=None) -> jax.Array:
    _, base_h, base_w = first_map(self.image_shape)
    channels = self.image_shape[-1]
    x = nn.Dense(base_h * base_w * self.features[0], kernel_init=_SHORTCUT, name='l1')(z)
    x = x.reshape((z.shape[0], base_h, base_w, self.features[0]))
    for i, width_i in enumerate(self.features):
      block = GBlock(width_i, self.num_classes, self.conv_impl == 'patches', name=f'block{i + 2}')
      x = block(x, train, axis_name, labels)
    x = nn.relu(_Norm(self.num_classes, name='b_out')(x, train, axis_name, labels))
    x = winograd.Conv3x3(channels, _SHORTCUT, self.conv_impl == 'patches', name='c_out')(x)
    return jnp.tanh(x)


class DBlock(nn.Module):
  """D's residual block: (ReLU, conv3, ReLU, conv3[, pool]) + [pool](conv1(x)), every conv spectrally
  normalised; `optimised`: the first block, (conv3, ReLU, conv3, pool) + conv1(pool(x))."""

  features: int
  downsample: bool
  optimised: bool = False
  fused: bool = True  # ConvPool's `fast`; a pooled 1x1 shortcut pools first (the same linear map)

  @nn.compact
  def __call__(self, x, update_stats: bool):
    def conv(width, size, init, name, pool=False):
      if pool:
        layer = ConvPool(width, init, self.fused, name=name)
      else:
        layer = nn.Conv(width, (size, size), padding=(size - 1) // 2, kernel_init=init, name=name)
      return lambda v: nn.SpectralNorm(layer, name=f'{name}_sn')(v, update_stats=update_stats)

    h = x if self.optimised else nn.relu(x)
    h = conv(self.features, 3, _BRANCH, 'c1')(h)
    h = conv(self.features, 3, _BRANCH, 'c2', pool=self.downsample)(nn.relu(h))
    if self.optimised or (self.downsample and self.fused):
      shortcut = conv(self.features, 1, _SHORTCUT, 'c_sc')(_avg_pool(x))
    elif self.downsample or x.shape[-1] != self.features:
      shortcut = conv(self.features, 1, _SHORTCUT, 'c_sc')(x)
      shortcut = _avg_pool(shortcut) if self.downsample else shortcut
    else:
      shortcut = x
    return h + shortcut


class ResNetDiscriminator(nn.Module):
  """The SNGAN ResNet D (see the module's docstring); `features`: the channels of each block, the first
  the optimised block, then the downsampling blocks, then two plain blocks."""

  features: Sequence[int] = (128, 128, 128, 128)
  num_classes: int = 0
  augment: Sequence[str] = ()
  conv_impl: str = 'patches'  # 'patches': ConvPool fused, the shortcut pooled first; 'xla': literally

  @nn.compact
  def __call__(
    self, x, train: bool = True, axis_name: str | None = None, update_stats: bool = False, labels=None
  ) -> jax.Array:
    if train and self.augment:
      x = augment.diff_augment(x, self.make_rng('augment'), self.augment)
    downs = len(self.features) - 2  # the optimised block and the downsampling ones
    for i, width in enumerate(self.features):
      block = DBlock(width, i < downs, i == 0, self.conv_impl == 'patches', name=f'block{i + 1}')
      x = block(x, update_stats)
    features = jnp.sum(nn.relu(x), axis=(1, 2))
    linear = nn.Dense(1, kernel_init=_SHORTCUT, name='l_out')
    logits = nn.SpectralNorm(linear, name='l_out_sn')(features, update_stats=update_stats)[:, 0]
    if self.num_classes:
      embed = nn.Embed(self.num_classes, features.shape[-1], embedding_init=_SHORTCUT, name='embed')
      logits = logits + jnp.sum(embed(labels) * features, axis=-1)
    return logits


def default_widths(image_shape: Sequence[int], generator: bool) -> tuple[int, ...]:
  """mimicry's widths for `model.g_features=()` / `d_features=()`: G 256 per upsampling block; D 128 for
  the optimised block, each downsampling block to 8x8 (4-7 per side after one fewer halving) and two more."""
  ups = upsamplings(image_shape[0])
  return (256,) * ups if generator else (128,) * (ups - 1 + 2)
