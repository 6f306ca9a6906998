import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import models
from ganjax.config import load_experiment, tutorial_config
from tests.conftest import EXPERIMENTS


def _build(config):
  return models.build_models(config.model, config.data.image_shape, config.loss.info_weight > 0)


def _count(params) -> int:
  return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))


def test_parameter_counts_match_the_tutorial():
  g, d = _build(tutorial_config())
  g_params = g.init(jax.random.key(0), jnp.zeros((1, 100)))['params']
  d_params = d.init(jax.random.key(1), jnp.zeros((1, 28, 28, 1)))['params']
  # Keras' summary of the tutorial model: Dense layers 100-256-512-1024-784 ...
  assert _count(g_params) == (100 * 256 + 256) + (256 * 512 + 512) + (512 * 1024 + 1024) + (1024 * 784 + 784)
  assert _count(g_params) == 1_486_352
  # ... and Conv 3x3x1x64, Conv 3x3x64x128, Dense 7*7*128 -> 1.
  assert _count(d_params) == (9 * 64 + 64) + (9 * 64 * 128 + 128) + (7 * 7 * 128 + 1)
  assert _count(d_params) == 80_769


def test_generator_output_shape_and_range():
  g, _ = _build(tutorial_config())
  z = jax.random.normal(jax.random.key(0), (5, 100)) * 10.0  # large inputs saturate tanh
  variables = g.init(jax.random.key(1), z)
  images = g.apply(variables, z)
  assert images.shape == (5, 28, 28, 1)
  assert float(images.min()) >= -1.0 and float(images.max()) <= 1.0
  assert float(images.std()) > 0


def test_discriminator_returns_one_logit_per_image():
  _, d = _build(tutorial_config())
  x = jax.random.uniform(jax.random.key(0), (7, 28, 28, 1), minval=-1, maxval=1)
  variables = d.init(jax.random.key(1), x)
  logits = d.apply(variables, x)
  assert logits.shape == (7,)
  assert np.all(np.isfinite(logits))


def test_discriminator_feature_map_sizes():
  _, d = _build(tutorial_config())
  x = jnp.zeros((1, 28, 28, 1))
  shapes = jax.tree.map(lambda p: p.shape, d.init(jax.random.key(0), x)['params'])
  # Two stride-2 SAME convolutions take 28x28 to 14x14 to 7x7.
  assert shapes['Dense_0']['kernel'] == (7 * 7 * 128, 1)


def test_batchnorm_generator_has_running_statistics():
  config = tutorial_config()
  config.model.g_norm = 'batch'
  g, _ = _build(config)
  variables = g.init(jax.random.key(0), jnp.zeros((2, 100)))
  assert set(variables) == {'params', 'batch_stats'}


@pytest.mark.parametrize('shape', [(28, 28, 1), (32, 32, 3)])
def test_dcgan_generator_implementations_share_parameters_and_outputs(shape):
  config = tutorial_config()
  config.data.image_shape = shape
  config.model.g_arch = 'dcgan'
  config.model.g_features = (32, 16) if shape[0] == 28 else (32, 16, 8)
  config.model.g_conv_impl = 'xla'
  ref, _ = _build(config)
  config.model.g_conv_impl = 'patches'
  fast, _ = _build(config)
  z = jax.random.normal(jax.random.key(0), (4, 100))
  variables = ref.init(jax.random.key(1), z)
  assert jax.tree.structure(variables) == jax.tree.structure(fast.init(jax.random.key(1), z))
  (a, _), (b, _) = (m.apply(variables, z, mutable=['batch_stats']) for m in (ref, fast))
  np.testing.assert_allclose(b, a, atol=1e-5)


def test_auto_conv_impl_is_patches_on_cpu_and_xla_on_accelerators(monkeypatch):
  config = load_experiment(EXPERIMENTS / 'mnist_gan.py')
  assert config.model.d_conv_impl == config.model.g_conv_impl == 'auto'
  for backend, want in (('cpu', 'patches'), ('gpu', 'xla'), ('tpu', 'xla')):
    monkeypatch.setattr(jax, 'default_backend', lambda backend=backend: backend)
    g, d = _build(config)
    assert g.conv_impl == d.conv_impl == want, backend
  config.model.d_conv_impl = 'xla'  # an explicit choice stays, whatever the backend
  assert _build(config)[1].conv_impl == 'xla'


