import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import models
from ganjax.config import load_experiment, tutorial_config
from tests.conftest import EXPERIMENTS


def _count(params) -> int:
  return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))


def test_parameter_counts_match_the_tutorial():
  g, d = models.build_models(tutorial_config())
  g_params = g.init(jax.random.key(0), jnp.zeros((1, 100)))['params']
  d_params = d.init(jax.random.key(1), jnp.zeros((1, 28, 28, 1)))['params']
  # Keras' summary of the tutorial model: Dense layers 100-256-512-1024-784 ...
  assert _count(g_params) == (100 * 256 + 256) + (256 * 512 + 512) + (512 * 1024 + 1024) + (1024 * 784 + 784)
  assert _count(g_params) == 1_486_352
  # ... and Conv 3x3x1x64, Conv 3x3x64x128, Dense 7*7*128 -> 1.
  assert _count(d_params) == (9 * 64 + 64) + (9 * 64 * 128 + 128) + (7 * 7 * 128 + 1)
  assert _count(d_params) == 80_769


def test_generator_output_shape_and_range():
  g, _ = models.build_models(tutorial_config())
  z = jax.random.normal(jax.random.key(0), (5, 100)) * 10.0  # large inputs saturate tanh
  variables = g.init(jax.random.key(1), z)
  images = g.apply(variables, z)
  assert images.shape == (5, 28, 28, 1)
  assert float(images.min()) >= -1.0 and float(images.max()) <= 1.0
  assert float(images.std()) > 0


def test_discriminator_returns_one_logit_per_image():
  _, d = models.build_models(tutorial_config())
  x = jax.random.uniform(jax.random.key(0), (7, 28, 28, 1), minval=-1, maxval=1)
  variables = d.init(jax.random.key(1), x)
  logits = d.apply(variables, x)
  assert logits.shape == (7,)
  assert np.all(np.isfinite(logits))


def test_discriminator_feature_map_sizes():
  _, d = models.build_models(tutorial_config())
  x = jnp.zeros((1, 28, 28, 1))
  shapes = jax.tree.map(lambda p: p.shape, d.init(jax.random.key(0), x)['params'])
  # Two stride-2 SAME convolutions take 28x28 to 14x14 to 7x7.
  assert shapes['Dense_0']['kernel'] == (7 * 7 * 128, 1)


def test_batchnorm_generator_has_running_statistics():
  config = tutorial_config()
  config.model.g_norm = 'batch'
  g, _ = models.build_models(config)
  variables = g.init(jax.random.key(0), jnp.zeros((2, 100)))
  assert set(variables) == {'params', 'batch_stats'}


