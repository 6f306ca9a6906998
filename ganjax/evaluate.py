"""Sample quality of a generator, measured with an MNIST classifier made for it.

`Evaluator` embeds samples with the shipped classifier (`ganjax.classifier`)
and compares them with the reference set, the 5,000 held-out real digits of
the shipped split. Metrics:

- `fd`: Frechet distance of the classifier's 128-d features ("classifier FD";
  not an Inception FID, not comparable with one);
- `kid`: unbiased MMD^2 with a cubic polynomial kernel, 50 subsets of 1,000;
- `precision`, `recall`: Kynkaanniemi et al. 2019, k = 3;
- `density`, `coverage`: Naeem et al. 2020, k = 5;
- `classes_covered` (digits with >= 1% of the samples), `max_class_share`,
  `classifier_score` (exp of the mean KL between p(y|x) and p(y), as in the
  Inception Score; 10 is the most ten classes allow), `class_share/<digit>`;
- `pixel_std`: per-pixel standard deviation across samples, averaged over
  pixels (about 0.39 for real digits, 0.01-0.02 for a collapsed generator);
- with G's training images (`train_images`), a copy check in the same
  feature space: `copy_fraction`, the share of samples that sit closer to a
  training image than 95% of real digits sit to their nearest other training
  digit (about 0.05 for a generator of new digits, towards 1 for one that
  replays its training set), and `nn_ratio`, the median of the samples'
  nearest-training-image distances over the real digits' (see
  `metrics.copy_stats`).

Standalone:

  python -m ganjax.evaluate --workdir runs/mnist_gan [--step 5000] [--num 10000]
  python -m ganjax.evaluate --workdir runs/tutorial_gan --workdir runs/mnist_gan   # comparison table
  python -m ganjax.evaluate --reference   # real vs real (the floor) and uniform noise (the ceiling)
  python -m ganjax.evaluate --workdir runs/mnist_gan --neighbours nn.png   # samples beside nearest training digits

A sweep's workdir gives one row per member and a mean ± std row.

Runs on other images (or with `eval.features='inception'`) are scored on the FID Inception instead
(`ganjax.inception_metrics`: `fid_inception`, `kid_inception`, `is`, precision/recall/density/coverage
on its features) when its weights are found (`--inception_weights`, `eval.inception_weights` or
$GANJAX_INCEPTION_WEIGHTS), else by their pixel statistics alone; toy runs by their mode statistics.
The first line of the output says which features were used.
"""

import pathlib
import time
from collections.abc import Callable

import ml_collections
import numpy as np
from absl import app, flags, logging

from ganjax import classifier, host, inception_metrics, input_pipeline, metrics, stacked_mnist, toy, writers
from ganjax import config as config_lib
from ganjax.config import MNIST_SHAPE
from ganjax.errors import DataError

COLUMNS = (
  'fd',
  'kid',
  'precision',
  'recall',
  'density',
  'coverage',
  'classes_covered',
  'min_class_share',
  'classifier_score',
  'pixel_std',
  'copy_fraction',
  'fid_inception',
  'kid_inception',
  'is',
  'precision_inception',
  'recall_inception',
  'density_inception',
  'coverage_inception',
  'modes_covered',
  'high_quality',
  'modes',
  'kl_modes',
  'kl_digits',
)
COPY_QUANTILE = 0.05  # a sample is a likely copy when closer to a training digit than 95% of real digits are


def to_unit(images_u8: np.ndarray) -> np.ndarray:
  """uint8 images -> float32 numpy in [-1, 1], by the training pipeline's own scaling."""
  return np.asarray(input_pipeline.to_unit_range(images_u8))


pixel_std = metrics.pixel_std


def is_mnist(config: ml_collections.ConfigDict) -> bool:
  """Whether a run's data are MNIST digits, the only images the shipped classifier can judge."""
  return config_lib.is_mnist(config.data)


