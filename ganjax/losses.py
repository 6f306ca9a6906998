"""GAN losses on discriminator logits, selected by `config.loss.name`.

- 'bce' (the tutorial, default): binary cross-entropy on D's sigmoid output,
  computed on logits (numerically stable, same value); G's loss is the
  non-saturating one, BCE of D(G(z)) against the "real" label, which is what
  training the stacked Keras model with label 1 computes.
- 'minimax': D as 'bce'; G minimises log(1 - D(G(z))) (Goodfellow et al. 2014).
- 'hinge': D minimises relu(1 - D(x)) + relu(1 + D(G(z))); G minimises -D(G(z)).
- 'lsgan': least squares (Mao et al. 2017) on D's raw output, targets 1 and 0;
  G minimises (D(G(z)) - 1)^2 / 2.
- 'wgan': Wasserstein (Arjovsky et al. 2017): D (the critic) minimises
  D(G(z)) - D(x), G minimises -D(G(z)); meant with the gradient penalty
  (`gradient_penalty`, Gulrajani et al. 2017) and several critic steps.

Regularisers on D, added to its loss with their weights: `gradient_penalty`
(WGAN-GP, on interpolates of real and fake) and `r1_penalty` (Mescheder et
al. 2018, on real images).
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from ganjax import choices


def bce(logits: jax.Array, label: float | jax.Array) -> jax.Array:
  """Mean binary cross-entropy of `logits` against a constant or per-example label."""
  labels = jnp.broadcast_to(jnp.asarray(label, logits.dtype), logits.shape)
  return optax.sigmoid_binary_cross_entropy(logits, labels).mean()


def accuracy(logits: jax.Array, is_real: bool) -> jax.Array:
  """Keras' binary accuracy against hard labels: D(x) > 0.5 counts as 'real'."""
  predicted_real = logits > 0
  return jnp.mean(predicted_real if is_real else ~predicted_real)


def g_loss_nonsaturating(fake_logits: jax.Array) -> jax.Array:
  """G's loss: BCE of D(G(z)) against label 1 (the tutorial's `combined` model)."""
  return bce(fake_logits, 1.0)


def _hinge_real(logits, real_label):
  return jnp.mean(jax.nn.relu(1.0 - logits))


def _lsgan_real(logits, real_label):
  return 0.5 * jnp.mean((logits - 1.0) ** 2)


def _wgan_real(logits, real_label):
  return -jnp.mean(logits)


def _generator_wgan(fake_logits):
  return -jnp.mean(fake_logits)


class Loss(NamedTuple):
  """One GAN loss: D's loss on real logits (with the real label), on fake logits, and G's loss."""

  d_real: Callable[[jax.Array, float], jax.Array]
  d_fake: Callable[[jax.Array], jax.Array]
  g: Callable[[jax.Array], jax.Array]


TABLE = {
  'bce': Loss(bce, lambda lg: bce(lg, 0.0), g_loss_nonsaturating),
  # log(1 - sigmoid(l)) = -softplus(l) = -BCE(l, 0)
  'minimax': Loss(bce, lambda lg: bce(lg, 0.0), lambda lg: -bce(lg, 0.0)),
  'hinge': Loss(_hinge_real, lambda lg: jnp.mean(jax.nn.relu(1.0 + lg)), _generator_wgan),
  'lsgan': Loss(_lsgan_real, lambda lg: 0.5 * jnp.mean(lg**2), lambda lg: 0.5 * jnp.mean((lg - 1.0) ** 2)),
  'wgan': Loss(_wgan_real, jnp.mean, _generator_wgan),
}
assert tuple(TABLE) == choices.LOSSES, 'losses.TABLE and choices.LOSSES must name the same losses'
LOSSES = choices.LOSSES


def register(name: str, loss: Loss) -> None:
  """Adds a loss that `loss.name` can select in this process (docs/extending.md); ValueError if taken."""
  if name in TABLE:
    raise ValueError(f'loss {name!r} exists already')
  TABLE[name] = loss
  choices.add('loss.name', name)


def _get(name: str) -> Loss:
  if name not in TABLE:
    raise ValueError(f'unknown loss {name!r}; known: {tuple(TABLE)}')
  return TABLE[name]


def d_real(logits: jax.Array, name: str = 'bce', real_label: float = 1.0) -> jax.Array:
  """D's loss on real images for loss `name` (`real_label` smooths 'bce' and 'minimax')."""
  return _get(name).d_real(logits, real_label)


def d_fake(logits: jax.Array, name: str = 'bce') -> jax.Array:
  """D's loss on generated images for loss `name`."""
  return _get(name).d_fake(logits)


def g_loss(fake_logits: jax.Array, name: str = 'bce') -> jax.Array:
  """G's loss on D's output for its samples, for loss `name`."""
  return _get(name).g(fake_logits)


def _input_grad_sq_norms(d_fn: Callable[[jax.Array], jax.Array], x: jax.Array) -> jax.Array:
  """Per-example squared norm of dD(x_i)/dx_i (D's logits summed: each example's logit depends on its input)."""
  grads = jax.grad(lambda x: jnp.sum(d_fn(x)))(x)
  return jnp.sum(jnp.square(grads).reshape(x.shape[0], -1), axis=1)


def gradient_penalty(d_fn: Callable[[jax.Array], jax.Array], real: jax.Array, fake: jax.Array, key: jax.Array):
  """WGAN-GP: mean over interpolates x = e*real + (1-e)*fake, e ~ U[0, 1] per example, of (|dD/dx| - 1)^2."""
  eps = jax.random.uniform(key, (real.shape[0],) + (1,) * (real.ndim - 1), real.dtype)
  x_hat = eps * real + (1.0 - eps) * fake
  norms = jnp.sqrt(_input_grad_sq_norms(d_fn, x_hat) + 1e-12)  # eps keeps the gradient finite at 0
  return jnp.mean(jnp.square(norms - 1.0))


def r1_penalty(d_fn: Callable[[jax.Array], jax.Array], real: jax.Array) -> jax.Array:
  """R1: half the mean squared norm of D's gradient at real images (multiplied by gamma = loss.r1_weight)."""
  return 0.5 * jnp.mean(_input_grad_sq_norms(d_fn, real))


def info_loss(q_logits: jax.Array, categories: jax.Array) -> jax.Array:
  """InfoGAN's term: the mean cross-entropy of D's Q head (B, K) on the latent categories (B,) G drew from.

  A packed D's Q gives (B / pack, pack * K), each member's guesses in turn: read as (B, K).
  """
  q = q_logits.reshape(categories.shape[0], -1)
  return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(q, categories))
