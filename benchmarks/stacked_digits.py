"""Where a Stacked MNIST run's KL comes from: its digit frequencies, how surely the classifier reads them, and
how much the KL moves from one draw of samples to the next.

  python benchmarks/stacked_digits.py runs/stacked/pac_long --members 0,1,2 [--sample-seeds 7,8,9]

For each member (of a sweep; none for a plain run) of the latest checkpoint: `eval/kl_modes` and
`eval/kl_digits` on 26,000 samples drawn with each sample seed (standing statistics as the run's config
asks), then, over all channels of the last draw, the percentage of each digit among all channels, among
those the classifier reads with a top probability of at least --sure, and among the rest. The first line
is the same for 26,000 real stacks (not the training stacks).
"""

import argparse
import pathlib
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NUM = 26_000


def _ints(text: str) -> list[int]:
  try:
    return [int(x) for x in text.split(',') if x]
  except ValueError:
    raise argparse.ArgumentTypeError(f'expected comma-separated integers, got {text!r}') from None


def read(counter, samples: np.ndarray) -> np.ndarray:
  """The classifier's probabilities (3N, 10) for each channel of `samples` (N, H, W, 3) in [-1, 1]."""
  import jax

  return np.asarray(jax.nn.softmax(counter.logits(samples)))


def digit_lines(name: str, probs: np.ndarray, sure: float) -> list[str]:
  """Digit percentages among all channels, the sure reads and the unsure ones, one line each."""
  top, digit = probs.max(axis=1), probs.argmax(axis=1)
  lines = []
  for label, chosen in (('all', top >= 0), (f'p >= {sure}', top >= sure), (f'p < {sure}', top < sure)):
    shares = 100 * np.bincount(digit[chosen], minlength=10) / max(int(chosen.sum()), 1)
    cells = ' '.join(f'{k}:{v:4.1f}' for k, v in enumerate(shares))
    lines.append(f'{name:>9} {label:>9} ({100 * chosen.mean():5.1f}% of channels)  {cells}')
  return lines


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('workdir', help='a Stacked MNIST run or sweep with a checkpoint')
  parser.add_argument('--members', type=_ints, default=[], help='sweep members, e.g. 0,1,2 (none: a plain run)')
  parser.add_argument('--sample-seeds', type=_ints, default=[7, 8, 9], help='one draw of 26,000 samples each')
  parser.add_argument('--sure', type=float, default=0.9, help="the classifier's top probability that counts as sure")
  args = parser.parse_args()
  if not args.sample_seeds:
    parser.error('--sample-seeds needs at least one seed')
  if not 0 < args.sure <= 1:
    parser.error(f'--sure is a probability in (0, 1], got {args.sure}')

  from stacked_table import real_stacks

  import ganjax
  from ganjax import sampling, stacked_mnist
  from ganjax.errors import CheckpointError

  counter = stacked_mnist.ModeCounter()
  for line in digit_lines('real', read(counter, real_stacks(NUM)), args.sure):
    print(line)
  for member in args.members or [None]:
    try:
      run = ganjax.restore(args.workdir, member=member)
    except CheckpointError as e:
      sys.exit(f'stacked_digits.py: error: {e}')
    name = 'run' if member is None else f'member {member}'
    for seed in args.sample_seeds:
      probs = read(counter, sampling.sample(run, NUM, seed=seed))
      stats = stacked_mnist.mode_stats(stacked_mnist.modes_of(probs.argmax(axis=1)))
      print(f'{name}, step {run.step}, sample seed {seed}: KL {stats["kl_modes"]:.3f}, digits {stats["kl_digits"]:.3f}')
    for line in digit_lines(name, probs, args.sure):
      print(line)


if __name__ == '__main__':
  main()
