"""Sample-quality metrics on classifier features: FD, KID, precision/recall, density/coverage.

All take feature matrices (N, D) and (M, D); distances are Euclidean. The
heavy parts (pairwise distances, kernels) run in jitted JAX in row blocks so
10,000 x 5,000 pairs never need more than a block of memory; the 128 x 128
matrix square root of the Frechet distance runs in float64 numpy.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

_BLOCK = 1000


@jax.jit
def _sq_dists(a: jax.Array, b: jax.Array) -> jax.Array:
  d = jnp.sum(a * a, 1)[:, None] - 2.0 * a @ b.T + jnp.sum(b * b, 1)[None, :]
  return jnp.maximum(d, 0.0)


def _blocks(fn, *arrays: np.ndarray, block: int = _BLOCK) -> np.ndarray:
  """fn over row blocks of row-aligned arrays, results concatenated."""
  n = len(arrays[0])
  return np.concatenate([np.asarray(fn(*(jnp.asarray(a[i : i + block]) for a in arrays))) for i in range(0, n, block)])


@functools.partial(jax.jit, static_argnames=('k',))
def _kth_radius_rows(rows: jax.Array, x: jax.Array, k: int) -> jax.Array:
  # The k+1 smallest distances include the row's own (zero). Removing the
  # minimum k times is much faster than lax.top_k on XLA:CPU for small k.
  d = _sq_dists(rows, x)
  index = jnp.arange(d.shape[0])
  for _ in range(k):
    d = d.at[index, jnp.argmin(d, axis=1)].set(jnp.inf)
  return jnp.sqrt(jnp.min(d, axis=1))


def kth_nn_radius(x: np.ndarray, k: int) -> np.ndarray:
  """Distance from each row of x to its k-th nearest other row."""
  xj = jnp.asarray(x, jnp.float32)
  return _blocks(lambda rows: _kth_radius_rows(rows, xj, k), x)


@functools.partial(jax.jit, static_argnames=('k',))
def _nearest_rows(rows: jax.Array, points: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
  d = _sq_dists(rows, points)
  if k == 1:  # argmin: much faster than lax.top_k on XLA:CPU (see _kth_radius_rows)
    index = jnp.argmin(d, axis=1)[:, None]
    return jnp.sqrt(jnp.take_along_axis(d, index, axis=1)), index
  neg, index = jax.lax.top_k(-d, k)
  return jnp.sqrt(-neg), index


def nearest(x: np.ndarray, points: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
  """Distances (N, k) and indices (N, k) of each row of x's k nearest rows of `points`, nearest first."""
  pj = jnp.asarray(points, jnp.float32)
  n = len(x)
  out = [_nearest_rows(jnp.asarray(x[i : i + _BLOCK], jnp.float32), pj, k) for i in range(0, n, _BLOCK)]
  return np.concatenate([np.asarray(d) for d, _ in out]), np.concatenate([np.asarray(i) for _, i in out])


def frechet_distance(x: np.ndarray, y: np.ndarray) -> float:
  """|mu_x - mu_y|^2 + tr(S_x + S_y - 2 (S_x S_y)^(1/2)) of two feature sets."""
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  mu_x, mu_y = x.mean(0), y.mean(0)
  s_x, s_y = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
  # tr((S_x S_y)^(1/2)) = sum of sqrt(eigenvalues of S_x^(1/2) S_y S_x^(1/2)), a symmetric PSD matrix.
  w, v = np.linalg.eigh(s_x)
  root_x = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
  eig = np.linalg.eigvalsh(root_x @ s_y @ root_x)
  trace_sqrt = np.sum(np.sqrt(np.clip(eig, 0, None)))
  return float(np.sum((mu_x - mu_y) ** 2) + np.trace(s_x) + np.trace(s_y) - 2.0 * trace_sqrt)


@functools.partial(jax.jit, static_argnames=('subset_size',))
def _mmd2_subset(x: jax.Array, y: jax.Array, key: jax.Array, subset_size: int) -> jax.Array:
  kx, ky = jax.random.split(key)
  xs = x[jax.random.choice(kx, len(x), (subset_size,), replace=False)]
  ys = y[jax.random.choice(ky, len(y), (subset_size,), replace=False)]
  d = x.shape[1]

  def kernel(a, b):  # cubic polynomial kernel of Binkowski et al. 2018
    return (a @ b.T / d + 1.0) ** 3

  m = subset_size
  k_xx, k_yy, k_xy = kernel(xs, xs), kernel(ys, ys), kernel(xs, ys)
  # Unbiased estimator: the diagonals of k_xx and k_yy are left out.
  sum_xx = (k_xx.sum() - jnp.trace(k_xx)) / (m * (m - 1))
  sum_yy = (k_yy.sum() - jnp.trace(k_yy)) / (m * (m - 1))
  return sum_xx + sum_yy - 2.0 * k_xy.mean()