def features_of(config: ml_collections.ConfigDict, weights: str | None = None) -> str:
  """'classifier', 'inception', 'pixels', 'toy' or 'stacked': what a run's samples are judged by (`eval.features`)."""
  if config.data.source == 'toy':
    return 'toy'
  if config.eval.features != 'auto':
    return config.eval.features
  if config.data.source == 'stacked_mnist':
    return 'stacked'
  if is_mnist(config):
    return 'classifier'
  found = weights or inception_metrics.weights_found(config)
  return 'inception' if found and len(config.data.image_shape) == 3 else 'pixels'


def make_scorer(
  config: ml_collections.ConfigDict,
  train_images_u8: np.ndarray | None,
  weights: str | None = None,
  copy_check: bool = True,
  say: Callable[[str], None] = print,
) -> tuple[Callable[[np.ndarray], dict], str]:
  """(what a run's evaluation measures on a batch of samples, a phrase naming its features).

  MNIST digits: the classifier metrics, with the copy check against `train_images_u8` (the images
  G trains on; None skips it); with the FID Inception's weights: the Inception metrics against
  `train_images_u8`; toy 2-D data: the mode statistics; else the pixel std alone, and `say` tells once
  how to turn FID on. DataError when the Inception's weights are named but missing or not the published file.
  """
  features = features_of(config, weights)
  if features == 'toy':
    return (lambda samples: toy.mode_stats(samples, config.data.toy_name)), 'toy mode statistics'
  if features == 'stacked':
    return stacked_mnist.ModeCounter(), "Stacked MNIST modes (ganjax's MNIST classifier on each channel)"
  if features == 'classifier':
    train = to_unit(train_images_u8) if copy_check and train_images_u8 is not None else None
    return Evaluator(train_images=train), "ganjax's MNIST classifier (classifier FD: not an Inception FID)"
  if features == 'inception':
    return inception_metrics.scorer(config, train_images_u8, weights, say)
  say(inception_metrics.HOW_TO_TURN_ON)
  return (lambda samples: {'pixel_std': pixel_std(samples)}), 'pixel statistics only (no Inception weights)'


class Evaluator:
  """Holds the classifier and the reference features; `__call__(samples)` returns all metrics."""

  def __init__(self, reference: np.ndarray | None = None, train_images: np.ndarray | None = None):
    """`reference`: real images (N, 28, 28, 1) in [-1, 1]; default the 5,000 held-out digits.

    `train_images`: the images G trains on, in [-1, 1]; with them the metrics include the copy check.
    """
    self.params = classifier.load()
    if reference is None:
      reference = to_unit(classifier.split()[1].images)
    self.ref_features, _ = classifier.predict(self.params, reference)
    self.train_features = self.real_nn = None
    if train_images is not None:
      self.train_features, _ = classifier.predict(self.params, train_images)
      # A real digit's distance to its nearest *other* training digit: what a fresh digit from the same
      # distribution would show (one image fewer to be near), with no held-out set needed.
      self.real_nn = metrics.kth_nn_radius(self.train_features, 1)

  def __call__(self, samples: np.ndarray) -> dict[str, float]:
    """Metrics of samples (N, 28, 28, 1) in [-1, 1] against the held-out real digits."""
    if tuple(samples.shape[1:]) != MNIST_SHAPE:
      raise ValueError(f'the MNIST evaluator needs images of shape {MNIST_SHAPE}, got {samples.shape[1:]}')
    features, logits = classifier.predict(self.params, samples)
    precision, recall = metrics.precision_recall(self.ref_features, features, k=3)
    density, coverage = metrics.density_coverage(self.ref_features, features, k=5)
    copies = {}
    if self.train_features is not None:
      sample_nn = metrics.nearest(features, self.train_features)[0][:, 0]
      copies = metrics.copy_stats(sample_nn, self.real_nn, COPY_QUANTILE)
    return {
      'fd': metrics.frechet_distance(features, self.ref_features),
      'kid': metrics.kid(features, self.ref_features),
      'precision': precision,
      'recall': recall,
      'density': density,
      'coverage': coverage,
      'pixel_std': pixel_std(samples),
      **metrics.class_stats(logits),
      **copies,
    }

  def neighbours(self, samples: np.ndarray, train_images: np.ndarray, k: int = 7) -> np.ndarray:
    """Each sample followed by its k nearest training images (classifier features): (N * (k + 1), 28, 28, 1)."""
    if self.train_features is None:
      raise ValueError('neighbours need the Evaluator built with train_images')
    features, _ = classifier.predict(self.params, samples)
    _, index = metrics.nearest(features, self.train_features, k)
    rows = [np.concatenate([samples[i : i + 1], train_images[index[i]]]) for i in range(len(samples))]
    return np.concatenate(rows)


