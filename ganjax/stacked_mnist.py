"""Stacked MNIST: three shipped digits as the R, G and B channels, 1,000 modes (Metz et al. 2017, PacGAN).

The data (`data.source='stacked_mnist'`): `data.stacked_size` images (128,000 by default, as PacGAN),
each three digits drawn independently from the shipped MNIST split (its classifier's half with
`data.clean_split`). Digit k of image i is a pure function of (`data.stacked_seed`, i, k): the same
stacks for every run seed, sweep member and process. 28x28x3, or 32x32x3 zero-padded
(`data.image_shape=(32, 32, 3)`). Label: 100 d_R + 10 d_G + d_B.

The metrics: ganjax's MNIST classifier reads each channel, so each sample falls in one of 1,000 modes.
`modes` counts the modes with at least one sample; `kl_modes` is KL(mode histogram || uniform) in
nats (0 for a perfectly even cover, log 1000 = 6.91 for one mode). PacGAN's protocol: 26,000 samples
(`eval.num_samples`). `kl_digits` is the sum over the channels of KL(that channel's digit histogram ||
uniform over 10): the part of `kl_modes` that uneven digit frequencies explain; the rest,
`kl_modes - kl_digits` >= 0, is the channels' total correlation (combinations drawn too often or
missing while each channel's digits are even).
"""

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from ganjax import input_pipeline, metrics

NUM_MODES = 1000
SHAPES = ((28, 28, 3), (32, 32, 3))


@functools.partial(jax.jit, static_argnames=('count', 'num_digits'))
def _draws(seed: int, count: int, num_digits: int) -> jax.Array:
  key = jax.random.key(seed)
  one = lambda i: jax.random.randint(jax.random.fold_in(key, i), (3,), 0, num_digits)  # noqa: E731
  return jax.vmap(one)(jnp.arange(count))


def digit_indices(seed: int, count: int, num_digits: int) -> np.ndarray:
  """(count, 3) indices into the digits: row i is a function of (seed, i) alone, whatever `count` is."""
  return np.asarray(_draws(seed, count, num_digits))


def stack(digits: np.ndarray, labels: np.ndarray, index: np.ndarray, shape) -> tuple[np.ndarray, np.ndarray]:
  """(images (N, *shape) uint8, labels (N,)): digits[index[:, k]] as channel k, zero-padded to `shape`."""
  images = np.stack([digits[index[:, k], :, :, 0] for k in range(3)], axis=-1)
  pad = [(shape[0] - 28) // 2, (shape[1] - 28) // 2]
  if any(pad):
    images = np.pad(images, ((0, 0), (pad[0], pad[0]), (pad[1], pad[1]), (0, 0)))
  modes = labels[index] @ np.array([100, 10, 1])
  return images, modes.astype(np.int32)


def load(config: ml_collections.ConfigDict) -> input_pipeline.Dataset:
  """The stacked set a config names (`data.stacked_size`, `data.stacked_seed`, `data.clean_split`)."""
  d = config.data
  mnist = input_pipeline.load_shipped_mnist()
  digits, labels = mnist.images, mnist.labels
  if d.clean_split:
    digits, labels = digits[: input_pipeline.CLASSIFIER_HALF], labels[: input_pipeline.CLASSIFIER_HALF]
  index = digit_indices(d.stacked_seed, d.stacked_size, len(digits))
  images, modes = stack(digits, labels, index, tuple(d.image_shape))
  half = ' (classifier half)' if d.clean_split else ''
  return input_pipeline.Dataset(images, modes, f'stacked MNIST{half}: {d.stacked_size} stacks')


def channels(samples: np.ndarray) -> np.ndarray:
  """(N, H, W, 3) samples in [-1, 1] -> (3N, 28, 28, 1): each channel a grey digit, a 32x32 sample cropped."""
  h, w = samples.shape[1:3]
  top, left = (h - 28) // 2, (w - 28) // 2
  crop = samples[:, top : top + 28, left : left + 28, :]
  return np.transpose(crop, (3, 0, 1, 2))[..., None].reshape(-1, 28, 28, 1)


def mode_stats(modes: np.ndarray) -> dict[str, float]:
  """`modes` covered (>= 1 sample), `kl_modes` = KL(histogram || uniform over 1,000) and `kl_digits` (the
  channels' digit histograms' KLs to uniform, summed), in nats."""
  digits = (modes // 100, modes // 10 % 10, modes % 10)
  p = np.bincount(modes, minlength=NUM_MODES) / len(modes)
  return {
    'modes': int((p > 0).sum()),
    'kl_modes': _kl_to_uniform(p),
    'kl_digits': sum(_kl_to_uniform(np.bincount(d, minlength=10) / len(modes)) for d in digits),
  }


def modes_of(digits: np.ndarray) -> np.ndarray:
  """Channel digits (3N,), R of every sample first (as `channels` lays them out) -> modes 100 d_R + 10 d_G + d_B."""
  digits = digits.reshape(3, -1)
  return digits[0] * 100 + digits[1] * 10 + digits[2]


def _kl_to_uniform(p: np.ndarray) -> float:
  seen = p > 0
  return float(np.sum(p[seen] * np.log(p[seen] * len(p))))


class ModeCounter:
  """`__call__(samples)`: modes, kl_modes and pixel_std of samples (N, H, W, 3) in [-1, 1]."""

  def __init__(self):
    from ganjax import classifier

    self.params, self.predict = classifier.load(), classifier.predict

  def logits(self, samples: np.ndarray) -> np.ndarray:
    """The classifier's logits (3N, 10) for each channel of `samples` (N, H, W, 3), R of every sample first."""
    _, logits = self.predict(self.params, channels(np.asarray(samples, np.float32)))
    return np.asarray(logits)

  def modes(self, samples: np.ndarray) -> np.ndarray:
    """Each sample's mode, 100 d_R + 10 d_G + d_B, as the classifier reads its channels."""
    return modes_of(np.argmax(self.logits(samples), axis=1))

  def __call__(self, samples: np.ndarray) -> dict[str, float]:
    return {**mode_stats(self.modes(samples)), 'pixel_std': metrics.pixel_std(samples)}
