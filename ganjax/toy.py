"""2-D mixtures of Gaussians: a benchmark that measures mode collapse directly.

- 'ring8': 8 Gaussians on a circle of radius 2, std 0.02 (as in the unrolled-GAN
  and VEEGAN papers);
- 'grid25': 25 Gaussians on the 5x5 grid {-4, -2, 0, 2, 4}^2, std 0.05 (as in
  PacGAN);
- 'dirac': the point mass at 0 in one dimension, the data of the Dirac-GAN
  (Mescheder et al. 2018; `experiments/dirac_gan.py`).

A sample is high quality when it lies within 3 std of its nearest mode; a
mode is covered when it receives at least `MIN_SAMPLES_PER_MODE` high-quality
samples per 10,000 samples (so a few stray points do not count as a mode).
"""

import pathlib

import numpy as np

from ganjax.choices import TOYS

MIN_SAMPLES_PER_MODE = 10  # per 10,000 samples


def modes(name: str) -> tuple[np.ndarray, float]:
  """(centres (K, D), std) of toy dataset `name` (std 0: a point mass; high quality within 0.05 of it)."""
  if name == 'ring8':
    angles = 2 * np.pi * np.arange(8) / 8
    return 2.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1), 0.02
  if name == 'grid25':
    ticks = np.arange(-4.0, 5.0, 2.0)
    return np.stack(np.meshgrid(ticks, ticks), axis=-1).reshape(-1, 2), 0.05
  if name == 'dirac':
    return np.zeros((1, 1)), 0.0
  raise ValueError(f'unknown toy dataset {name!r}; known: {TOYS}')


def sample_data(name: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """n points (float32 (n, D)) and their mode index, drawn deterministically from `seed`."""
  centres, std = modes(name)
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, len(centres), n)
  points = centres[labels] + std * rng.standard_normal((n, centres.shape[1]))
  return points.astype(np.float32), labels.astype(np.int32)


def mode_stats(samples: np.ndarray, name: str) -> dict[str, float]:
  """modes_covered, num_modes and high_quality (share of samples within 3 std of a mode)."""
  centres, std = modes(name)
  dist = np.linalg.norm(samples[:, None, :] - centres[None], axis=-1)
  nearest = np.argmin(dist, axis=1)
  good = dist[np.arange(len(samples)), nearest] <= (3 * std or 0.05)
  counts = np.bincount(nearest[good], minlength=len(centres))
  needed = max(1, round(MIN_SAMPLES_PER_MODE * len(samples) / 10_000))
  return {
    'modes_covered': int(np.sum(counts >= needed)),
    'num_modes': len(centres),
    'high_quality': float(good.mean()),
  }


def scatter_png(samples: np.ndarray, name: str, path: pathlib.Path, title: str = '') -> pathlib.Path:
  """Scatter plot of samples over the mode centres, written to `path`."""
  from matplotlib.figure import Figure  # no pyplot: leaves a notebook's backend alone

  centres, _ = modes(name)
  fig = Figure(figsize=(5, 5))
  ax = fig.subplots()
  ax.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.3, label='samples')
  ax.scatter(centres[:, 0], centres[:, 1], s=40, c='red', marker='x', label='modes')
  limit = np.abs(centres).max() + 1.5
  ax.set_xlim(-limit, limit)
  ax.set_ylim(-limit, limit)
  ax.set_aspect('equal')
  ax.set_title(title)
  ax.legend(loc='upper right', fontsize=8)
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=80)
  return path
