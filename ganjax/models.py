"""Generator and discriminator of the tutorial GAN, as Flax Linen modules.

Defaults reproduce the tutorial exactly: an MLP generator
z -> 256 -> 512 -> 1024 -> 784 (tanh) and a two-layer strided-conv
discriminator that returns one logit per image. Keras initialises Dense and
Conv kernels with Glorot-uniform and biases with zeros; we do the same so the
tutorial starts from the same distribution of weights.
"""

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from ganjax import augment, choices, infogan, pacgan, resnet
from ganjax.choices import augment_policy
from ganjax.config import first_map, g_classes, upsamplings
from ganjax.patch_conv import PatchConv, PatchConvTranspose

# Keras' default kernel initialiser (flax defaults to LeCun-normal).
_KERNEL_INIT = nn.initializers.xavier_uniform()


def _append_minibatch_std(x: jax.Array, axis_name: str | None = None) -> jax.Array:
  """Appends the batch's mean feature std as one more channel (Karras et al. 2018).

  Under `pmap` with `axis_name`, the statistics are over the global batch
  (means of x and x^2 averaged across devices), so the feature does not
  depend on how the batch is split.
  """
  # Two passes (mean, then mean squared deviation), as jnp.var computes it on one device.
  mean = jnp.mean(x, axis=0)
  if axis_name is not None:
    mean = jax.lax.pmean(mean, axis_name)
  var = jnp.mean(jnp.square(x - mean), axis=0)
  if axis_name is not None:
    var = jax.lax.pmean(var, axis_name)
  std = jnp.sqrt(var + 1e-8).mean()
  return jnp.concatenate([x, jnp.broadcast_to(std, (*x.shape[:-1], 1))], axis=-1)


class Generator(nn.Module):
  """MLP generator: latent vector -> image in [-1, 1].

  Attributes:
    features: widths of the hidden Dense layers.
    image_shape: (height, width, channels) of the output.
    norm: 'none' (the tutorial) or 'batch': BatchNorm after each hidden Dense,
      before the ReLU (as in the Keras-GAN family of MNIST examples).
    bn_momentum: running-average momentum of BatchNorm.
    leaky_slope: negative slope of the hidden activations (0 = ReLU, the tutorial).
    output: 'tanh' (images in [-1, 1], the tutorial) or 'linear' (toy 2-D points).
    num_classes: > 0 conditions G on a label (`_condition`).
    code_base: > 0: the label is a latent category read as codes in this base (`infogan`).
  """

  features: Sequence[int] = (256, 512, 1024)
  image_shape: Sequence[int] = (28, 28, 1)
  norm: str = 'none'
  bn_momentum: float = 0.99
  leaky_slope: float = 0.0
  output: str = 'tanh'
  num_classes: int = 0
  code_base: int = 0

  @nn.compact
  def __call__(
    self, z: jax.Array, train: bool = True, axis_name: str | None = None, labels: jax.Array | None = None
  ) -> jax.Array:
    """`axis_name`: the pmap axis over which BatchNorm averages its batch statistics (training only).

    With `num_classes`, `labels` (B,) pick the class: z is multiplied by a learned label embedding.
    """
    x = _condition(z, labels, self.num_classes, self.code_base)
    for width in self.features:
      x = nn.Dense(width, kernel_init=_KERNEL_INIT)(x)
      if self.norm == 'batch':
        x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum, axis_name=axis_name)(x)
      x = nn.leaky_relu(x, self.leaky_slope) if self.leaky_slope else nn.relu(x)
    size = 1
    for d in self.image_shape:
      size *= d
    x = nn.Dense(size, kernel_init=_KERNEL_INIT)(x)
    x = jnp.tanh(x) if self.output == 'tanh' else x
    return x.reshape((z.shape[0], *self.image_shape))


def _condition(z: jax.Array, labels: jax.Array | None, num_classes: int, code_base: int = 0) -> jax.Array:
  """z times a learned embedding of the labels (the Keras-GAN CGAN's input), or z for an unconditional G.

  With `code_base`, the label is a latent category read as several codes (`infogan`): z and their one-hots."""
  if not num_classes:
    return z
  if code_base:
    return jnp.concatenate([z, infogan.code_one_hots(labels, num_classes, code_base, z.dtype)], axis=-1)
  return z * nn.Embed(num_classes, z.shape[-1])(labels)


