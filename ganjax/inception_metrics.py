"""A run's samples scored on the FID Inception: FID, KID, IS, precision/recall/density/coverage.

`InceptionScorer` is what the periodic evaluation and `ganjax.evaluate` use for images that are not
MNIST digits, or for any run with `eval.features='inception'`. The reference is the run's training
data: `eval.reference_num` of its images (a fixed random subset; 0 for all), whose Inception
statistics are computed once and cached

- beside a packed dataset (`data.path`), or under `~/.cache/ganjax/fid_reference/` for other sources
  or a read-only dataset folder,
- in a file named by the SHA-256 of the training images, the weights' SHA-256 and the count, so a
  changed dataset or other weights never reuse a stale entry.

Metric names say their feature space: `fid_inception`, `kid_inception`, `is`, `precision_inception`,
`recall_inception`, `density_inception`, `coverage_inception` (k = 5 for all four, as Naeem et al.
2020), and `pixel_std`. FID from N samples is biased upward, more for small N (Chong & Forsyth 2020):
compare runs only at equal `eval.num_samples` and `eval.reference_num`.
"""

import dataclasses
import os
import pathlib
import sys

import ml_collections
import numpy as np

from ganjax import fid, host, inception, metrics, packed
from ganjax.errors import DataError

KNN = 5  # precision/recall/density/coverage neighbours, as Naeem et al. 2020 and their prdc package
KEPT_FEATURES = 5000  # reference features kept in the cache for KID and the k-NN metrics
HOW_TO_TURN_ON = (
  f'FID is off: download {inception.WEIGHTS_URL} and set --config.eval.inception_weights=FILE '
  f'(or {inception.WEIGHTS_ENV}=FILE) for FID, KID and IS on the FID Inception'
)


@dataclasses.dataclass(frozen=True)
class Reference:
  """Inception statistics of real images: mean and covariance of all, features of up to KEPT_FEATURES."""

  mu: np.ndarray
  sigma: np.ndarray
  features: np.ndarray
  count: int


def subset(count: int, num: int) -> np.ndarray:
  """A fixed random choice of `num` of `count` indices (all for 0), sorted: packed sets are sorted by class."""
  if not num or num >= count:
    return np.arange(count)
  return np.sort(np.random.default_rng(0).choice(count, num, replace=False))


def cache_file(config: ml_collections.ConfigDict, data_sha: str, weights_sha: str, count: int) -> pathlib.Path:
  """Where a reference is cached: beside a packed dataset when that folder is writable, else ~/.cache."""
  name = f'fid_reference-{data_sha[:16]}-{weights_sha[:16]}-{count}.npz'
  if config.data.source == 'folder' and os.access(config.data.path, os.W_OK):
    return pathlib.Path(config.data.path) / name
  return host.cache_root() / 'fid_reference' / name


def _read(file: pathlib.Path) -> Reference | None:
  try:
    with np.load(file) as z:
      return Reference(z['mu'], z['sigma'], z['features'], int(z['count']))
  except (OSError, ValueError, KeyError, EOFError):  # missing or damaged: computed again
    return None


def _write(file: pathlib.Path, ref: Reference) -> None:
  partial = file.with_name(f'.{file.name}.partial-{os.getpid()}.npz')
  try:
    file.parent.mkdir(parents=True, exist_ok=True)
    np.savez(partial, mu=ref.mu, sigma=ref.sigma, features=ref.features, count=ref.count)
    partial.replace(file)
  except OSError:  # an unwritable cache: computed again next time
    partial.unlink(missing_ok=True)


def reference(
  config: ml_collections.ConfigDict, images_u8: np.ndarray, variables: dict, weights_sha: str, say=print
) -> Reference:
  """The training images' reference statistics, from the cache or computed (with a progress bar) and cached."""
  index = subset(len(images_u8), config.eval.reference_num)
  file = cache_file(config, packed.content_sha256(images_u8), weights_sha, len(index))
  cached = _read(file)
  if cached is not None:
    return cached
  say(f'Inception statistics of {len(index)} training images, computed once and cached in {file}')
  pool, _ = inception.extract(variables, _Rows(images_u8, index), config.eval.batch_size, progress=True)
  mu, sigma = fid.statistics(pool)
  ref = Reference(mu, sigma, pool[:KEPT_FEATURES].astype(np.float32), len(index))
  _write(file, ref)
  return ref


class _Rows:
  """Rows `index` of an array, sliced lazily: `extract` reads a batch at a time from a memory map."""

  def __init__(self, array: np.ndarray, index: np.ndarray):
    self.array, self.index = array, index

  def __len__(self) -> int:
    return len(self.index)

  def __getitem__(self, part: slice) -> np.ndarray:
    return np.asarray(self.array[self.index[part]])


class InceptionScorer:
  """`__call__(samples)`: the Inception metrics of samples (N, H, W, C) in [-1, 1] against a Reference."""

  def __init__(self, variables: dict, ref: Reference, batch_size: int = 100):
    self.variables, self.ref, self.batch_size = variables, ref, batch_size

  def __call__(self, samples: np.ndarray) -> dict[str, float]:
    images = (np.clip(np.asarray(samples, np.float32), -1, 1) + 1) / 2
    progress = len(images) > 10 * self.batch_size and sys.stderr.isatty()
    pool, logits = inception.extract(self.variables, images, self.batch_size, progress=progress)
    mu, sigma = fid.statistics(pool)
    real, fake = self.ref.features, pool.astype(np.float32)
    precision, recall = metrics.precision_recall(real, fake, k=KNN)
    density, coverage = metrics.density_coverage(real, fake, k=KNN)
    return {
      'fid_inception': fid.frechet_distance(mu, sigma, self.ref.mu, self.ref.sigma),
      'kid_inception': metrics.kid(fake, real),
      'is': fid.inception_score(logits)[0],
      'precision_inception': precision,
      'recall_inception': recall,
      'density_inception': density,
      'coverage_inception': coverage,
      'pixel_std': metrics.pixel_std(samples),
    }


def scorer(config: ml_collections.ConfigDict, images_u8: np.ndarray, weights: str | None = None, say=print):
  """(InceptionScorer, a phrase naming the weights) for a run; DataError when the weights are missing or wrong.

  `weights` (a command's flag) wins over `eval.inception_weights`, which wins over the environment.
  """
  variables, sha, official = inception.load_weights(
    weights or config.eval.inception_weights or None, config.eval.allow_other_weights
  )
  ref = reference(config, images_u8, variables, sha, say)
  kind = 'the published weights' if official else f'other weights, SHA-256 {sha[:12]}...: not comparable'
  what = f'FID Inception ({kind}); reference: {ref.count} training images'
  return InceptionScorer(variables, ref, config.eval.batch_size), what


def weights_found(config: ml_collections.ConfigDict) -> bool:
  """Whether the FID Inception's weights are named by the config or the environment (not whether they are valid)."""
  try:
    inception.find_weights(config.eval.inception_weights or None)
  except DataError:
    return False
  return True