@pytest.mark.parametrize(('kernel', 'channels', 'size'), [(3, 1, 28), (3, 64, 14), (3, 8, 7), (5, 3, 32), (5, 16, 9)])
def test_patch_convolution_equals_lax_conv_in_value_and_gradient(kernel, channels, size):
  x = jax.random.normal(jax.random.key(0), (4, size, size, channels))
  ref = models.Discriminator(features=(8, 16), kernel_size=kernel, conv_impl='xla')
  fast = models.Discriminator(features=(8, 16), kernel_size=kernel, conv_impl='patches')
  variables = ref.init(jax.random.key(1), x, train=False)
  # The same parameter tree: checkpoints fit either implementation.
  assert jax.tree.structure(variables) == jax.tree.structure(fast.init(jax.random.key(1), x, train=False))
  np.testing.assert_allclose(fast.apply(variables, x, train=False), ref.apply(variables, x, train=False), atol=1e-5)

  def grads(model):
    return jax.grad(lambda v, x: jnp.sum(model.apply(v, x, train=False) ** 2), argnums=(0, 1))(variables, x)

  for a, b in zip(jax.tree.leaves(grads(fast)), jax.tree.leaves(grads(ref)), strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
  ('kernel', 'size', 'channels', 'features'), [(5, 7, 16, 8), (5, 14, 8, 1), (5, 4, 6, 3), (3, 5, 4, 2), (4, 4, 3, 5)]
)
def test_patch_transposed_convolution_equals_lax_in_value_and_gradient(kernel, size, channels, features):
  x = jax.random.normal(jax.random.key(0), (3, size, size, channels))
  ref = models.nn.ConvTranspose(features, (kernel, kernel), strides=(2, 2), padding='SAME')
  fast = models.PatchConvTranspose(features, kernel)
  variables = ref.init(jax.random.key(1), x)
  variables['params']['bias'] = jax.random.normal(jax.random.key(2), (features,))  # a non-zero bias is checked too
  assert jax.tree.structure(variables) == jax.tree.structure(fast.init(jax.random.key(1), x))
  out = fast.apply(variables, x)
  assert out.shape == (3, 2 * size, 2 * size, features)
  np.testing.assert_allclose(out, ref.apply(variables, x), atol=1e-5)

  def grads(model):
    return jax.grad(lambda v, x: jnp.sum(jnp.sin(model.apply(v, x))), argnums=(0, 1))(variables, x)

  for a, b in zip(jax.tree.leaves(grads(fast)), jax.tree.leaves(grads(ref)), strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('kernel', [3, 4, 5])
def test_patch_layers_take_rectangular_images_like_lax(kernel):
  # Rows and columns have their own padding and phases: a 9 x 14 image must come out as lax's does.
  x = jax.random.normal(jax.random.key(0), (2, 9, 14, 3))
  conv, ref = models.PatchConv(4, kernel), models.nn.Conv(4, (kernel, kernel), strides=(2, 2), padding='SAME')
  up = models.PatchConvTranspose(2, kernel)
  up_ref = models.nn.ConvTranspose(2, (kernel, kernel), strides=(2, 2), padding='SAME')
  for fast, slow in ((conv, ref), (up, up_ref)):
    variables = slow.init(jax.random.key(1), x)

    def loss(model, v, x):
      return jnp.sum(jnp.sin(model.apply(v, x)))

    np.testing.assert_allclose(fast.apply(variables, x), slow.apply(variables, x), atol=1e-5)
    for a, b in zip(
      jax.tree.leaves(jax.grad(functools.partial(loss, fast), argnums=(0, 1))(variables, x)),
      jax.tree.leaves(jax.grad(functools.partial(loss, slow), argnums=(0, 1))(variables, x)),
      strict=True,
    ):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('shape', [(28, 28, 1), (32, 32, 3)])
def test_dcgan_generator_implementations_share_parameters_and_outputs(shape):
  config = tutorial_config()
  config.data.image_shape = shape
  config.model.g_arch = 'dcgan'
  config.model.g_features = (32, 16) if shape[0] == 28 else (32, 16, 8)
  config.model.g_conv_impl = 'xla'
  ref, _ = models.build_models(config)
  config.model.g_conv_impl = 'patches'
  fast, _ = models.build_models(config)
  z = jax.random.normal(jax.random.key(0), (4, 100))
  variables = ref.init(jax.random.key(1), z)
  assert jax.tree.structure(variables) == jax.tree.structure(fast.init(jax.random.key(1), z))
  (a, _), (b, _) = (m.apply(variables, z, mutable=['batch_stats']) for m in (ref, fast))
  np.testing.assert_allclose(b, a, atol=1e-5)


def test_patch_convolution_supports_second_order_gradients_like_lax_conv():
  # R1 and WGAN-GP differentiate D's input gradient again with respect to D's params: through
  # PatchConv's custom backward pass this must give lax.conv's second-order gradients.
  x = jax.random.normal(jax.random.key(0), (4, 14, 14, 1))
  ref = models.Discriminator(features=(8, 16), conv_impl='xla')
  fast = models.Discriminator(features=(8, 16), conv_impl='patches')
  variables = ref.init(jax.random.key(1), x, train=False)

  def penalty_grad(model):
    def penalty(v):
      grad_x = jax.grad(lambda x: jnp.sum(model.apply(v, x, train=False)))(x)
      return jnp.sum(grad_x**2)

    return jax.grad(penalty)(variables)

  for a, b in zip(jax.tree.leaves(penalty_grad(fast)), jax.tree.leaves(penalty_grad(ref)), strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_auto_conv_impl_is_patches_on_cpu_and_xla_on_accelerators(monkeypatch):
  config = load_experiment(EXPERIMENTS / 'mnist_gan.py')
  assert config.model.d_conv_impl == config.model.g_conv_impl == 'auto'
  for backend, want in (('cpu', 'patches'), ('gpu', 'xla'), ('tpu', 'xla')):
    monkeypatch.setattr(jax, 'default_backend', lambda backend=backend: backend)
    g, d = models.build_models(config)
    assert g.conv_impl == d.conv_impl == want, backend
  config.model.d_conv_impl = 'xla'  # an explicit choice stays, whatever the backend
  assert models.build_models(config)[1].conv_impl == 'xla'


def test_lax_conv_runs_get_eigen_convolutions_when_this_jaxlib_knows_the_flag():
  assert not models.xla_knows('--xla_ganjax_no_such_flag=1')  # XLA aborts the probe, not this process
  known = models.xla_knows(models.EIGEN_CONV_FLAG)
  model = tutorial_config().model
  env = {}
  assert not models.prefer_eigen_convolutions(model, env) and env == {}  # 'auto': patches on CPU, no lax.conv
  model.d_conv_impl = 'xla'
  assert models.prefer_eigen_convolutions(model, env) == known
  assert env == ({'XLA_FLAGS': models.EIGEN_CONV_FLAG} if known else {})
  chosen = {'XLA_FLAGS': '--xla_cpu_experimental_ynn_fusion_type=individual_dot'}
  assert not models.prefer_eigen_convolutions(model, chosen)  # the user's own choice stays
  assert chosen == {'XLA_FLAGS': '--xla_cpu_experimental_ynn_fusion_type=individual_dot'}
