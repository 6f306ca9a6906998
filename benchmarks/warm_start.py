"""A cold and a warm start of the quickstart: what JAX's persistent compilation cache saves.

  python benchmarks/warm_start.py [--steps 100] [--repeats 2] [--readme]

Runs the README's quickstart command (`experiments/mnist_gan.py`, shortened to --steps steps with
one periodic evaluation at the end) against a fresh, empty compilation cache, then again against
the cache the first run filled, --repeats times each way, alternating. Reports, from each run's
summary.json, the "setup and compilation" time that `ganjax.main` prints (launch to the end of the
first step) and the whole run from launch to exit. With --readme it writes the result between the
warmstart markers of README.md. A record of this machine, on a quiet machine; not a test.
"""

import argparse
import datetime
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
START, END = '<!-- warmstart:start -->', '<!-- warmstart:end -->'


def run_once(workdir: pathlib.Path, cache: pathlib.Path, steps: int) -> dict[str, float]:
  """One quickstart run against `cache`; its setup seconds and launch-to-exit seconds."""
  env = {k: v for k, v in os.environ.items() if not k.startswith('JAX_COMPILATION_CACHE')}
  env['GANJAX_COMPILATION_CACHE'] = str(cache)
  args = [
    sys.executable,
    '-m',
    'ganjax.main',
    '--config=experiments/mnist_gan.py',
    f'--workdir={workdir}',
    f'--config.train.num_steps={steps}',
    f'--config.eval.every_steps={steps}',
  ]
  t0 = time.perf_counter()
  proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
  wall = time.perf_counter() - t0
  if proc.returncode:
    raise SystemExit(f'the quickstart failed (exit {proc.returncode}): {proc.stderr[-2000:]}')
  summary = json.loads((workdir / 'summary.json').read_text())
  return {'setup_s': summary['first_step_s'], 'wall_s': wall}


def measure(steps: int, repeats: int) -> dict:
  cold, warm = [], []
  with tempfile.TemporaryDirectory() as tmp:
    tmp = pathlib.Path(tmp)
    for i in range(repeats):
      cache = tmp / f'cache{i}'
      for name, runs in (('cold', cold), ('warm', warm)):
        workdir = tmp / f'{name}{i}'
        runs.append(run_once(workdir, cache, steps))
        shutil.rmtree(workdir)
        print(f'{name} start {i}: {runs[-1]}', flush=True)
    size = sum(f.stat().st_size for f in (tmp / 'cache0').iterdir())

  def median(runs, key):
    return statistics.median(r[key] for r in runs)

  return {
    'steps': steps,
    'repeats': repeats,
    'cold_setup_s': median(cold, 'setup_s'),
    'warm_setup_s': median(warm, 'setup_s'),
    'cold_wall_s': median(cold, 'wall_s'),
    'warm_wall_s': median(warm, 'wall_s'),
    'cache_mb': size / 2**20,
  }


def text(r: dict) -> str:
  from quality import machine
  from readme_block import code_now

  ratio = r['warm_setup_s'] / r['cold_setup_s']
  return '\n'.join(
    [
      f'Written by `python benchmarks/warm_start.py --readme` on {datetime.date.today()}: timing {code_now()}; '
      f'{machine()}. The quickstart command shortened to {r["steps"]} steps with one evaluation; medians of '
      f'{r["repeats"]} runs each, cold and warm alternating.',
      '',
      '| start | setup and compilation s | launch to exit s |',
      '| --- | ---: | ---: |',
      f'| first run (empty cache) | {r["cold_setup_s"]:.1f} | {r["cold_wall_s"]:.1f} |',
      f'| second run (cached programs) | {r["warm_setup_s"]:.1f} | {r["warm_wall_s"]:.1f} |',
      '',
      f"The second start takes {100 * ratio:.0f}% of the first one's setup (target: at most 50%); the cache "
      f'holds {r["cache_mb"]:.1f} MB for this config.',
    ]
  )


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--steps', type=int, default=100, help='steps per run')
  parser.add_argument('--repeats', type=int, default=2, help='cold and warm runs each')
  parser.add_argument('--readme', action='store_true', help='write the table into README.md')
  args = parser.parse_args()
  result = measure(args.steps, args.repeats)
  print(json.dumps(result))
  out = text(result)
  print(out)
  if args.readme:
    from readme_block import write

    write(START, END, out)


if __name__ == '__main__':
  main()