def mean_std(rows: list[dict[str, float]]) -> dict[str, tuple[float, float]]:
  """Per metric: (mean, sample std) over runs, e.g. the members of a seed sweep (std 0 for one run)."""
  keys = [k for k in rows[0] if all(k in r for r in rows)]
  out = {}
  for k in keys:
    values = np.asarray([r[k] for r in rows], np.float64)
    out[k] = (float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0)
  return out


def _cell(value) -> str:
  if isinstance(value, tuple):  # (mean, std)
    return f'{value[0]:.4g} ± {value[1]:.2g}'
  return f'{value:d}' if isinstance(value, int) else f'{value:.4f}'


def format_table(rows: dict[str, dict]) -> str:
  """A plain-text table, one row per name, the COLUMNS as columns (a value may be a (mean, std) pair)."""
  columns = [c for c in COLUMNS if any(c in m for m in rows.values())]
  cells = {name: [_cell(m[c]) if c in m else '-' for c in columns] for name, m in rows.items()}
  widths = [max(len(c), *(len(v[i]) for v in cells.values())) + 2 for i, c in enumerate(columns)]
  width = max(len(name) for name in rows) + 2
  lines = [f'{"":{width}}' + ''.join(f'{c:>{w}}' for c, w in zip(columns, widths, strict=True))]
  for name, values in cells.items():
    lines.append(f'{name:{width}}' + ''.join(f'{v:>{w}}' for v, w in zip(values, widths, strict=True)))
  return '\n'.join(lines)


def training_images(config: ml_collections.ConfigDict, why: str = 'the copy check') -> np.ndarray:
  """The uint8 images a run's G trained on; DataError, saying `why` they are needed, when they cannot be loaded."""
  try:
    return input_pipeline.load(config).images
  except DataError as e:
    raise DataError(f'{why} needs the images G trained on, and they cannot be loaded: {e}') from e


def evaluate_workdir(
  workdir: str,
  num: int,
  step: int | None = None,
  seed: int = 0,
  copy_check: bool = True,
  weights: str | None = None,
  allow_other_weights: bool = False,
) -> dict[str, dict]:
  """Rows of metrics for one workdir: one per run (per member of a sweep), and a mean ± std row for a sweep.

  Prints which features judged the samples. `weights`: the FID Inception's weights file, over the run's
  `eval.inception_weights`; `allow_other_weights` over its `eval.allow_other_weights`.
  """
  from ganjax import checkpoint, sampling  # the CLI's imports; the library part needs neither

  runs = checkpoint.restore_members(workdir, step)
  config = runs[0].config
  config.eval.allow_other_weights = config.eval.allow_other_weights or allow_other_weights
  features = features_of(config, weights)
  needed = {'inception': 'the Inception reference', 'classifier': 'the copy check' if copy_check else None}
  train = training_images(config, needed[features]) if needed.get(features) else None
  score, what = make_scorer(config, train, weights, copy_check)
  print(f'{workdir}: features: {what}')
  rows = {}
  for run in runs:
    name = workdir if run.member is None else f'{workdir} member {run.member}'
    t0 = time.perf_counter()
    samples = sampling.sample(run, num, seed=seed)
    rows[f'{name} @ {run.step}'] = score(samples)
    print(f'{name}: {num} samples generated and evaluated in {time.perf_counter() - t0:.1f} s')
  if len(runs) > 1:
    rows[f'{workdir} mean ± std ({len(runs)} members)'] = mean_std(list(rows.values()))
  return rows


