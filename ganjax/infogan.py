"""InfoGAN's latent categories written as several codes (`model.latent_code_base`).

One category c of K = base**n (`model.latent_categories`) is read as its n digits in `base`, most
significant first: n categorical codes, each uniform and independent of the others, as InfoGAN's
several codes (Chen et al. 2016). G sees each code's one-hot beside z; D's Q head guesses each code
with its own softmax. Their log-probabilities summed over the codes are a distribution over the K
categories, so the InfoGAN term stays one cross-entropy on c (`losses.info_loss`), equal to the sum
of the codes' cross-entropies. Stacked MNIST's 1,000 modes are three 10-way codes, one per channel;
one 1,000-way embedding and softmax each see a thousandth of the batch and never learned (docs/evaluation.md).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from ganjax.config import code_count


def code_digits(labels: jax.Array, categories: int, base: int) -> jax.Array:
  """(B,) categories -> (B, n) digits in `base`, the most significant first."""
  n = code_count(categories, base)
  return jnp.stack([labels // base ** (n - 1 - i) % base for i in range(n)], axis=-1)


def code_one_hots(labels: jax.Array, categories: int, base: int, dtype=jnp.float32) -> jax.Array:
  """(B,) categories -> (B, n * base): the codes' one-hots side by side, G's input beside z."""
  digits = code_digits(labels, categories, base)
  return jax.nn.one_hot(digits, base, dtype=dtype).reshape(labels.shape[0], -1)


def category_log_probs(q: jax.Array, categories: int, base: int, pack: int = 1) -> jax.Array:
  """Q's output (N, pack * n * base), one softmax per code -> (N, pack * K) log-probabilities of the categories.

  log q(c) = sum over codes i of log softmax_i(digit_i(c)); `pack` samples' guesses side by side.
  """
  n = code_count(categories, base)
  logp = jax.nn.log_softmax(q.reshape(q.shape[0], pack, n, base), axis=-1)
  total = logp[:, :, 0]
  for i in range(1, n):  # index = earlier digits * base + digit i
    total = (total[..., :, None] + logp[:, :, i, None, :]).reshape(q.shape[0], pack, -1)
  return total.reshape(q.shape[0], pack * categories)


def q_head(x: jax.Array, categories: int, code_base: int, pack: int, kernel_init) -> jax.Array:
  """D's Q head, called inside D: (N, pack * categories) logits, or with `code_base` the categories'
  log-probabilities from one softmax per code. Its Dense is D's 'Q' either way."""
  width = code_count(categories, code_base) * code_base if code_base else categories
  q = nn.Dense(pack * width, kernel_init=kernel_init, name='Q')(x)
  return category_log_probs(q, categories, code_base, pack) if code_base else q
