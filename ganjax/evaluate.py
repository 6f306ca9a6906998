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
  pixels (about 0.39 for real digits, 0.01-0.02 for a collapsed generator).

Standalone:

  python -m ganjax.evaluate --workdir runs/mnist_gan [--step 5000] [--num 10000]
  python -m ganjax.evaluate --workdir runs/tutorial_gan --workdir runs/mnist_gan   # comparison table
  python -m ganjax.evaluate --reference   # real vs real (the floor) and uniform noise (the ceiling)
"""

import time

import numpy as np
from absl import app, flags, logging

from ganjax import classifier, input_pipeline, metrics

MNIST_SHAPE = (28, 28, 1)
COLUMNS = (
  'fd',
  'kid',
  'precision',
  'recall',
  'density',
  'coverage',
  'classes_covered',
  'classifier_score',
  'pixel_std',
)


def to_unit(images_u8: np.ndarray) -> np.ndarray:
  """uint8 images -> float32 numpy in [-1, 1], by the training pipeline's own scaling."""
  return np.asarray(input_pipeline.to_unit_range(images_u8))


def pixel_std(samples: np.ndarray) -> float:
  """Per-pixel standard deviation across samples, averaged over pixels."""
  return float(np.mean(np.std(samples, axis=0)))


class Evaluator:
  """Holds the classifier and the reference features; `__call__(samples)` returns all metrics."""

  def __init__(self, reference: np.ndarray | None = None):
    """`reference`: real images (N, 28, 28, 1) in [-1, 1]; default the 5,000 held-out digits."""
    self.params = classifier.load()
    if reference is None:
      reference = to_unit(classifier.split()[1].images)
    self.ref_features, _ = classifier.predict(self.params, reference)

  def __call__(self, samples: np.ndarray) -> dict[str, float]:
    """Metrics of samples (N, 28, 28, 1) in [-1, 1] against the held-out real digits."""
    if tuple(samples.shape[1:]) != MNIST_SHAPE:
      raise ValueError(f'the MNIST evaluator needs images of shape {MNIST_SHAPE}, got {samples.shape[1:]}')
    features, logits = classifier.predict(self.params, samples)
    precision, recall = metrics.precision_recall(self.ref_features, features, k=3)
    density, coverage = metrics.density_coverage(self.ref_features, features, k=5)
    return {
      'fd': metrics.frechet_distance(features, self.ref_features),
      'kid': metrics.kid(features, self.ref_features),
      'precision': precision,
      'recall': recall,
      'density': density,
      'coverage': coverage,
      'pixel_std': pixel_std(samples),
      **metrics.class_stats(logits),
    }


def format_table(rows: dict[str, dict[str, float]]) -> str:
  """A plain-text table, one row per name, the COLUMNS as columns."""
  width = max(len(name) for name in rows) + 2
  lines = [f'{"":{width}}' + ''.join(f'{c:>17}' for c in COLUMNS)]
  for name, m in rows.items():
    cells = ''.join(f'{m[c]:>17d}' if c == 'classes_covered' else f'{m[c]:>17.4f}' for c in COLUMNS)
    lines.append(f'{name:{width}}' + cells)
  return '\n'.join(lines)


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
  logging.set_verbosity(logging.ERROR)
  from ganjax import checkpoint, sampling  # the CLI's imports; the library part needs neither
  from ganjax.errors import GanjaxError

  if not _WORKDIRS.value and not _REFERENCE.value:
    raise app.UsageError('give --workdir DIR (repeatable) and/or --reference')
  evaluator = Evaluator() if _WORKDIRS.value else None
  rows = {}
  for workdir in _WORKDIRS.value:
    try:
      runs = checkpoint.restore_members(workdir, _STEP.value)  # a sweep gives one row per member
    except GanjaxError as e:
      raise SystemExit(f'ganjax: error: {e}') from None
    for run in runs:
      name = workdir if run.member is None else f'{workdir} member {run.member}'
      t0 = time.perf_counter()
      samples = sampling.sample(run, _NUM.value, seed=_SEED.value)
      try:
        rows[f'{name} @ {run.step}'] = evaluator(samples)
      except ValueError as e:  # e.g. a toy 2-D run: its metrics are eval/modes_covered in its metrics.jsonl
        raise SystemExit(f'ganjax: error: {workdir}: {e}') from None
      print(f'{name}: {_NUM.value} samples generated and evaluated in {time.perf_counter() - t0:.1f} s')
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
  app.run(main)
