"""ganjax.patch_conv: the patch convolutions compute lax's functions, in value, gradient and second order."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import models
from ganjax.patch_conv import PatchConv, PatchConvTranspose


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
  ref = nn.ConvTranspose(features, (kernel, kernel), strides=(2, 2), padding='SAME')
  fast = PatchConvTranspose(features, kernel)
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
  conv, ref = PatchConv(4, kernel), nn.Conv(4, (kernel, kernel), strides=(2, 2), padding='SAME')
  up = PatchConvTranspose(2, kernel)
  up_ref = nn.ConvTranspose(2, (kernel, kernel), strides=(2, 2), padding='SAME')
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
