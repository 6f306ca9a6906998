"""Samples from a run's checkpoint: `python -m ganjax.sample --workdir DIR --num 64 --out grid.png`.

`--out` ending in .png writes a grid; ending in .npz writes the arrays
(`images`, float32 in [-1, 1], shape (N, H, W, C)).
"""

import pathlib
import sys

import numpy as np
from absl import app, flags, logging

from ganjax import checkpoint, host, sampling, writers
from ganjax.errors import GanjaxError

_WORKDIR = flags.DEFINE_string('workdir', None, 'Run directory with checkpoints/.', required=True)
_OUT = flags.DEFINE_string('out', None, 'Output file: .png (grid) or .npz (arrays).', required=True)
_NUM = flags.DEFINE_integer('num', 64, 'Number of samples.')
_STEP = flags.DEFINE_integer('step', None, 'Checkpoint step (default: the latest).')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of the latent vectors.')
_MEMBER = flags.DEFINE_integer('member', None, 'For a sweep workdir: which member (0-based).')
_LABEL = flags.DEFINE_integer('label', None, 'Conditional runs: draw only this class.')
_BY_CLASS = flags.DEFINE_integer('by_class', 0, 'Conditional runs: a grid with one row per class, this many each.')


def main(argv: list[str]) -> None:
  del argv
  host.prepare()  # before JAX starts its threads or compiles
  logging.set_verbosity(logging.ERROR)  # Orbax warns about read-only opens.
  out = pathlib.Path(_OUT.value)
  if out.suffix not in ('.png', '.npz'):
    sys.exit(f'ganjax: error: --out must end in .png or .npz, got {out}')
  try:
    run = checkpoint.restore(_WORKDIR.value, _STEP.value, member=_MEMBER.value)
  except GanjaxError as e:
    sys.exit(f'ganjax: error: {e}')
  try:
    if _BY_CLASS.value:
      images = sampling.class_grid(run, _BY_CLASS.value, seed=_SEED.value)
    else:
      images = sampling.sample(run, _NUM.value, seed=_SEED.value, labels=_LABEL.value)
  except ValueError as e:
    sys.exit(f'ganjax: error: {e}')
  out.parent.mkdir(parents=True, exist_ok=True)
  if out.suffix == '.png':
    writers.save_png(writers.image_grid(images, cols=_BY_CLASS.value or None), out)
  else:
    np.savez_compressed(out, images=images)
  member = '' if run.member is None else f' (member {run.member})'
  print(f'wrote {len(images)} samples from step {run.step} of {_WORKDIR.value}{member} to {out}')


if __name__ == '__main__':
  app.run(main)
