"""The 2-D mode-collapse benchmark over 3 seeds: the toy table of docs/results.md and scatter plots.

  python benchmarks/toy_table.py [--readme] [--out runs/toy] [--skip-training]

Each row trains as one 3-seed sweep (`sweep.field=seed`; the members share
the dataset drawn from the base seed), reads `eval/modes_covered` and
`eval/high_quality` from every member's metrics.jsonl at the listed steps,
and reports mean ± std over the seeds. Member 0's scatter plots go to
docs/toy/. With --readme the table replaces the one between the toy markers
in docs/results.md. Quality only: nothing here is timed.
"""

import argparse
import datetime
import json
import pathlib
import shutil
import subprocess
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
START, END = '<!-- toy:start -->', '<!-- toy:end -->'
SEEDS = (0, 1, 2)
RING_TRAINING = (
  '--config.model.d_spectral_norm=False',
  '--config.loss.name=bce',
  '--config.train.d_update=separate',
)
TUTORIAL_TRAINING = ('--config.model.g_norm=none', '--config.model.d_minibatch_std=False')
# name: (label, config, extra flags, steps at which to read the metrics)
ROWS = {
  'ring8': ('ring8, `toy_ring8.py`', 'toy_ring8', (), (5000,)),
  'ring8_tutorial': ("ring8, the tutorial's training", 'toy_ring8', TUTORIAL_TRAINING, (5000,)),
  'grid25': ('grid25, `toy_grid25.py`', 'toy_grid25', (), (5000, 15000, 25000)),
  'grid25_ring': (
    "grid25 with the ring's training",
    'toy_grid25',
    (*RING_TRAINING, '--config.train.num_steps=5000'),
    (5000,),
  ),
  'grid25_tutorial': (
    "grid25 with the tutorial's training",
    'toy_grid25',
    (*RING_TRAINING, *TUTORIAL_TRAINING, '--config.train.num_steps=5000'),
    (5000,),
  ),
}


def train_sweep(
  out: pathlib.Path, name: str, config: str, extra: tuple[str, ...] | list[str], resume: bool = False
) -> None:
  """`experiments/<config>.py` with `extra` flags as one seed sweep over SEEDS in `out/name` (log beside it).

  The folder starts empty, or with `resume` goes on from the checkpoint already in it.
  """
  workdir = out / name
  if not resume:
    shutil.rmtree(workdir, ignore_errors=True)
  seeds = '(' + ', '.join(map(str, SEEDS)) + ')'
  args = [
    f'--config=experiments/{config}.py',
    f'--workdir={workdir}',
    '--config.sweep.field=seed',
    f'--config.sweep.choices={seeds}',
    *extra,
  ]
  print(f'training {name}', flush=True)
  with open(out / f'{name}.log', 'w') as log:
    subprocess.run(
      [sys.executable, '-m', 'ganjax.main', *args], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=True
    )


def train(out: pathlib.Path, name: str) -> None:
  _, config, extra, _ = ROWS[name]
  train_sweep(out, name, config, ('--config.checkpoint.enabled=False', *extra))


def _at(workdir: pathlib.Path, step: int) -> dict[str, float]:
  for line in (workdir / 'metrics.jsonl').read_text().splitlines():
    record = json.loads(line)
    if record.get('step') == step and 'eval/modes_covered' in record:
      return record
  raise SystemExit(f'no evaluation at step {step} in {workdir}/metrics.jsonl')


def table(out: pathlib.Path) -> str:
  from quality import machine
  from readme_block import code_of_runs

  code = code_of_runs([out / name for name in ROWS])
  lines = [
    f'Written by `python benchmarks/toy_table.py --readme` on {datetime.date.today()}: trained by {code}; '
    f'{machine()}. '
    f'Seeds {SEEDS}, each row one seed sweep; mean ± std over the seeds of the metrics on 10,000 samples.',
    '',
    '| config | step | modes covered | high quality |',
    '| --- | ---: | ---: | ---: |',
  ]
  docs = ROOT / 'docs' / 'toy'
  docs.mkdir(parents=True, exist_ok=True)
  for name, (label, config, _, steps) in ROWS.items():
    total = 8 if config == 'toy_ring8' else 25
    for step in steps:
      records = [_at(out / name / f'member_{k}', step) for k in range(len(SEEDS))]
      modes = np.array([r['eval/modes_covered'] for r in records])
      quality = np.array([r['eval/high_quality'] for r in records])
      lines.append(
        f'| {label} | {step:,} | {modes.mean():.1f} ± {modes.std(ddof=1):.1f} of {total} | '
        f'{quality.mean():.2f} ± {quality.std(ddof=1):.2f} |'
      )
    plot = out / name / 'member_0' / 'samples' / f'step_{steps[-1]:06d}.png'
    if plot.is_file():
      shutil.copy(plot, docs / f'{name}.png')
  return '\n'.join(lines)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--out', default='runs/toy', help='folder of the runs')
  parser.add_argument('--readme', action='store_true', help='write the table into docs/results.md')
  parser.add_argument('--skip-training', action='store_true', help='tabulate the runs already in --out')
  args = parser.parse_args()
  out = (ROOT / args.out).resolve()
  out.mkdir(parents=True, exist_ok=True)
  if not args.skip_training:
    for name in ROWS:
      train(out, name)
  text = table(out)
  print(text)
  if args.readme:
    from readme_block import DOCS, write

    write(START, END, text, DOCS / 'results.md')


if __name__ == '__main__':
  main()