def _layer(layer: nn.Module, x: jax.Array, spectral_norm: bool, update_stats: bool) -> jax.Array:
  """Applies `layer`, through spectral normalisation (Miyato et al. 2018) when asked."""
  if spectral_norm:
    # One power iteration per training forward pass; the estimate lives in 'batch_stats'.
    return nn.SpectralNorm(layer)(x, update_stats=update_stats)
  return layer(x)


class Discriminator(nn.Module):
  """Strided-conv discriminator: image -> one logit (no sigmoid; BCE on logits).

  Attributes:
    features: channels of the stride-2 SAME convolutions.
    kernel_size: their size: 3 (the tutorial) or 5 (DCGAN, `model.d_arch='dcgan'`).
    leaky_slope: negative slope of the LeakyReLU after each convolution.
    dropout: rate of dropout after each LeakyReLU (0 = the tutorial).
    input_noise: std of Gaussian noise added to every input image in training
      ("instance noise"; 0 = the tutorial).
    augment: DiffAugment transforms (`augment.POLICIES`) applied to every input image in training,
      real or fake, before the instance noise (() = none, the tutorial).
    minibatch_std: append the batch's mean feature standard deviation as one
      extra channel before the Dense layer (Karras et al. 2018), so D can see
      a batch of near-identical fakes (False = the tutorial).
    spectral_norm: spectrally normalise every layer's weights (Miyato et al. 2018).
    hidden: width of a Dense + LeakyReLU layer between the flattened features and the logit (0 = none, the
      tutorial): without it the head is linear in local features whose receptive field is a few pixels.
    norm: 'none' or 'batch': BatchNorm after every convolution but the first (DCGAN's D), with the
      statistics of the batch at hand in training, so real and fake batches are normalised apart.
    num_classes: > 0 adds the projection term of a class-conditional D.
    q_classes: > 0 adds InfoGAN's Q head: logits over G's latent categories from the features the
      logit sees, sown as 'intermediates'/'q_logits' ((N, q_pack * q_classes): each pack member's).
    q_code_base: > 0: the categories are several codes in this base, one softmax each (`infogan`).
    q_pack: samples per input (PacGAN's packs): Q guesses each one's category.
    conv_impl: 'xla' (lax.conv) or 'patches' (`PatchConv`: strided slices and
      one matmul; same numbers, faster training steps on XLA:CPU).
  """

  features: Sequence[int] = (64, 128)
  kernel_size: int = 3
  leaky_slope: float = 0.2
  dropout: float = 0.0
  input_noise: float = 0.0
  augment: Sequence[str] = ()
  minibatch_std: bool = False
  spectral_norm: bool = False
  norm: str = 'none'
  hidden: int = 0
  num_classes: int = 0
  q_classes: int = 0
  q_code_base: int = 0
  q_pack: int = 1
  conv_impl: str = 'xla'

  @nn.compact
  def __call__(
    self,
    x: jax.Array,
    train: bool = True,
    axis_name: str | None = None,
    update_stats: bool = False,
    labels: jax.Array | None = None,
  ) -> jax.Array:
    """`axis_name`: the pmap axis of the minibatch-std feature; `update_stats`: advance spectral-norm
    estimates; `labels`: the classes of a conditional (projection) D."""
    if train and self.augment:
      x = augment.diff_augment(x, self.make_rng('augment'), self.augment)
    if train and self.input_noise > 0:
      x = x + self.input_noise * jax.random.normal(self.make_rng('noise'), x.shape, x.dtype)
    k = self.kernel_size
    for i, width in enumerate(self.features):
      # Both implementations own the same 'kernel' and 'bias' under the same name: checkpoints fit either.
      if self.conv_impl == 'patches':
        conv = PatchConv(width, k, name=f'Conv_{i}')
      else:
        conv = nn.Conv(width, (k, k), strides=(2, 2), padding='SAME', kernel_init=_KERNEL_INIT, name=f'Conv_{i}')
      x = _layer(conv, x, self.spectral_norm, update_stats)
      if self.norm == 'batch' and i > 0:
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9, axis_name=axis_name if train else None)(x)
      x = nn.leaky_relu(x, self.leaky_slope)
      if self.dropout > 0:
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
    if self.minibatch_std:
      x = _append_minibatch_std(x, axis_name if train else None)
    x = x.reshape((x.shape[0], -1))
    if self.hidden:
      dense = nn.Dense(self.hidden, kernel_init=_KERNEL_INIT, name='Hidden')
      x = nn.leaky_relu(_layer(dense, x, self.spectral_norm, update_stats), self.leaky_slope)
    logits = _layer(nn.Dense(1, kernel_init=_KERNEL_INIT), x, self.spectral_norm, update_stats)[:, 0]
    if self.q_classes:  # read by applying with mutable=['intermediates'] (objectives.discriminate)
      q = infogan.q_head(x, self.q_classes, self.q_code_base, self.q_pack, _KERNEL_INIT)
      self.sow('intermediates', 'q_logits', q)
    if self.num_classes:
      # Projection discriminator (Miyato & Koyama 2018): + <embed(y), features(x)>.
      logits = logits + jnp.sum(nn.Embed(self.num_classes, x.shape[-1])(labels) * x, axis=-1)
    return logits


