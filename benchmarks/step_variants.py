"""One experiment's jitted train step beside variants of it: XLA's FLOPs per step and steps per second.

  python benchmarks/step_variants.py --config experiments/stacked_mnist_pac.py \
    --variant train.g_reuses_fakes=True [--variant 'opt.g_lr=8e-4 train.g_steps=2'] [--windows 7]

Each --variant is a space-separated list of `key=value` overrides (values as Python literals) applied
to the config; the config itself is the first row. Timed windows of the variants alternate, so a
slow minute of the machine falls on all of them alike; each rate is the median over the windows.
Run it alone on the machine: a script that prints numbers, not a test.
"""

import argparse
import ast
import statistics

import jax
import ml_collections
from timing import median_rate

from ganjax import objectives, states, train_step
from ganjax.config import load_experiment
from ganjax.errors import ConfigError
from ganjax.validate import validate


def _config(path: str, overrides: str) -> ml_collections.ConfigDict:
  """The experiment with `key=value` overrides (dotted keys, values as Python literals or bare strings)."""
  config = load_experiment(path)
  for item in overrides.split():
    key, sep, text = item.partition('=')
    *sections, field = key.split('.')
    node = config
    for name in sections:
      node = node.get(name) if isinstance(node, ml_collections.ConfigDict) else None
    if not sep or not isinstance(node, ml_collections.ConfigDict) or field not in node:
      raise SystemExit(f'step_variants.py: error: --variant wants key=value pairs of config keys, got {item!r}')
    try:
      value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
      value = text  # a bare string, e.g. loss.name=hinge
    node[field] = value
  try:
    validate(config)
  except ConfigError as error:
    raise SystemExit(f'step_variants.py: error: {error}') from None
  return config


def _stepper(config):
  """(run(n): n steps from fresh states, waiting for the result; XLA's FLOPs of one step)."""
  g, d = states.create_states(config, jax.random.key(0))
  cfg = objectives.StepConfig.from_config(config)
  batch = {'image': jax.random.uniform(jax.random.key(1), (config.train.batch_size, *config.data.image_shape))}
  step = jax.jit(lambda g, d, r: train_step.train_step(g, d, batch, r, cfg)[:2])
  cost = step.lower(g, d, jax.random.key(2)).compile().cost_analysis()
  flops = (cost[0] if isinstance(cost, list) else cost)['flops']

  def run(n):
    gs, ds = g, d
    for i in range(n):
      gs, ds = step(gs, ds, jax.random.key(i))
    jax.block_until_ready((gs, ds))

  run(2)  # compile and warm up
  return run, flops


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--config', required=True, help='an experiment file')
  parser.add_argument('--variant', action='append', default=[], help="overrides, e.g. 'train.g_steps=2'")
  parser.add_argument('--windows', type=int, default=7, help='timed windows per variant (the median is kept)')
  parser.add_argument('--steps', type=int, default=20, help='steps per window')
  args = parser.parse_args()
  if args.windows < 1 or args.steps < 1:
    parser.error(f'--windows and --steps must be >= 1, got {args.windows} and {args.steps}')
  names = ['(the config)', *args.variant]
  runs = [_stepper(_config(args.config, overrides)) for overrides in ['', *args.variant]]
  rates = {name: [] for name in names}
  for _ in range(args.windows):
    for name, (run, _) in zip(names, runs, strict=True):
      rates[name].append(median_rate(run, args.steps, 1))
  print(f'{args.config}, batch {load_experiment(args.config).train.batch_size}, {jax.device_count()} device(s)')
  print(f'| variant | GFLOP / step | steps/s (median of {args.windows} windows of {args.steps}) |')
  print('| --- | ---: | ---: |')
  for name, (_, flops) in zip(names, runs, strict=True):
    print(f'| {name} | {flops / 1e9:.2f} | {statistics.median(rates[name]):.2f} |')


if __name__ == '__main__':
  main()