@pytest.mark.parametrize('classes', [0, 10])
def test_the_sngan_resnet_has_mimicrys_parameter_counts_at_32x32(classes):
  config = load_experiment(EXPERIMENTS / 'images_sngan.py')
  config.data.image_shape = (32, 32, 3)
  config.model.num_classes = classes
  g, d = _build(config)
  g_vars = g.init(jax.random.key(0), jnp.zeros((2, 128)), train=False, labels=jnp.zeros((2,), jnp.int32))
  d_vars = d.init(jax.random.key(1), jnp.zeros((2, 32, 32, 3)), train=False, labels=jnp.zeros((2,), jnp.int32))
  if not classes:  # mimicry's SNGANGenerator32 and SNGANDiscriminator32
    assert _count(g_vars['params']) == 4_276_739 and _count(d_vars['params']) == 1_053_825
  else:  # conditional BN: a scale and shift per class instead of one learned pair; projection: 10 x 128
    assert _count(g_vars['params']) == 4_276_739 + 7 * 2 * 256 * (classes - 1)
    assert _count(d_vars['params']) == 1_053_825 + classes * 128
  # Every D layer is spectrally normalised: its estimates live in batch_stats.
  kernels = [path for path, _ in jax.tree_util.tree_flatten_with_path(d_vars['params'])[0] if 'kernel' in str(path)]
  assert len(kernels) == 11 and len(jax.tree.leaves(d_vars['batch_stats'])) == 2 * len(kernels)  # u and sigma


@pytest.mark.parametrize('shape, features', [((2, 4, 4, 8), 16), ((3, 5, 7, 2), 16), ((2, 6, 6, 16), 3)])
def test_winograd_convolution_equals_lax_conv_and_the_resnet_g_is_unchanged(shape, features):
  """`winograd.Conv3x3` (F(2x2, 3x3), odd sides included; all taps in one matmul for 3 outputs) gives
  lax.conv's numbers and gradients with the same parameters, and the whole ResNet G that uses it (with
  its shortcut convolved before upsampling) equals the literal G (`model.g_conv_impl='xla'`) in outputs
  and gradients."""
  from ganjax import resnet, winograd

  x = jax.random.normal(jax.random.key(0), shape)
  variables, _ = _fast_equals_literal(winograd.Conv3x3, features, x)
  conv = nn.Conv(features, (3, 3))
  assert jax.tree.map(jnp.shape, variables) == jax.tree.map(jnp.shape, conv.init(jax.random.key(1), x))
  z = jax.random.normal(jax.random.key(3), (4, 16))
  g_fast, g_literal = (resnet.ResNetGenerator((16, 16), (16, 16, 3), conv_impl=impl) for impl in ('patches', 'xla'))
  g_vars = g_fast.init(jax.random.key(4), z)
  assert jax.tree.map(jnp.shape, g_vars) == jax.tree.map(jnp.shape, g_literal.init(jax.random.key(4), z))
  outputs = [g.apply(g_vars, z, mutable=['batch_stats']) for g in (g_fast, g_literal)]
  for got, ref in zip(jax.tree.leaves(outputs[0]), jax.tree.leaves(outputs[1]), strict=True):
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)

  def g_loss(g):
    return lambda v, z: jnp.sum(jnp.sin(g.apply(v, z, mutable=['batch_stats'])[0]))

  grads = [jax.grad(g_loss(g), argnums=(0, 1))(g_vars, z) for g in (g_fast, g_literal)]
  for got, ref in zip(jax.tree.leaves(grads[0]), jax.tree.leaves(grads[1]), strict=True):
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


