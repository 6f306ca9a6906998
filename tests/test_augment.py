"""DiffAugment: each transform does what it says, per image, differentiably; D uses it in training only."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import augment, models
from ganjax import config as config_lib
from ganjax.errors import ConfigError
from ganjax.validate import validate


def _images(n=16, side=28):
  return jax.random.uniform(jax.random.key(3), (n, side, side, 1), minval=-1.0, maxval=1.0)


def test_translation_is_a_shift_of_at_most_an_eighth_with_the_border_repeated():
  x = _images()
  y = np.asarray(augment.diff_augment(x, jax.random.key(0), ('translation',)))
  padded = np.pad(np.asarray(x), ((0, 0), (3, 3), (3, 3), (0, 0)), mode='edge')
  shifts = []
  for i in range(len(x)):
    found = [(r, c) for r in range(7) for c in range(7) if np.array_equal(padded[i, r : r + 28, c : c + 28], y[i])]
    assert found, f'image {i} is not a shift of its input'
    shifts.append(found[0])
  assert len(set(shifts)) > 1, 'every image got the same shift: the draw is not per image'


def test_cutout_greys_one_half_side_square_and_keeps_the_rest():
  x = _images()
  y = np.asarray(augment.diff_augment(x, jax.random.key(1), ('cutout',)))
  for i in range(len(x)):
    changed = y[i, ..., 0] != np.asarray(x[i, ..., 0])
    assert np.all(y[i, ..., 0][changed] == 0.0)
    rows, cols = np.nonzero(changed)
    assert len(rows), 'nothing was cut out'
    # One axis-aligned rectangle, at most 14 x 14 (smaller where it hangs over the border), filled.
    h, w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
    assert h <= 14 and w <= 14 and changed.sum() == h * w


def test_color_is_a_per_image_affine_map():
  x = _images()
  y = np.asarray(augment.diff_augment(x, jax.random.key(2), ('color',)))
  scales = []
  for i in range(len(x)):
    a, b = np.polyfit(np.asarray(x[i]).ravel(), y[i].ravel(), 1)
    np.testing.assert_allclose(y[i], a * np.asarray(x[i]) + b, atol=1e-5)
    assert 0.5 <= a <= 1.5
    scales.append(a)
  assert np.std(scales) > 0.05


def test_gradients_flow_through_every_transform():
  x = _images(4)
  grad = jax.grad(lambda x: jnp.sum(augment.diff_augment(x, jax.random.key(0), augment.POLICIES) ** 2))(x)
  assert np.count_nonzero(np.asarray(grad)) > 0.5 * grad.size


def test_unknown_transform_is_a_config_error():
  config = config_lib.tutorial_config()
  config.model.d_augment = 'translation,flip'
  with pytest.raises(ConfigError, match=r"unknown transform\(s\) \['flip'\]"):
    validate(config)
  with pytest.raises(ValueError, match='flip'):
    augment.diff_augment(_images(2), jax.random.key(0), ('flip',))


def test_discriminator_augments_in_training_only():
  x = _images(8)
  plain = models.Discriminator(features=(8, 16))
  augmented = models.Discriminator(features=(8, 16), augment=('translation', 'cutout'))
  params = plain.init(jax.random.key(0), x, train=False)
  rngs = {'augment': jax.random.key(5)}
  np.testing.assert_array_equal(plain.apply(params, x, train=False), augmented.apply(params, x, train=False, rngs=rngs))
  train_plain = plain.apply(params, x, train=True, rngs=rngs)
  train_aug = augmented.apply(params, x, train=True, rngs=rngs)
  assert not np.allclose(train_plain, train_aug)
  np.testing.assert_array_equal(train_aug, augmented.apply(params, x, train=True, rngs=rngs))
