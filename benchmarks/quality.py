"""Sample quality of the default, the tutorial and the clean split over 3 seeds: docs/results.md and the README.

  python benchmarks/quality.py [--readme] [--out runs/quality] [--skip-training] [--only default ...]
                               [--quickstart-only] [--quickstart-seeds] [--one-core]

Each experiment trains as one 3-seed sweep (`sweep.field=seed`, one program,
all cores), then `ganjax.evaluate.evaluate_workdir` scores every member on
10,000 samples with the shipped MNIST classifier, copy check included. The
quickstart run is the README's exact command (seed 0, no sweep), timed from
launch to exit; --quickstart-seeds runs it again with seeds 1 and 2 (the
quality issue's targets are per seed of that command) and tabulates all
three; --one-core runs the quickstart with seeds 0, 1 and 2 each pinned to one
core (taskset), side by side, and tabulates them too. Prints markdown tables with the command, the machine and the
seeds beside them; with --readme it replaces the tables between the quality
markers in docs/results.md and the headline table in README.md. A record of one run on one machine, not a test: XLA:CPU
results depend on the thread count, so another core count lands elsewhere.
"""

import argparse
import datetime
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
START, END = '<!-- quality:start -->', '<!-- quality:end -->'
SEEDS = (0, 1, 2)
QUICKSTART = ('--config=experiments/mnist_gan.py',)
# name: (what it is, the main flags). Every experiment runs as a seed sweep.
EXPERIMENTS = {
  'default': ('`mnist_gan.py`, the default', ('--config=experiments/mnist_gan.py',)),
  'clean_split': (
    '`mnist_gan.py` with `data.clean_split=True` (G never sees the reference digits)',
    ('--config=experiments/mnist_gan.py', '--config.data.clean_split=True'),
  ),
  # 2,000 steps: it collapses within the first thousand, and a 3-seed sweep of it is slow on 2 cores.
  'tutorial': (
    '`tutorial_gan.py`, the tutorial exactly (2,000 steps)',
    ('--config=experiments/tutorial_gan.py', '--config.train.num_steps=2000'),
  ),
}
SHOWN = ('fd', 'precision', 'recall', 'coverage', 'classes_covered', 'min_class_share', 'copy_fraction')
# The README's headline table: the default and the tutorial beside the real-vs-real floor.
HEADLINE_START, HEADLINE_END = '<!-- headline:start -->', '<!-- headline:end -->'
HEADLINE = ('fd', 'precision', 'recall', 'coverage', 'classes_covered')
HEADLINE_RUNS = {
  'default': '`mnist_gan.py`, the default (4,000 steps)',
  'tutorial': '`tutorial_gan.py`, the tutorial (2,000 steps)',
}


def _cpu_name() -> str:
  try:
    for line in pathlib.Path('/proc/cpuinfo').read_text().splitlines():
      if line.startswith('model name'):
        return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or 'unknown CPU'


def machine() -> str:
  import jax

  from ganjax import provenance

  cores = provenance.cpu_cores()
  return (
    f'{cores} cores ({_cpu_name()}), {jax.default_backend()}, jax {jax.__version__}, Python {platform.python_version()}'
  )


def _run(args: list[str], log: pathlib.Path) -> float:
  """Runs `ganjax.main` with `args`, logging to `log`; its wall time from launch to exit.

  Each run gets its own empty compilation cache, so every wall time is that of a first run (a
  user's second run of a config starts faster: README, quickstart).
  """
  t0 = time.perf_counter()
  with tempfile.TemporaryDirectory() as cache, open(log, 'w') as f:
    env = {**os.environ, 'GANJAX_COMPILATION_CACHE': cache}
    proc = subprocess.run(
      [sys.executable, '-m', 'ganjax.main', *args], cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, env=env
    )
  if proc.returncode:
    raise SystemExit(f'{" ".join(args)} failed (exit {proc.returncode}); see {log}')
  return time.perf_counter() - t0


def sweep_flags(flags: tuple[str, ...], workdir: pathlib.Path) -> list[str]:
  seeds = '(' + ', '.join(map(str, SEEDS)) + ')'
  return [*flags, f'--workdir={workdir}', '--config.sweep.field=seed', f'--config.sweep.choices={seeds}']


def train(out: pathlib.Path, names: list[str], quickstart: bool) -> dict[str, float]:
  walls = {}
  for name in names:
    workdir = out / name
    shutil.rmtree(workdir, ignore_errors=True)
    print(f'training {name} ({len(SEEDS)} seeds in one sweep)', flush=True)
    walls[name] = _run(sweep_flags(EXPERIMENTS[name][1], workdir), out / f'{name}.log')
  if quickstart:
    shutil.rmtree(out / 'quickstart', ignore_errors=True)
    print('training the quickstart (seed 0, no sweep)', flush=True)
    walls['quickstart'] = _run([*QUICKSTART, f'--workdir={out / "quickstart"}'], out / 'quickstart.log')
  return walls