class MLPDiscriminator(nn.Module):
  """MLP discriminator for vectors (the toy 2-D benchmark): Dense + LeakyReLU layers, one logit."""

  features: Sequence[int] = (128, 128)
  leaky_slope: float = 0.2
  minibatch_std: bool = False
  spectral_norm: bool = False

  @nn.compact
  def __call__(
    self,
    x: jax.Array,
    train: bool = True,
    axis_name: str | None = None,
    update_stats: bool = False,
    labels: jax.Array | None = None,  # unconditional only; accepted so all Ds share one signature
  ) -> jax.Array:
    x = x.reshape((x.shape[0], -1))
    for width in self.features:
      dense = nn.Dense(width, kernel_init=_KERNEL_INIT)
      x = nn.leaky_relu(_layer(dense, x, self.spectral_norm, update_stats), self.leaky_slope)
    if self.minibatch_std:
      x = _append_minibatch_std(x, axis_name if train else None)
    return _layer(nn.Dense(1, kernel_init=_KERNEL_INIT), x, self.spectral_norm, update_stats)[:, 0]


class DCGANGenerator(nn.Module):
  """DCGAN generator (Radford et al. 2016): Dense to a small feature map, then 2x transposed convolutions.

  Attributes:
    features: channels at each resolution before the output, e.g. (256, 128)
      for 28x28 (7x7 -> 14x14 -> 28x28) or (256, 128, 64) for 32x32 (4 -> 8 -> 16 -> 32).
    image_shape: (height, width, channels), each side one that halves to 4-7 (28, 32, 48, 64, 96, 128 ...)
      in as many halvings; 1 or 3 channels.
    bn_momentum: BatchNorm running-average momentum (BN after every layer but the last).
    kernel_size: of the transposed convolutions: 5 (Radford et al.) or 4 (each output pixel gets
      the same number of taps, so no checkerboard pattern; 36% less work than 5).
    num_classes: > 0 conditions G on a class label (z times a label embedding).
    code_base: > 0: the label is a latent category read as codes in this base (`infogan`).
    conv_impl: 'xla' (lax.conv_transpose) or 'patches' (`PatchConvTranspose`:
      one matmul and padded adds; same numbers, a faster training step on XLA:CPU).
  """

  features: Sequence[int] = (256, 128)
  image_shape: Sequence[int] = (28, 28, 1)
  bn_momentum: float = 0.9
  num_classes: int = 0
  conv_impl: str = 'xla'
  kernel_size: int = 5
  code_base: int = 0

  @nn.compact
  def __call__(
    self, z: jax.Array, train: bool = True, axis_name: str | None = None, labels: jax.Array | None = None
  ) -> jax.Array:
    _, base_h, base_w = first_map(self.image_shape)
    channels = self.image_shape[-1]

    def bn_relu(x):
      x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum, axis_name=axis_name)(x)
      return nn.relu(x)

    x = nn.Dense(base_h * base_w * self.features[0], use_bias=False, kernel_init=_KERNEL_INIT)(
      _condition(z, labels, self.num_classes, self.code_base)
    )
    x = bn_relu(x).reshape((z.shape[0], base_h, base_w, self.features[0]))
    widths = (*self.features[1:], channels)
    k = self.kernel_size
    for i, width in enumerate(widths):
      last = i == len(widths) - 1  # no BN after the output layer, so it keeps its bias
      # Both implementations own 'kernel' (and 'bias') under the same name: checkpoints fit either.
      if self.conv_impl == 'patches':
        up = PatchConvTranspose(width, k, use_bias=last, name=f'ConvTranspose_{i}')
      else:
        up = nn.ConvTranspose(
          width, (k, k), (2, 2), padding='SAME', use_bias=last, kernel_init=_KERNEL_INIT, name=f'ConvTranspose_{i}'
        )
      x = up(x) if last else bn_relu(up(x))
    return jnp.tanh(x)