def _fast_equals_literal(layer, features: int, x: jax.Array, grad_rtol: float = 1e-4):
  """`layer(features, ..., fast=True)` and its `fast=False` twin share a parameter tree and, at the same
  (perturbed, so the bias is not zero) parameters, give the same outputs and gradients on x.
  Returns (the parameters, the literal output)."""
  from ganjax import resnet

  fast, literal = (layer(features, resnet._BRANCH, fast=flag) for flag in (True, False))
  variables = fast.init(jax.random.key(1), x)
  assert jax.tree.map(jnp.shape, variables) == jax.tree.map(jnp.shape, literal.init(jax.random.key(1), x))
  variables = jax.tree.map(lambda v: v + 0.1 * jax.random.normal(jax.random.key(2), v.shape), variables)
  want = literal.apply(variables, x)
  np.testing.assert_allclose(fast.apply(variables, x), want, atol=1e-5)
  _same_grads(fast, literal, variables, x, rtol=grad_rtol)
  return variables, want


def _same_grads(a: nn.Module, b: nn.Module, variables, x, rtol: float = 1e-4) -> None:
  """a and b have the same gradients (parameters and input) of a non-linear function of their outputs."""

  def grads(module):
    return jax.grad(lambda v, x: jnp.sum(jnp.sin(module.apply(v, x))), argnums=(0, 1))(variables, x)

  for got, ref in zip(jax.tree.leaves(grads(a)), jax.tree.leaves(grads(b)), strict=True):
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=1e-4)


@pytest.mark.parametrize('shape', [(2, 8, 8, 5), (3, 6, 10, 2)])
def test_the_resnets_fused_conv_and_pool_equals_conv_then_pool(shape):
  """`resnet.ConvPool` computes a 3x3 convolution then 2x2 average pooling as one 2x2 convolution on the
  space-to-depth (the CPU default): the same numbers, gradients and parameter tree as the literal layers,
  and the whole D (spectral norm and the pooled shortcut included) gives the same logits and gradients."""
  from ganjax import resnet

  x = jax.random.normal(jax.random.key(0), shape)
  _, want = _fast_equals_literal(resnet.ConvPool, 6, x)
  assert want.shape == (shape[0], shape[1] // 2, shape[2] // 2, 6)
  images = jax.random.normal(jax.random.key(3), (2, 16, 16, 3))
  d_fast, d_literal = (resnet.ResNetDiscriminator((16, 16, 16, 16), conv_impl=impl) for impl in ('patches', 'xla'))
  d_vars = d_fast.init(jax.random.key(4), images)
  assert jax.tree.map(jnp.shape, d_vars) == jax.tree.map(jnp.shape, d_literal.init(jax.random.key(4), images))
  np.testing.assert_allclose(d_fast.apply(d_vars, images), d_literal.apply(d_vars, images), rtol=1e-5, atol=1e-5)
  _same_grads(d_fast, d_literal, d_vars, images)
  config = load_experiment(EXPERIMENTS / 'images_sngan.py')
  config.data.image_shape = (32, 32, 3)
  assert _build(config)[1].conv_impl == 'patches'


@pytest.mark.parametrize('shape', [(2, 4, 4, 8), (3, 5, 7, 2)])
def test_the_resnets_phase_upsampling_convolution_equals_upsampling_then_conv(shape):
  """`resnet.UpConv` computes nearest 2x then a 3x3 convolution by output phases (the CPU default): the
  same numbers, gradients and parameter tree as the literal layer (`model.g_conv_impl='xla'`)."""
  from ganjax import resnet

  x = jax.random.normal(jax.random.key(0), shape)
  _, want = _fast_equals_literal(resnet.UpConv, 6, x, grad_rtol=0.0)  # its bound before the helper: atol only
  assert want.shape == (shape[0], 2 * shape[1], 2 * shape[2], 6)
  # The generator picks it through model.g_conv_impl: phases on CPU ('auto'), the literal layer for 'xla'.
  config = load_experiment(EXPERIMENTS / 'images_sngan.py')
  config.data.image_shape = (32, 32, 3)
  assert _build(config)[0].conv_impl == 'patches'
  config.model.g_conv_impl = 'xla'
  assert _build(config)[0].conv_impl == 'xla'