def _fmt(metric: str, value) -> str:
  if isinstance(value, tuple):
    mean, std = value
    return f'{mean:.1f} ± {std:.1f}' if metric == 'fd' else f'{mean:.3f} ± {std:.3f}'
  if metric == 'classes_covered':
    return f'{value:.0f}'
  return f'{value:.1f}' if metric == 'fd' else f'{value:.3f}'


def grids(out: pathlib.Path, names: list[str]) -> None:
  """Seed 0's samples of each experiment as docs/quality/<name>.png, and the default's nearest training digits."""
  import ganjax
  from ganjax import evaluate, writers

  docs = ROOT / 'docs' / 'quality'
  for name in names:
    run = ganjax.restore(out / name, member=0)
    writers.save_png(writers.image_grid(ganjax.sample(run, 64, seed=0)), docs / f'{name}.png')
  if 'default' in names:
    evaluate.write_neighbours(str(out / 'default'), str(docs / 'default_neighbours.png'))


def _time_to_fd(workdir: pathlib.Path, summary: dict) -> str:
  """When the run's periodic evaluation first reached FD <= 100 and <= 50: the step and the seconds from launch."""
  import json

  records = [json.loads(line) for line in (workdir / 'metrics.jsonl').read_text().splitlines()]
  fds = [(r['step'], r['eval/fd']) for r in records if 'eval/fd' in r]
  walls = summary.get('eval_wall_s', {})
  parts = []
  for bound in (100, 50):
    hit = next(((step, fd) for step, fd in fds if fd <= bound), None)
    if hit is None:
      parts.append(f'FD <= {bound}: not within the run')
    else:
      step, fd = hit
      parts.append(f'FD <= {bound}: at step {step:,} (FD {fd:.1f}), {walls[str(step)]:.0f} s after launch')
  return (
    "Time to a good generator, from the quickstart's periodic evaluation (every `eval.every_steps`, on "
    '`eval.num_samples` samples, so its FD sits above the 10,000-sample one): ' + '; '.join(parts) + '.'
  )


EXTRA_QUICKSTART_SEEDS = (1, 2)  # the quickstart command again with --config.seed=S, each a plain run


def train_quickstart_seeds(out: pathlib.Path) -> None:
  """The quickstart command with each extra seed (no sweep, all cores), timed; walls saved beside the runs."""
  for seed in EXTRA_QUICKSTART_SEEDS:
    workdir = out / f'quickstart_seed{seed}'
    shutil.rmtree(workdir, ignore_errors=True)
    print(f'training the quickstart with seed {seed}', flush=True)
    wall = _run([*QUICKSTART, f'--workdir={workdir}', f'--config.seed={seed}'], out / f'quickstart_seed{seed}.log')
    (out / f'quickstart_seed{seed}.wall').write_text(f'{wall}\n')


def quickstart_seed_table(out: pathlib.Path) -> list[str]:
  """Per seed, the quickstart command's wall time and its 10,000-sample metrics (seeds whose runs exist)."""
  from ganjax import evaluate

  runs = [(0, out / 'quickstart', out / 'quickstart.wall')]
  runs += [(s, out / f'quickstart_seed{s}', out / f'quickstart_seed{s}.wall') for s in EXTRA_QUICKSTART_SEEDS]
  runs = [r for r in runs if (r[1] / 'summary.json').is_file() and r[2].is_file()]
  if len(runs) < 2:
    return []
  from readme_block import code_of_runs

  lines = [
    f'The quickstart command with `--config.seed=S` (plain runs, both cores, each on an empty compilation cache), '
    f'{len(runs)} seeds, trained by '
    f'{code_of_runs([workdir for _, workdir, _ in runs])}:',
    '',
    '| seed | wall s | ' + ' | '.join(SHOWN) + ' |',
    '| ---: | ---: |' + ' ---: |' * len(SHOWN),
  ]
  for seed, workdir, wall in runs:
    (row,) = evaluate.evaluate_workdir(str(workdir), 10_000).values()
    cells = ' | '.join(_fmt(m, row[m]) for m in SHOWN)
    lines.append(f'| {seed} | {float(wall.read_text()):.0f} | {cells} |')
  return ['', *lines]


