"""Drawing samples from a trained (restored) generator."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from ganjax import config as config_lib
from ganjax import states
from ganjax.checkpoint import Run


@jax.jit
def images(g_state: states.GState, z: jax.Array, labels: jax.Array | None = None) -> jax.Array:
  """G's images for latents `z` (and labels) in inference: the EMA generator when the run keeps one.

  The one jitted generator of samples, used by the training loop's grids and evaluation and by `sample`.
  """
  return states.generate(g_state, z, train=False, labels=labels)[0]


def images_in_chunks(
  g_state: states.GState, z: jax.Array, labels: jax.Array | None = None, chunk: int = 1000
) -> np.ndarray:
  """`images` for any number of latents, at most `chunk` through G at once, as numpy.

  In one call, the 26,000 samples of a Stacked MNIST evaluation needed 8 GB for the taps of the
  DCGAN's first transposed convolution alone, and two runs side by side were killed for memory.
  Every chunk has the full shape (one compilation): the last is padded, which changes no other
  sample (inference treats every sample on its own).
  """
  out = []
  for start in range(0, len(z), chunk):
    n = min(chunk, len(z) - start)
    pad = ((0, chunk - n),) if len(z) > chunk else ((0, 0),)
    zb = jnp.pad(z[start : start + n], (*pad, (0, 0)))
    lb = None if labels is None else jnp.pad(labels[start : start + n], pad)
    out.append(np.asarray(images(g_state, zb, lb))[:n])
  return np.concatenate(out)


# fold_in data of the standing statistics' latents (batches of samples use 0, 1, 2, ...)
STANDING_FOLD = 2**31 - 1


def standing(g_state: states.GState, config: ml_collections.ConfigDict, key: jax.Array) -> states.GState:
  """`g_state` with BatchNorm statistics of `config.eval.standing_stats` samples drawn from `key`.

  As it is when that is 0 or G has no BatchNorm. The samples come in batches of `eval.batch_size`
  (the last one full), with a conditional G's classes in turn.
  """
  num = config.eval.standing_stats
  if not num or not g_state.batch_stats:
    return g_state
  batch = config.eval.batch_size
  count = -(-num // batch)
  z = jax.random.normal(key, (count, batch, config.model.latent_dim))
  classes = config_lib.g_classes(config.model)
  labels = (jnp.arange(count * batch, dtype=jnp.int32) % classes).reshape(count, batch) if classes else None
  return states.standing_stats(g_state, z, labels)


def sample(
  run: Run, num_samples: int, seed: int = 0, batch_size: int = 1000, labels: int | np.ndarray | None = None
) -> np.ndarray:
  """`num_samples` images (N, H, W, C) in [-1, 1] from `run`'s generator, as numpy.

  Generated `batch_size` at a time (`images_in_chunks`, so 50,000 samples fit in memory); batch i
  uses the key `fold_in(key(seed), i)`, so the same seed and batch size always
  give the same samples. A conditional generator takes `labels`: one class
  for all, or one per sample (N,); by default the classes in turn
  (0, 1, ..., C-1, 0, ...), so every class gets an equal share. With `eval.standing_stats` in the
  run's config, G's BatchNorm statistics are first recomputed from that many samples (`standing`).
  """
  if num_samples <= 0:
    raise ValueError(f'num_samples must be > 0, got {num_samples}')
  classes = config_lib.g_classes(run.config.model)
  if labels is not None and not classes:
    raise ValueError('labels given, but this generator is not conditional (model.num_classes=0, latent_categories=0)')
  if classes:
    labels = np.arange(num_samples) % classes if labels is None else np.broadcast_to(labels, (num_samples,))
    labels = np.asarray(labels, np.int32)
    if labels.min() < 0 or labels.max() >= classes:
      raise ValueError(f'labels must be in [0, {classes}), got values from {labels.min()} to {labels.max()}')
  key = jax.random.key(seed)
  g_state = standing(run.g_state, run.config, jax.random.fold_in(key, STANDING_FOLD))
  # Whole batches of latents (the last one cut after G), so every call has the batch's shape.
  batches = range(-(-num_samples // batch_size))
  shape = (batch_size, run.config.model.latent_dim)
  z = jnp.concatenate([jax.random.normal(jax.random.fold_in(key, i), shape) for i in batches])
  labels = None if labels is None else jnp.asarray(np.resize(labels, len(z)))
  return images_in_chunks(g_state, z, labels, chunk=batch_size)[:num_samples]


def class_grid(run: Run, per_class: int = 10, seed: int = 0) -> np.ndarray:
  """A conditional generator's samples ordered class by class: (C * per_class, H, W, C) for a grid of C rows."""
  classes = config_lib.g_classes(run.config.model)
  if not classes:
    raise ValueError('class_grid needs a generator that takes labels (model.num_classes or latent_categories > 0)')
  return sample(run, classes * per_class, seed=seed, labels=np.repeat(np.arange(classes), per_class))