class DiracGenerator(nn.Module):
  """The Dirac-GAN's generator (Mescheder et al. 2018): one parameter theta, the point it puts all mass on."""

  theta0: float = 1.0

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = True, axis_name: str | None = None, labels=None) -> jax.Array:
    theta = self.param('theta', nn.initializers.constant(self.theta0), ())
    return jnp.full((z.shape[0], 1), theta, z.dtype)


class DiracDiscriminator(nn.Module):
  """The Dirac-GAN's discriminator: the linear D(x) = psi * x on 1-D points, one logit each."""

  psi0: float = 1.0

  @nn.compact
  def __call__(self, x, train: bool = True, axis_name=None, update_stats: bool = False, labels=None) -> jax.Array:
    return self.param('psi', nn.initializers.constant(self.psi0), ()) * x[:, 0]


def dcgan_widths(image_shape: tuple[int, ...], generator: bool) -> tuple[int, ...]:
  """Widths for `model.g_features=()` / `d_features=()`: one per resolution, 64 at the image's side, doubling
  towards the smallest feature map up to 512 (Radford et al.'s 64x64 DCGAN: 512, 256, 128, 64)."""
  ups = upsamplings(image_shape[0])
  widths = tuple(min(512, 64 * 2**i) for i in range(ups))
  return widths[::-1] if generator else widths


def conv_impl(name: str) -> str:
  """A `model.*_conv_impl` value resolved: 'auto' is 'patches' on XLA:CPU and 'xla' on GPU and TPU."""
  if name != 'auto':
    return name
  return 'patches' if jax.default_backend() == 'cpu' else 'xla'


# Networks added at run time: `model.g_arch` / `model.d_arch` name -> a builder from the model's
# section and the image shape, as `build(model, image_shape)`.
Builder = Callable[[ml_collections.ConfigDict, tuple[int, ...]], nn.Module]
GENERATORS: dict[str, Builder] = {}
DISCRIMINATORS: dict[str, Builder] = {}


def register_generator(name: str, build: Builder) -> None:
  """Adds a generator that `model.g_arch=name` selects in this process (docs/extending.md).

  `build(model, image_shape)` (the config's `model` section and the data's image shape) returns a Linen
  module called as `g(z, train=, axis_name=, labels=)` that maps latents (B, model.latent_dim) to images
  (B, *image_shape) in [-1, 1].
  """
  if name in GENERATORS or name in choices.G_ARCHS:
    raise ValueError(f'generator {name!r} exists already')
  GENERATORS[name] = build
  choices.add('model.g_arch', name)


def register_discriminator(name: str, build: Builder) -> None:
  """Adds a discriminator that `model.d_arch=name` selects in this process (docs/extending.md).

  `build(model, image_shape)` returns a Linen module called as `d(x, train=, axis_name=, labels=)` that
  maps images (B, *image_shape) to logits (B, 1).
  """
  if name in DISCRIMINATORS or name in choices.D_ARCHS:
    raise ValueError(f'discriminator {name!r} exists already')
  DISCRIMINATORS[name] = build
  choices.add('model.d_arch', name)


