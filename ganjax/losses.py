"""GAN losses on discriminator logits.

The tutorial uses binary cross-entropy on D's sigmoid output; we compute it on
logits (numerically stable, same value). The generator's loss is the
non-saturating one: BCE of D(G(z)) against the "real" label, which is what
training the stacked Keras model with label 1 computes.
"""

import jax
import jax.numpy as jnp
import optax


def bce(logits: jax.Array, label: float | jax.Array) -> jax.Array:
  """Mean binary cross-entropy of `logits` against a constant or per-example label."""
  labels = jnp.broadcast_to(jnp.asarray(label, logits.dtype), logits.shape)
  return optax.sigmoid_binary_cross_entropy(logits, labels).mean()


def accuracy(logits: jax.Array, is_real: bool) -> jax.Array:
  """Keras' binary accuracy against hard labels: D(x) > 0.5 counts as 'real'."""
  predicted_real = logits > 0
  return jnp.mean(predicted_real if is_real else ~predicted_real)


def d_loss_real(logits: jax.Array, real_label: float = 1.0) -> jax.Array:
  """D's loss on real images; `real_label` < 1 is one-sided label smoothing."""
  return bce(logits, real_label)


def d_loss_fake(logits: jax.Array) -> jax.Array:
  """D's loss on generated images (label 0)."""
  return bce(logits, 0.0)


def g_loss_nonsaturating(fake_logits: jax.Array) -> jax.Array:
  """G's loss: BCE of D(G(z)) against label 1 (the tutorial's `combined` model)."""
  return bce(fake_logits, 1.0)