def train_one_core(out: pathlib.Path) -> None:
  """The quickstart command with seeds SEEDS, each pinned to one core (taskset), as many side by side as
  there are cores: XLA:CPU then runs one thread, another float trajectory than on all cores."""
  cores = sorted(os.sched_getaffinity(0))
  pending = list(SEEDS)
  running: list[tuple[subprocess.Popen, int, object]] = []
  while pending or running:
    while pending and len(running) < len(cores):
      seed = pending.pop(0)
      busy = {core for _, core, _ in running}
      core = next(c for c in cores if c not in busy)
      workdir = out / f'one_core_seed{seed}'
      shutil.rmtree(workdir, ignore_errors=True)
      print(f'training the quickstart with seed {seed} on core {core}', flush=True)
      log = open(out / f'one_core_seed{seed}.log', 'w')  # noqa: SIM115 (closed when the run ends)
      cmd = ['taskset', '-c', str(core), sys.executable, '-m', 'ganjax.main', *QUICKSTART, f'--workdir={workdir}']
      proc = subprocess.Popen([*cmd, f'--config.seed={seed}'], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
      running.append((proc, core, log))
    time.sleep(2)
    for item in [r for r in running if r[0].poll() is not None]:
      running.remove(item)
      item[2].close()
      if item[0].returncode:
        raise SystemExit(f'a one-core quickstart run failed (exit {item[0].returncode}); see {item[2].name}')


def one_core_table(out: pathlib.Path) -> list[str]:
  """Per seed, the one-core quickstart's 10,000-sample metrics (when all its runs exist)."""
  from ganjax import evaluate

  runs = [(seed, out / f'one_core_seed{seed}') for seed in SEEDS]
  if not all((workdir / 'summary.json').is_file() for _, workdir in runs):
    return []
  from readme_block import code_of_runs

  lines = [
    f'The quickstart command with `--config.seed=S`, each run pinned to one core (`taskset -c N`; '
    f'`python benchmarks/quality.py --one-core`), seeds {SEEDS}, trained by '
    f'{code_of_runs([workdir for _, workdir in runs])}:',
    '',
    '| seed | ' + ' | '.join(SHOWN) + ' |',
    '| ---: |' + ' ---: |' * len(SHOWN),
  ]
  for seed, workdir in runs:
    (row,) = evaluate.evaluate_workdir(str(workdir), 10_000).values()
    lines.append(f'| {seed} | ' + ' | '.join(_fmt(m, row[m]) for m in SHOWN) + ' |')
  return ['', *lines]


def _log_lines(log: pathlib.Path) -> list[str]:
  """The first and last tutorial lines and the 'done:' line of a run's log (tqdm's bar stripped)."""
  import re

  text = re.sub(r'\x1b\[[0-9;]*[A-Za-z]', '', log.read_text()).replace('\r', '\n')
  lines = [line.strip() for line in text.splitlines()]
  tutorial = [line for line in lines if re.fullmatch(r'\d+/\d+ \[D loss: .*\] \[G loss: .*\]', line)]
  done = [line for line in lines if line.startswith('done: ')]
  return [*tutorial[:1], *tutorial[-1:], *done[-1:]]


def tables(out: pathlib.Path, names: list[str], walls: dict[str, float], quickstart: bool) -> tuple[str, str]:
  """The full tables (docs/results.md) and the README's headline table."""
  import json

  from readme_block import code_of_runs

  from ganjax import evaluate

  header = '| run | steps | ' + ' | '.join(SHOWN) + ' |'
  rule = '| --- | ---: |' + ' ---: |' * len(SHOWN)
  summary, members = [header, rule], [header, rule]
  headline = [
    '| run | ' + ' | '.join(HEADLINE) + ' |',
    '| --- |' + ' ---: |' * len(HEADLINE),
  ]
  for name in names:
    rows = evaluate.evaluate_workdir(str(out / name), 10_000)
    step = json.loads((out / name / 'summary.json').read_text())['step']
    *per_member, mean = rows.values()
    label = EXPERIMENTS[name][0]
    summary.append(f'| {label}, seeds {SEEDS} | {step:,} | ' + ' | '.join(_fmt(m, mean[m]) for m in SHOWN) + ' |')
    if name in HEADLINE_RUNS:
      headline.append(f'| {HEADLINE_RUNS[name]} | ' + ' | '.join(_fmt(m, mean[m]) for m in HEADLINE) + ' |')
    for seed, row in zip(SEEDS, per_member, strict=True):
      members.append(f'| {name}, seed {seed} | {step:,} | ' + ' | '.join(_fmt(m, row[m]) for m in SHOWN) + ' |')
  floor = evaluate.reference_rows(10_000)['real vs real (2.5k halves)']
  summary.append(
    '| real vs real (held-out halves of 2,500: the floor) | | '
    + ' | '.join(_fmt(m, floor[m]) if m in floor else '-' for m in SHOWN)
    + ' |'
  )
  headline.append('| real vs real (the floor) | ' + ' | '.join(_fmt(m, floor[m]) for m in HEADLINE) + ' |')
  code = code_of_runs([out / name for name in names])
  headline_text = [
    f'Written by `python benchmarks/quality.py --readme` on {datetime.date.today()}: trained by {code}; '
    f'{machine()}. Mean ± std over seeds {SEEDS} (one seed sweep each), 10,000 samples per seed; the '
    'columns are defined in [docs/evaluation.md](docs/evaluation.md), every row in [docs/results.md](docs/results.md).',
    '',
    *headline,
  ]
  lines = [
    f'Written by `python benchmarks/quality.py --readme` on {datetime.date.today()}: trained by {code}; {machine()}. '
    f'Seeds {SEEDS}, each experiment one seed sweep; 10,000 samples per member; mean ± std over the seeds.',
    '',
    *summary,
    '',
    'Per seed:',
    '',
    *members,
  ]
  if quickstart:
    rows = evaluate.evaluate_workdir(str(out / 'quickstart'), 10_000)
    (row,) = rows.values()
    summary_json = json.loads((out / 'quickstart' / 'summary.json').read_text())
    lines += [
      '',
      f'The quickstart command itself (`python -m ganjax.main {" ".join(QUICKSTART)} --workdir=...`, seed 0, '
      f'no sweep, trained by {code_of_runs([out / "quickstart"])}): {walls["quickstart"]:.0f} s from launch to '
      f'exit on an empty compilation cache, {summary_json["steps_per_s"]:.1f} steps/s; '
      f'at its last step FD {row["fd"]:.1f}, precision {row["precision"]:.3f}, recall {row["recall"]:.3f}, '
      f'coverage {row["coverage"]:.3f}, {row["classes_covered"]} classes, the rarest with '
      f'{100 * row["min_class_share"]:.1f}% of the samples, copy fraction {row["copy_fraction"]:.3f}.',
      '',
      _time_to_fd(out / 'quickstart', summary_json),
      '',
      'Its first and last tutorial lines and its final line, as printed:',
      '',
      '```',
      *_log_lines(out / 'quickstart.log'),
      '```',
      *quickstart_seed_table(out),
    ]
  lines += one_core_table(out)
  walls_text = ', '.join(f'{k} {v:.0f} s' for k, v in walls.items())
  if walls_text:
    lines += ['', f'Wall time of each training: {walls_text}.']
  return '\n'.join(lines), '\n'.join(headline_text)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--out', default='runs/quality', help='folder of the runs')
  parser.add_argument(
    '--readme', action='store_true', help='write the tables into docs/results.md and the headline into README.md'
  )
  parser.add_argument('--skip-training', action='store_true', help='evaluate the runs already in --out')
  parser.add_argument('--only', nargs='*', choices=list(EXPERIMENTS), help='these experiments only')
  parser.add_argument('--no-quickstart', action='store_true', help='skip the timed quickstart run')
  parser.add_argument(
    '--quickstart-seeds', action='store_true', help=f'also time the quickstart with seeds {EXTRA_QUICKSTART_SEEDS}'
  )
  parser.add_argument(
    '--quickstart-only', action='store_true', help='train only the timed quickstart (on a quiet machine); tabulate all'
  )
  parser.add_argument(
    '--one-core',
    action='store_true',
    help=f'train only the quickstart with seeds {SEEDS}, each pinned to one core; tabulate all',
  )
  args = parser.parse_args()
  out = (ROOT / args.out).resolve()
  out.mkdir(parents=True, exist_ok=True)
  names = args.only or list(EXPERIMENTS)
  quickstart = not args.no_quickstart
  walls = {}
  if args.one_core:
    train_one_core(out)
  elif args.quickstart_only:
    walls = train(out, [], True)
  elif not args.skip_training:
    walls = train(out, names, quickstart)
  if args.quickstart_seeds:
    train_quickstart_seeds(out)
  if 'quickstart' in walls:
    (out / 'quickstart.wall').write_text(f'{walls["quickstart"]}\n')
  elif quickstart:  # tabulate an earlier timed quickstart, if there is one
    quickstart = (out / 'quickstart' / 'summary.json').is_file() and (out / 'quickstart.wall').is_file()
    if quickstart:
      walls['quickstart'] = float((out / 'quickstart.wall').read_text())
  text, headline = tables(out, names, walls, quickstart)
  grids(out, names)
  print(text)
  if args.readme:
    from readme_block import DOCS, write

    write(START, END, text, DOCS / 'results.md')
    if set(HEADLINE_RUNS) <= set(names):
      write(HEADLINE_START, HEADLINE_END, headline)


if __name__ == '__main__':
  main()
