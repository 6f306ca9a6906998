"""Every 3-seed sweep of Stacked MNIST in one table, and some sweeps' KL at each evaluation: docs/evaluation.md.

  python benchmarks/stacked_trials.py [--docs] [--out runs/stacked] [--curve pac_long,pac_aug_long]

Reads the sweeps `benchmarks/stacked_table.py --rows NAME` trained into --out (it trains nothing): for
each row of TRIAL_ROWS whose folder is there, the KL to uniform (`eval/kl_modes`, 26,000 samples) at
the evaluations every row shares, mean ± std over the seeds; the last evaluation of each seed; and D's
logged accuracy averaged over the last 1,000 steps before it (near 0.5: an even game; near 1: D wins).
A sweep stopped early shows its last evaluation. --curve NAMES adds those rows' KL per seed at every
evaluation. --docs writes both into docs/evaluation.md's `stacked-trials` block.
"""

import argparse
import datetime
import json
import pathlib
import sys

import numpy as np
from stacked_table import ROWS
from toy_table import SEEDS

ROOT = pathlib.Path(__file__).resolve().parent.parent
# The packed config's sweeps, then the plain DCGAN's; rows whose runs are not in --out are left out.
TRIAL_ROWS = (
  'pac',
  'pac_lr4',
  'pac_decay',
  'pac_long',
  'pac_g8',
  'pac_reuse',
  'pac_lr6',
  'pac_ema',
  'pac_d2',
  'pac_aug',
  'pac_aug_long',
  'pac_aug_lr6',
  'dcgan',
  'dcgan_lr4',
  'dcgan_decay',
  'dcgan_aug',
)
# The evaluations tabulated for every row (most sweeps evaluated every 1,500 steps).
STEPS = (3000, 4500, 6000, 7500)


def member_rows(workdir: pathlib.Path) -> list[list[dict]]:
  """Each seed's metrics.jsonl records; SystemExit naming a member that has none."""
  members = []
  for k in range(len(SEEDS)):
    path = workdir / f'member_{k}' / 'metrics.jsonl'
    if not path.is_file():
      raise SystemExit(f'stacked_trials.py: error: {path} is missing')
    members.append([json.loads(line) for line in path.read_text().splitlines()])
  return members


def kl_by_step(records: list[dict]) -> dict[int, float]:
  return {r['step']: r['eval/kl_modes'] for r in records if 'eval/kl_modes' in r}


def shared_steps(workdir: pathlib.Path, kls: list[dict[int, float]]) -> list[int]:
  """The steps every member evaluated at; SystemExit when there are none (a sweep stopped before one)."""
  steps = sorted(set.intersection(*(set(kl) for kl in kls)))
  if not steps:
    raise SystemExit(f'stacked_trials.py: error: no evaluation shared by the members of {workdir}')
  return steps


def _cell(values: list[float]) -> str:
  return f'{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}'


def d_acc_before(records: list[dict], step: int) -> float:
  """D's logged accuracy averaged over the training records of the 1,000 steps up to `step`."""
  return float(np.mean([r['d_acc'] for r in records if 'd_acc' in r and step - 1000 < r['step'] <= step]))


def trials(out: pathlib.Path, names: list[str]) -> list[str]:
  from readme_block import code_of_runs

  head = ' | '.join(f'KL at {s:,}' for s in STEPS)
  lines = [
    f'| sweep (`stacked_table.py --rows`) | {head} | last evaluation: step, KL of seeds {SEEDS} | '
    "D's accuracy, its last 1,000 steps | trained by |",
    '| --- |' + ' ---: |' * (len(STEPS) + 2) + ' --- |',
  ]
  for name in names:
    members = member_rows(out / name)
    kls = [kl_by_step(m) for m in members]
    cells = [_cell([kl[s] for kl in kls]) if all(s in kl for kl in kls) else '' for s in STEPS]
    last = shared_steps(out / name, kls)[-1]
    per_seed = ' / '.join(f'{kl[last]:.3f}' for kl in kls)
    acc = np.mean([d_acc_before(m, last) for m in members])
    row = f'| {ROWS[name][0]} (`{name}`) | {" | ".join(cells)} | {last:,}: {per_seed} | {acc:.2f} |'
    lines.append(f'{row} {code_of_runs([out / name])} |')
  return lines


def curve(out: pathlib.Path, name: str) -> list[str]:
  kls = [kl_by_step(m) for m in member_rows(out / name)]
  seeds = ' | '.join(f'seed {s}' for s in SEEDS)
  lines = [f'| step | {seeds} | mean ± std |', '| ---: |' + ' ---: |' * (len(SEEDS) + 1)]
  for step in shared_steps(out / name, kls):
    values = [kl[step] for kl in kls]
    lines.append(f'| {step:,} | ' + ' | '.join(f'{v:.3f}' for v in values) + f' | {_cell(values)} |')
  return lines


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--out', default='runs/stacked', help='folder of the sweeps')
  parser.add_argument(
    '--curve', default='', help='also the KL per seed at every evaluation of these rows, e.g. pac_long,pac_aug'
  )
  parser.add_argument('--docs', action='store_true', help="write into docs/evaluation.md's stacked-trials block")
  args = parser.parse_args()
  out = (ROOT / args.out).resolve()
  curves = [name for name in args.curve.split(',') if name]
  unknown = [name for name in curves if name not in ROWS]
  if unknown:
    sys.exit(f'stacked_trials.py: error: unknown row(s) {unknown}; choose from {list(ROWS)}')
  names = [name for name in TRIAL_ROWS if (out / name).is_dir()]
  if not names:
    sys.exit(f'stacked_trials.py: error: no sweep of {TRIAL_ROWS} in {out}')
  command = 'python benchmarks/stacked_trials.py' + (f' --curve {args.curve}' if args.curve else '')
  from quality import machine

  lines = [
    f'Written by `{command} --docs` on {datetime.date.today()}, on {machine()}, from the runs in {args.out}. '
    f'KL to uniform from 26,000 samples, mean ± std over seeds {SEEDS}.',
    '',
    *trials(out, names),
  ]
  for name in curves:
    lines += ['', f'{ROWS[name][0]} (`{name}`), at every evaluation:', '', *curve(out, name)]
  text = '\n'.join(lines)
  print(text)
  if args.docs:
    from readme_block import write

    write('<!-- stacked-trials:start -->', '<!-- stacked-trials:end -->', text, ROOT / 'docs' / 'evaluation.md')


if __name__ == '__main__':
  main()