def kid(x: np.ndarray, y: np.ndarray, num_subsets: int = 50, subset_size: int = 1000, seed: int = 0) -> float:
  """Kernel Inception-style distance: mean unbiased MMD^2 over random subsets."""
  subset_size = min(subset_size, len(x), len(y))
  xj, yj = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
  keys = jax.random.split(jax.random.key(seed), num_subsets)
  return float(np.mean([float(_mmd2_subset(xj, yj, k, subset_size)) for k in keys]))


@jax.jit
def _count_within_rows(rows: jax.Array, centres: jax.Array, radii: jax.Array) -> jax.Array:
  return jnp.sum(_sq_dists(rows, centres) <= (radii * radii)[None, :], axis=1)


@jax.jit
def _any_inside_rows(rows: jax.Array, radii: jax.Array, points: jax.Array) -> jax.Array:
  return jnp.min(_sq_dists(rows, points), axis=1) <= radii * radii


def _within(points: np.ndarray, centres: np.ndarray, radii: np.ndarray) -> np.ndarray:
  """For each point: how many of the balls (centres, radii) contain it."""
  cj, rj = jnp.asarray(centres, jnp.float32), jnp.asarray(radii, jnp.float32)
  return _blocks(lambda rows: _count_within_rows(rows, cj, rj), points)


def _covered(centres: np.ndarray, radii: np.ndarray, points: np.ndarray) -> np.ndarray:
  """For each centre: is any point inside its ball?"""
  pj = jnp.asarray(points, jnp.float32)
  return _blocks(lambda rows, r: _any_inside_rows(rows, r, pj), centres, radii)


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
  """Improved precision and recall (Kynkaanniemi et al. 2019) with k-NN balls."""
  real_r, fake_r = kth_nn_radius(real, k), kth_nn_radius(fake, k)
  precision = float(np.mean(_within(fake, real, real_r) > 0))
  recall = float(np.mean(_within(real, fake, fake_r) > 0))
  return precision, recall


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = 5) -> tuple[float, float]:
  """Density and coverage (Naeem et al. 2020) with k-NN balls around real samples."""
  real_r = kth_nn_radius(real, k)
  density = float(np.sum(_within(fake, real, real_r)) / (k * len(fake)))
  coverage = float(np.mean(_covered(real, real_r, fake)))
  return density, coverage


def pixel_std(samples: np.ndarray) -> float:
  """Per-pixel standard deviation across samples, averaged over pixels: near 0 for a collapsed generator."""
  return float(np.mean(np.std(samples, axis=0)))


def copy_stats(sample_nn: np.ndarray, real_nn: np.ndarray, quantile: float = 0.05) -> dict[str, float]:
  """A memorisation check from nearest-neighbour distances to G's training set.

  `sample_nn`: each sample's distance to its nearest training image;
  `real_nn`: the same distance for real digits that are not themselves that
  training image (held-out digits, or each training digit to its nearest
  other one). `copy_fraction` is the share of samples closer to a training
  image than all but `quantile` of the real digits are: about `quantile` for
  a generator that draws new digits, towards 1 for one that replays its
  training set. `nn_ratio` is the median sample distance over the median real
  one (about 1 when new, towards 0 when copying).
  """
  radius = float(np.quantile(real_nn, quantile))
  return {
    'copy_fraction': float(np.mean(sample_nn < radius)),
    'nn_ratio': float(np.median(sample_nn) / np.median(real_nn)),
  }


def class_stats(logits: np.ndarray, num_classes: int = 10) -> dict[str, float]:
  """Histogram of predicted classes, classes covered (>= 1% of samples) and the classifier score."""
  logp = np.asarray(jax.nn.log_softmax(jnp.asarray(logits, jnp.float32)), np.float64)
  p = np.exp(logp)
  p_y = p.mean(0)
  kl = np.sum(p * (logp - np.log(np.clip(p_y, 1e-12, None))[None, :]), axis=1)
  hist = np.bincount(np.argmax(logits, axis=1), minlength=num_classes) / len(logits)
  return {
    'classes_covered': int(np.sum(hist >= 0.01)),
    'max_class_share': float(hist.max()),
    'min_class_share': float(hist.min()),
    'classifier_score': float(np.exp(kl.mean())),
    **{f'class_share/{c}': float(hist[c]) for c in range(num_classes)},
  }
