"""Trains each research config for the same wall-clock budget and tabulates sample quality.

  python benchmarks/compare_experiments.py --budget-s 240 --parallel 2 [--readme]

Each config in CONFIGS runs as `python -m ganjax.main` pinned to one CPU core
(`--parallel` runs side by side), is stopped with SIGTERM when its budget is
spent (the run saves a checkpoint and exits), and its checkpoint is then
evaluated on 10,000 samples with the shipped MNIST classifier (the EMA
generator where the config keeps one; balanced classes for a conditional
one). Prints a markdown table, writes each config's sample grid to
docs/compare/<name>.png, and with --readme replaces the table between the
compare markers in docs/results.md. Timings depend on the
machine; the numbers are a record of one run, not a test.
"""

import argparse
import datetime
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
CONFIGS = (
  'tutorial_gan',
  'mnist_gan',
  'mnist_mlp_bn',
  'mnist_hinge_ema',
  'mnist_sngan',
  'mnist_r1',
  'mnist_wgan_gp',
  'mnist_dcgan',
  'mnist_cgan',
)
START, END = '<!-- compare:start -->', '<!-- compare:end -->'


def _launch(name: str, out: pathlib.Path, core: int | None) -> subprocess.Popen:
  args = [
    f'--config=experiments/{name}.py',
    f'--workdir={out / name}',
    '--config.train.num_steps=10000000',
    '--config.eval.every_steps=0',
    '--config.checkpoint.every_steps=0',
    '--config.train.sample_every_steps=0',
    '--config.checkpoint.resume=False',
  ]
  cmd = [sys.executable, '-m', 'ganjax.main', *args]
  if core is not None and shutil.which('taskset'):
    cmd = ['taskset', '-c', str(core), *cmd]
  log = open(out / f'{name}.log', 'w')  # noqa: SIM115 (closed with the process)
  return subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def train_all(out: pathlib.Path, budget_s: float, parallel: int, names: list[str]) -> None:
  pending = list(names)
  running: dict[str, tuple[subprocess.Popen, float, int]] = {}
  free = list(range(parallel))
  stopped = set()
  while pending or running:
    while pending and free:
      name, core = pending.pop(0), free.pop(0)
      running[name] = (_launch(name, out, core if parallel > 1 else None), time.perf_counter(), core)
      print(f'started {name} on core {core}', flush=True)
    time.sleep(1)
    for name, (proc, started, core) in list(running.items()):
      if name not in stopped and time.perf_counter() - started >= budget_s:
        proc.send_signal(signal.SIGTERM)  # once: the run saves a checkpoint and exits
        stopped.add(name)
      if proc.poll() is not None:
        print(f'{name} finished (exit {proc.returncode})', flush=True)
        del running[name]
        free.append(core)


def evaluate_all(out: pathlib.Path, budget_s: float) -> list[dict]:
  import ganjax
  from ganjax import evaluate, input_pipeline, writers

  # Every config trains on all shipped digits: the copy check compares samples with them.
  evaluator = evaluate.Evaluator(train_images=evaluate.to_unit(input_pipeline.load_shipped_mnist().images))
  rows = []
  grids = ROOT / 'docs' / 'compare'
  grids.mkdir(parents=True, exist_ok=True)
  for name in CONFIGS:
    run = ganjax.restore(out / name)
    samples = ganjax.sample(run, 10_000, seed=0)
    stats = evaluator(samples)
    if run.config.model.num_classes:  # one row per class
      grid = writers.image_grid(ganjax.class_grid(run, per_class=10), cols=10)
    else:
      grid = writers.image_grid(samples[:64])
    writers.save_png(grid, grids / f'{name}.png')
    rows.append({'name': name, 'steps': run.step, 'steps_per_s': run.step / budget_s, **stats})
    print(f'{name}: step {run.step}, fd {stats["fd"]:.1f}, classes {stats["classes_covered"]:.0f}', flush=True)
  return rows


def table(rows: list[dict], budget_s: float, parallel: int, code: str) -> str:
  from quality import machine

  lines = [
    f'Written by `python benchmarks/compare_experiments.py --budget-s {budget_s:.0f} --parallel {parallel} --readme` '
    f'on {datetime.date.today()}: trained by {code}; {machine()}. Seed 0, one run per config (the budget of this '
    'session did not allow three seeds); each run pinned to one core.',
    '',
    f'| config ({budget_s:.0f} s on one core) | steps | steps/s | classifier FD | KID | precision | recall | '
    'coverage | classes | copy fraction | samples |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ]
  for r in rows:
    lines.append(
      f'| `{r["name"]}` | {r["steps"]:,} | {r["steps_per_s"]:.1f} | {r["fd"]:.1f} | {r["kid"]:.1f} | '
      f'{r["precision"]:.3f} | {r["recall"]:.3f} | {r["coverage"]:.3f} | {r["classes_covered"]:.0f} | '
      f'{r["copy_fraction"]:.3f} | '
      f'![](compare/{r["name"]}.png) |'
    )
  return '\n'.join(lines)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--budget-s', type=float, default=240, help='wall-clock seconds per config, startup included')
  parser.add_argument('--parallel', type=int, default=min(2, os.cpu_count() or 1), help='runs side by side')
  parser.add_argument('--out', default='runs/compare', help='folder of the runs')
  parser.add_argument('--readme', action='store_true', help='write the table into docs/results.md')
  parser.add_argument('--skip-training', action='store_true', help='evaluate the runs already in --out')
  parser.add_argument('--only', nargs='*', choices=CONFIGS, help='train only these (all are evaluated)')
  args = parser.parse_args()
  out = (ROOT / args.out).resolve()
  out.mkdir(parents=True, exist_ok=True)
  if not args.skip_training:
    train_all(out, args.budget_s, args.parallel, args.only or list(CONFIGS))
  from readme_block import code_of_runs

  code = code_of_runs([out / name for name in CONFIGS])
  text = table(evaluate_all(out, args.budget_s), args.budget_s, args.parallel, code)
  print(text)
  if args.readme:
    from readme_block import DOCS, write

    write(START, END, text, DOCS / 'results.md')


if __name__ == '__main__':
  main()
