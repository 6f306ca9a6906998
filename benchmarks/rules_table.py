"""What each update rule cures on the 2-D toy data: the update-rule table of docs/results.md, over 3 seeds.

  python benchmarks/rules_table.py [--readme] [--out runs/rules] [--skip-training] [--top K]

Every row is one 3-seed sweep (`sweep.field=seed`) of `toy_ring8.py` or `toy_grid25.py` at a fixed
budget of STEPS steps, with `train.update_rule` set and nothing else changed but one joint D update
per step (`train.d_update=joint`, which extragradient and consensus need; the same for every row, so
the rules are compared on one footing). The table gives, mean ± std over the seeds:
- `eval/modes_covered` and `eval/high_quality` at the last step (10,000 samples each);
- the leading eigenvalue's real part of the game's Jacobian at the final checkpoint
  (`ganjax.dynamics`: of the K eigenvalues of largest magnitude by Arnoldi iteration, the largest real
  part; > 0 means some direction pushes away from the point training ended at, < 0 that all K pull in).
Quality and spectra only: nothing here is timed.
"""

import argparse
import datetime
import pathlib

import numpy as np
from toy_table import SEEDS, _at, train_sweep

ROOT = pathlib.Path(__file__).resolve().parent.parent
START, END = '<!-- rules:start -->', '<!-- rules:end -->'
STEPS = 5000
TOP = 6
DATASETS = {'ring8': ('toy_ring8', 8), 'grid25': ('toy_grid25', 25)}
# label: extra flags (the update rule and what it needs)
RULES = {
  'alternating': ('--config.train.update_rule=alternating',),
  'simultaneous': ('--config.train.update_rule=simultaneous',),
  'extragradient': ('--config.train.update_rule=extragradient',),
  'optimistic': ('--config.train.update_rule=optimistic',),
  'simultaneous + consensus 0.1': ('--config.train.update_rule=simultaneous', '--config.loss.consensus_weight=0.1'),
}


def _name(dataset: str, rule: str) -> str:
  return f'{dataset}_' + rule.replace(' + ', '_').replace(' ', '')


def train(out: pathlib.Path, dataset: str, rule: str, steps: int = STEPS) -> None:
  extra = (
    '--config.train.d_update=joint',
    f'--config.train.num_steps={steps}',
    '--config.checkpoint.every_steps=0',  # one checkpoint, at the end, for the spectrum
    *RULES[rule],
  )
  train_sweep(out, _name(dataset, rule), DATASETS[dataset][0], extra)


def leading_real_parts(workdir: pathlib.Path, top: int) -> np.ndarray:
  """Per member: the largest real part among the `top` largest-magnitude eigenvalues at the last checkpoint."""
  from ganjax import checkpoint, dynamics

  parts = []
  for member in range(len(SEEDS)):
    run = checkpoint.restore(workdir, member=member)
    parts.append(dynamics.eigenvalues(run, top).real.max())
  return np.array(parts)


def _pm(values: np.ndarray, digits: int) -> str:
  return f'{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}'


def table(out: pathlib.Path, top: int, steps: int = STEPS) -> str:
  from quality import machine
  from readme_block import code_of_runs

  code = code_of_runs([out / _name(dataset, rule) for dataset in DATASETS for rule in RULES])
  lines = [
    f'Written by `python benchmarks/rules_table.py --readme` on {datetime.date.today()}: trained by {code}; '
    f'{machine()}. '
    f'Seeds {SEEDS}, each row one seed sweep of {steps:,} steps with one joint D update per step; mean ± std '
    f'over the seeds. Leading Re: the largest real part among the {top} largest-magnitude eigenvalues of the '
    "game's Jacobian at the last step (`python -m ganjax.dynamics --top "
    f'{top}`).',
    '',
    '| data | update rule | modes covered | high quality | leading Re |',
    '| --- | --- | ---: | ---: | ---: |',
  ]
  for dataset, (_, total) in DATASETS.items():
    for rule in RULES:
      workdir = out / _name(dataset, rule)
      if not (workdir / 'summary.json').is_file():
        print(f'no finished run in {workdir}: row left out', flush=True)
        continue
      records = [_at(workdir / f'member_{k}', steps) for k in range(len(SEEDS))]
      modes = np.array([r['eval/modes_covered'] for r in records])
      quality = np.array([r['eval/high_quality'] for r in records])
      lead = leading_real_parts(workdir, top)
      lines.append(f'| {dataset} | {rule} | {_pm(modes, 1)} of {total} | {_pm(quality, 2)} | {_pm(lead, 3)} |')
      print(lines[-1], flush=True)
  return '\n'.join(lines)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--out', default='runs/rules', help='folder of the runs')
  parser.add_argument('--readme', action='store_true', help='write the table into docs/results.md')
  parser.add_argument('--skip-training', action='store_true', help='tabulate the runs already in --out')
  parser.add_argument('--top', type=int, default=TOP, help='eigenvalues per member by Arnoldi iteration')
  parser.add_argument('--only', nargs='*', help='train only these rows (names as in --out)')
  parser.add_argument('--steps', type=int, default=STEPS, help='the budget of every row (a quick check: fewer)')
  args = parser.parse_args()
  out = (ROOT / args.out).resolve()
  out.mkdir(parents=True, exist_ok=True)
  if not args.skip_training:
    for dataset in DATASETS:
      for rule in RULES:
        if not args.only or _name(dataset, rule) in args.only:
          train(out, dataset, rule, args.steps)
  text = table(out, args.top, args.steps)
  print(text)
  if args.readme:
    from readme_block import DOCS, write

    write(START, END, text, DOCS / 'results.md')


if __name__ == '__main__':
  main()
