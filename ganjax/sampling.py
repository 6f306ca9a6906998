"""Drawing samples from a trained (restored) generator."""

import functools

import jax
import numpy as np

from ganjax import train_step
from ganjax.checkpoint import Run


@functools.partial(jax.jit, static_argnames=('batch_size', 'latent_dim'))
def _generate(g_state: train_step.GState, key: jax.Array, batch_size: int, latent_dim: int) -> jax.Array:
  z = jax.random.normal(key, (batch_size, latent_dim))
  return train_step.generate(g_state, z, train=False)[0]


def sample(run: Run, num_samples: int, seed: int = 0, batch_size: int = 1000) -> np.ndarray:
  """`num_samples` images (N, H, W, C) in [-1, 1] from `run`'s generator, as numpy.

  Generated `batch_size` at a time (so 50,000 samples fit in memory); batch i
  uses the key `fold_in(key(seed), i)`, so the same seed and batch size always
  give the same samples.
  """
  if num_samples <= 0:
    raise ValueError(f'num_samples must be > 0, got {num_samples}')
  key = jax.random.key(seed)
  latent_dim = run.config.model.latent_dim
  out = []
  for i, start in enumerate(range(0, num_samples, batch_size)):
    n = min(batch_size, num_samples - start)
    # Every batch has the full shape (one compilation); the last one is cut.
    images = _generate(run.g_state, jax.random.fold_in(key, i), batch_size, latent_dim)
    out.append(np.asarray(images[:n]))
  return np.concatenate(out)