def build_models(
  model: ml_collections.ConfigDict, image_shape: tuple[int, ...], info_head: bool = False
) -> tuple[nn.Module, nn.Module]:
  """Builds G and D from the config's `model` section for images of `image_shape` (H, W, C).

  `info_head`: D also predicts G's latent category (InfoGAN, `loss.info_weight` > 0).
  """
  m, shape = model, tuple(image_shape)
  if m.g_arch == 'dirac':
    theta0, psi0 = tuple(m.dirac_init) or (1.0, 1.0)
    return DiracGenerator(float(theta0)), DiracDiscriminator(float(psi0))
  g = GENERATORS[m.g_arch](m, shape) if m.g_arch in GENERATORS else _builtin_generator(m, shape)
  if m.d_pack == 1:
    return g, _discriminator(m, shape, info_head)
  # The wrapper augments each sample before packing; the inner D, which sees packs, gets no policy.
  inner = m.copy_and_resolve_references()
  inner.d_augment = ''
  return g, pacgan.Packed(_discriminator(inner, shape, info_head), m.d_pack, augment_policy(m.d_augment))


def _discriminator(m: ml_collections.ConfigDict, shape: tuple[int, ...], info_head: bool) -> nn.Module:
  if m.d_arch in DISCRIMINATORS:
    return DISCRIMINATORS[m.d_arch](m, shape)
  return _builtin_discriminator(m, shape, info_head)


def _builtin_generator(m: ml_collections.ConfigDict, shape: tuple[int, ...]) -> nn.Module:
  classes = g_classes(m)
  if m.g_arch == 'resnet':
    features = tuple(m.g_features) or resnet.default_widths(shape, generator=True)
    return resnet.ResNetGenerator(features, shape, classes, conv_impl(m.g_conv_impl))
  if m.g_arch == 'dcgan':
    return DCGANGenerator(
      features=tuple(m.g_features) or dcgan_widths(shape, generator=True),
      image_shape=shape,
      bn_momentum=m.g_bn_momentum,
      num_classes=classes,
      conv_impl=conv_impl(m.g_conv_impl),
      kernel_size=m.g_kernel_size,
      code_base=m.latent_code_base,
    )
  return Generator(
    features=tuple(m.g_features),
    image_shape=shape,
    norm=m.g_norm,
    bn_momentum=m.g_bn_momentum,
    leaky_slope=m.g_leaky_slope,
    output=m.g_output,
    num_classes=classes,
    code_base=m.latent_code_base,
  )


def _builtin_discriminator(m: ml_collections.ConfigDict, shape: tuple[int, ...], info_head: bool) -> nn.Module:
  if m.d_arch == 'resnet':
    features = tuple(m.d_features) or resnet.default_widths(shape, generator=False)
    return resnet.ResNetDiscriminator(features, m.num_classes, augment_policy(m.d_augment), conv_impl(m.d_conv_impl))
  if m.d_arch == 'mlp':
    return MLPDiscriminator(
      features=tuple(m.d_features),
      leaky_slope=m.d_leaky_slope,
      minibatch_std=m.d_minibatch_std,
      spectral_norm=m.d_spectral_norm,
    )
  return Discriminator(
    features=tuple(m.d_features) or dcgan_widths(shape, generator=False),
    kernel_size=5 if m.d_arch == 'dcgan' else 3,
    leaky_slope=m.d_leaky_slope,
    dropout=m.d_dropout,
    input_noise=m.d_input_noise,
    augment=augment_policy(m.d_augment),
    minibatch_std=m.d_minibatch_std,
    spectral_norm=m.d_spectral_norm,
    norm=m.d_norm,
    hidden=m.d_hidden,
    num_classes=m.num_classes,
    q_classes=m.latent_categories if info_head else 0,
    q_code_base=m.latent_code_base,
    q_pack=m.d_pack,
    conv_impl=conv_impl(m.d_conv_impl),
  )
