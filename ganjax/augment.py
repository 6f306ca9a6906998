"""Differentiable augmentation of D's inputs (DiffAugment, Zhao et al. 2020).

D sees every image, real or fake, through the same random transforms, in its
own updates and in G's (the transforms are differentiable, so G's gradient
passes through them). With few training images (ganjax trains on 10,000) D
otherwise memorises the real set and starves G of useful gradient; because
fakes are augmented as reals are, G is not pushed to draw augmented digits.

Policies, applied in this order and each drawn independently per image:
- 'color': brightness + U(-0.5, 0.5), then contrast x U(0.5, 1.5) around the image mean;
- 'translation': a shift of up to 1/8 of the side in each axis, the border repeated;
- 'cutout': a square of half the side set to 0 (mid-grey in [-1, 1]).
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from ganjax.choices import AUGMENTS as POLICIES


def _color(x: jax.Array, key: jax.Array) -> jax.Array:
  b_key, c_key = jax.random.split(key)
  n = x.shape[0]
  x = x + jax.random.uniform(b_key, (n, 1, 1, 1), x.dtype, -0.5, 0.5)
  mean = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
  return (x - mean) * jax.random.uniform(c_key, (n, 1, 1, 1), x.dtype, 0.5, 1.5) + mean


def _translation(x: jax.Array, key: jax.Array) -> jax.Array:
  n, h, w, _ = x.shape
  ph, pw = h // 8, w // 8
  padded = jnp.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)), mode='edge')
  starts = jax.random.randint(key, (n, 2), 0, jnp.array([2 * ph + 1, 2 * pw + 1]))

  def crop(image, start):
    return jax.lax.dynamic_slice(image, (start[0], start[1], 0), (h, w, image.shape[-1]))

  return jax.vmap(crop)(padded, starts)


def _cutout(x: jax.Array, key: jax.Array) -> jax.Array:
  n, h, w, _ = x.shape
  ch, cw = h // 2, w // 2
  # The square's centre anywhere in the image, as DiffAugment: it may hang over the border.
  centre = jax.random.randint(key, (n, 2), 0, jnp.array([h + ch % 2, w + cw % 2]))
  rows = jnp.arange(h)[None, :, None]
  cols = jnp.arange(w)[None, None, :]
  top, left = centre[:, 0, None, None] - ch // 2, centre[:, 1, None, None] - cw // 2
  inside = (rows >= top) & (rows < top + ch) & (cols >= left) & (cols < left + cw)
  return jnp.where(inside[..., None], 0.0, x)


_TRANSFORMS = {'color': _color, 'translation': _translation, 'cutout': _cutout}


def diff_augment(x: jax.Array, key: jax.Array, policy: Sequence[str]) -> jax.Array:
  """Applies the transforms named in `policy` (a subset of POLICIES, applied in POLICIES' order) to (N, H, W, C)."""
  unknown = set(policy) - set(POLICIES)
  if unknown:
    raise ValueError(f'unknown augmentation(s) {sorted(unknown)}; choose from {POLICIES}')
  for i, name in enumerate(POLICIES):
    if name in policy:
      x = _TRANSFORMS[name](x, jax.random.fold_in(key, i))
  return x