def write_neighbours(workdir: str, path: str, step: int | None = None, num: int = 8, seed: int = 0) -> pathlib.Path:
  """A PNG of `num` samples (one per row, first column) beside their 7 nearest training digits."""
  from ganjax import checkpoint, sampling

  run = checkpoint.restore_members(workdir, step)[0]
  if not is_mnist(run.config):
    raise DataError(f'{workdir}: --neighbours finds nearest training digits by MNIST classifier features; not MNIST')
  train_images = to_unit(training_images(run.config))
  evaluator = Evaluator(train_images=train_images)
  images = evaluator.neighbours(sampling.sample(run, num, seed=seed), train_images)
  out = pathlib.Path(path)
  writers.save_png(writers.image_grid(images, cols=len(images) // num), out)
  return out


def reference_rows(num: int, seed: int = 0) -> dict[str, dict[str, float]]:
  """The floor and the ceiling of every metric.

  Floor: real vs real, the held-out digits split in two halves of 2,500 (the
  classifier never saw either). Ceiling: `num` images of uniform noise
  against the usual 5,000-digit reference.
  """
  held_out = to_unit(classifier.split()[1].images)
  half = len(held_out) // 2
  floor = Evaluator(reference=held_out[:half])(held_out[half:])
  noise = np.random.default_rng(seed).uniform(-1, 1, (num, *MNIST_SHAPE)).astype(np.float32)
  return {'real vs real (2.5k halves)': floor, f'uniform noise ({num})': Evaluator()(noise)}


def main(argv: list[str]) -> None:
  del argv
  host.prepare()  # before JAX starts its threads or compiles
  host.prefer_eigen_convolutions(inception=True)  # the FID Inception's convolutions, if a run needs it
  logging.set_verbosity(logging.ERROR)
  from ganjax.errors import GanjaxError

  if not _WORKDIRS.value and not _REFERENCE.value:
    raise app.UsageError('give --workdir DIR (repeatable) and/or --reference')
  if _NEIGHBOURS.value and len(_WORKDIRS.value) != 1:
    raise SystemExit('ganjax: error: --neighbours needs exactly one --workdir')
  rows = {}
  try:
    for workdir in _WORKDIRS.value:
      rows.update(
        evaluate_workdir(workdir, _NUM.value, _STEP.value, _SEED.value, _COPY_CHECK.value, _WEIGHTS.value, _ALLOW.value)
      )
    if _NEIGHBOURS.value:
      path = write_neighbours(_WORKDIRS.value[0], _NEIGHBOURS.value, _STEP.value, seed=_SEED.value)
      print(f'nearest training digits of 8 samples (first column): {path}')
  except GanjaxError as e:
    raise SystemExit(f'ganjax: error: {" ".join(str(e).split())}') from None
  if _REFERENCE.value:
    t0 = time.perf_counter()
    rows.update(reference_rows(_NUM.value, _SEED.value))
    print(f'reference rows in {time.perf_counter() - t0:.1f} s')
  print(format_table(rows))


if __name__ == '__main__':
  # Flags are defined only when run as a program: train.py imports this module too.
  _WORKDIRS = flags.DEFINE_multi_string('workdir', [], 'Run directories to evaluate (repeat to compare).')
  _STEP = flags.DEFINE_integer('step', None, 'Checkpoint step (default: the latest).')
  _NUM = flags.DEFINE_integer('num', 10_000, 'Number of generated samples.')
  _SEED = flags.DEFINE_integer('seed', 0, 'Seed of the latent vectors.')
  _REFERENCE = flags.DEFINE_boolean('reference', False, 'Also print real-vs-real and noise rows.')
  _COPY_CHECK = flags.DEFINE_boolean('copy_check', True, "Compare samples with G's training images (copy_fraction).")
  _WEIGHTS = flags.DEFINE_string('inception_weights', None, "The FID Inception's weights (pytorch-fid's file).")
  _ALLOW = flags.DEFINE_bool('allow_other_weights', False, 'Use Inception weights other than the published file.')
  _NEIGHBOURS = flags.DEFINE_string('neighbours', '', 'Write a PNG of samples beside their nearest training digits.')
  app.run(main)
