"""Inference samples in chunks: the training loop's grids and evaluation, at any number of samples."""

import jax
import jax.numpy as jnp
import numpy as np

from ganjax import sampling, states


def test_chunks_of_full_shape_give_the_samples_of_one_call(tiny_config, monkeypatch):
  tiny_config.model.num_classes = 10  # labels are chunked and padded with the latents
  g, _ = states.create_states(tiny_config, jax.random.key(0))
  z = jax.random.normal(jax.random.key(1), (25, tiny_config.model.latent_dim))
  labels = jnp.arange(25, dtype=jnp.int32) % 10
  whole = np.asarray(sampling.images(g, z, labels))
  shapes = []
  images = sampling.images

  def recorded(g_state, zb, lb):
    shapes.append((zb.shape, lb.shape))
    return images(g_state, zb, lb)

  monkeypatch.setattr(sampling, 'images', recorded)
  chunked = sampling.images_in_chunks(g, z, labels, chunk=10)
  assert chunked.shape == whole.shape
  np.testing.assert_allclose(chunked, whole, rtol=1e-6, atol=1e-6)
  # three chunks, the last padded: one shape, so one compilation
  assert shapes == [((10, tiny_config.model.latent_dim), (10,))] * 3
  # a chunk larger than the request: one call of the request's own shape
  shapes.clear()
  np.testing.assert_array_equal(sampling.images_in_chunks(g, z, labels), whole)
  assert shapes == [((25, tiny_config.model.latent_dim), (25,))]
