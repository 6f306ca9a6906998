"""Step-speed benchmark: ganjax's own jitted train step, the full loop, and the machine's matmul roofline.

  python benchmarks/step_speed.py            # a table
  python benchmarks/step_speed.py --json     # ... and one JSON object on the last line
  python benchmarks/step_speed.py --readme   # ... written into docs/performance.md

Measures, in one process on an otherwise quiet machine:
- the real `ganjax.train_step` (from the package, both `separate` and `joint`
  D updates) on the tutorial model at batch 64 and 256: compile time,
  steps/s (median of timed windows after warm-up), XLA's FLOP count per step
  and the achieved GFLOP/s; and the same step with lax.conv in D instead of
  the default PatchConv (`model.d_conv_impl`), also with XLA:CPU's YNNPACK
  convolutions turned off by a flag (Eigen's convolutions instead);
- the DCGAN experiment's step at batch 64 with the patch (default) and lax
  convolutions (`model.g_conv_impl`, `model.d_conv_impl`);
- the default experiment's step (`experiments/mnist_gan.py`) at batch 64 and 256, and at 256 also
  with glibc's own malloc settings (a subprocess without `ganjax.host`), with page faults per step;
- the same models and updates (the tutorial's and the default's) in idiomatic PyTorch
  (`benchmarks/torch_gan.py`), same batch sizes, timed in windows that alternate with ganjax's,
  when torch is installed (skipped with a message if not);
- the fp32 matmul GFLOP/s of this machine (a 2048^3 jitted matmul), the
  roofline the step is compared with;
- the full loop (`train_and_evaluate` with the default logging and sample
  grids, checkpoints and evaluation off), to show what the loop adds;
- peak resident memory of this process;
- seconds from launching `python -m ganjax.main` to the end of the first step;
- the batch-64 step on 1, 2 and 4 forced CPU devices (steps/s, images/s);
- 4 seeds of the default experiment as one sweep program (vmap and unroll) vs 4 runs in a row.
Timings are of this machine at the time of the run; they are not tests.
"""

import argparse
import json
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import timing
from readme_block import code_now

from ganjax import host, input_pipeline, samplers, states, train, train_step
from ganjax.config import load_experiment, tutorial_config
from ganjax.host import EIGEN_CONV_FLAG  # what `ganjax.main` adds for lax.conv runs on CPU

_ROOT = pathlib.Path(__file__).resolve().parent.parent


_median_rate = timing.median_rate


def bench_step(
  batch_size: int,
  d_update: str,
  windows: int,
  conv_impl: str | None = None,
  experiment: str | None = None,
  partner: tuple[Callable[[int], None], int] | None = None,
  roofline: Callable[[int], None] | None = None,
  overrides: Callable | None = None,
  calls: int | None = None,
) -> dict:
  """Steps/s, compile time, FLOPs and page faults of the package's train step on device-resident data.

  The tutorial's step unless `experiment` names a file in experiments/; `conv_impl` sets both G's and
  D's convolution implementation ('patches' or 'xla'). With `partner` (`run(n)` of a warmed-up
  PyTorch step and its calls per window), the two are timed in alternating windows, so that the
  machine's drift (up to 30% within minutes on the development machine) falls on both alike; its
  median rate is returned as 'partner_steps_per_s'. `overrides(config)` edits the config before the
  states are built; `calls`: steps per timed window (default: 640 images' worth, at least 3). With
  `roofline` (a `matmul_runner`), the matmul roofline is timed in windows that alternate with the
  step's too ('matmul_gflops'), for the same reason.
  """
  config = load_experiment(_ROOT / 'experiments' / f'{experiment}.py') if experiment else tutorial_config()
  config.train.batch_size = batch_size
  config.train.d_update = d_update
  if conv_impl:
    config.model.d_conv_impl = config.model.g_conv_impl = conv_impl
  if overrides is not None:
    overrides(config)
  # The package's data-parallel step, as the training loop runs it (replicated states, sharded batch).
  g_state, d_state = train_step.replicate(states.create_states(config, jax.random.key(0)))
  step = train_step.make_train_step(config)
  sampler = samplers.make_sampler(config, input_pipeline.load(config), jax.random.key(1))
  batch, key = sampler.batch(0), jax.random.key(2)

  t0 = time.perf_counter()
  compiled = step.lower(g_state, d_state, batch, key).compile()
  compile_s = time.perf_counter() - t0
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost
  flops = float(cost.get('flops', float('nan')))

  state = [g_state, d_state]
  faults = [0, 0]  # minor page faults and steps in our timed windows

  def run(n):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for i in range(n):
      state[0], state[1], metrics = compiled(state[0], state[1], sampler.batch(i), jax.random.fold_in(key, i))
    jax.block_until_ready(metrics)
    faults[0] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    faults[1] += n

  run(min(3, calls or 3))  # warm-up
  faults[:] = [0, 0]
  calls = calls or max(3, 640 // batch_size)
  result = {'compile_s': compile_s, 'gflop_per_step': flops / 1e9}
  others = {}  # timed in windows that alternate with ours: name -> (run, calls per window, rates)
  if partner is not None:
    others['partner_steps_per_s'] = (*partner, [])
  if roofline is not None:
    others['matmul_gflops'] = (roofline, 3, [])
  ours = []
  for _ in range(windows):
    ours.append(_median_rate(run, calls, 1))
    for other_run, other_calls, rates in others.values():
      rates.append(_median_rate(other_run, other_calls, 1))
  rate = statistics.median(ours)
  for name, (_, _, rates) in others.items():
    result[name] = statistics.median(rates)
  if roofline is not None:
    result['matmul_gflops'] *= 2 * MATMUL_N**3 / 1e9
  result.update(steps_per_s=rate, gflops=rate * flops / 1e9, page_faults_per_step=faults[0] / faults[1])
  return result


MATMUL_N = 2048  # the roofline's square fp32 matmul


def matmul_runner(n: int = MATMUL_N) -> Callable[[int], None]:
  """`run(k)`: k jitted (n x n) @ (n x n) fp32 matmuls, compiled and warmed up; 2 n^3 FLOPs each."""
  a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
  f = jax.jit(lambda x: x @ x)
  f(a).block_until_ready()

  def run(k):
    for _ in range(k):
      out = f(a)
    out.block_until_ready()

  return run


def bench_matmul(n: int = MATMUL_N, windows: int = 5) -> float:
  """fp32 matmul GFLOP/s of this machine."""
  return _median_rate(matmul_runner(n), 3, windows) * 2 * n**3 / 1e9


def bench_loop(batch_size: int, num_steps: int) -> float:
  """Steps/s of the full training loop (logging and sample grids on; checkpoints and eval off)."""
  config = tutorial_config()
  config.train.batch_size = batch_size
  config.train.num_steps = num_steps
  config.checkpoint.enabled = False
  config.eval.every_steps = 0
  with tempfile.TemporaryDirectory() as workdir:
    return train.train_and_evaluate(config, workdir)['steps_per_s']


def _worker(flag: str, windows: int, env: dict[str, str]) -> dict:
  """Runs this script as `--<flag>` in a fresh process with `env`; its last line, a JSON object.

  XLA_FLAGS and malloc settings only take effect in a fresh process, hence the subprocesses.
  """
  cmd = [sys.executable, __file__, f'--{flag}', '--windows', str(windows)]
  proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
  return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_eigen_conv(windows: int) -> dict[int, float]:
  """Steps/s of the lax.conv step with XLA:CPU's YNNPACK convolutions off (Eigen's instead), per batch size."""
  flags = f'{os.environ.get("XLA_FLAGS", "")} {EIGEN_CONV_FLAG}'.strip()
  rates = _worker('eigen-conv-worker', windows, {**os.environ, 'XLA_FLAGS': flags})
  return {int(b): r for b, r in rates.items()}


def random_packed(folder: pathlib.Path, num: int, shape: tuple[int, int, int], seed: int = 0) -> pathlib.Path:
  """A packed dataset (ganjax.packed's format) of `num` uniform random images: data for a step's timing."""
  from ganjax import packed

  folder.mkdir(parents=True, exist_ok=True)
  images = np.random.default_rng(seed).integers(0, 256, (num, *shape), np.uint8)
  labels = np.zeros(num, np.int32)
  np.save(folder / packed.IMAGES, images)
  np.save(folder / packed.LABELS, labels)
  meta = {'count': num, 'shape': list(shape), 'label_names': [], 'sha256': packed.content_sha256(images, labels)}
  packed.write_meta(folder, meta)
  return folder


SNGAN_STEP_CALLS = 2  # steps per timed window: one SNGAN step (5 D updates, 1 G update) takes seconds here


def bench_sngan(windows: int) -> dict[str, float]:
  """experiments/images_sngan.py's step at 32x32, batch 64, on random data, with its PyTorch twin timed in
  alternating windows when torch is installed: in a subprocess with the XLA flags `ganjax.main` sets
  for a `resnet` run (`host.prefer_eigen_convolutions`), as users get it."""
  env = dict(os.environ)
  host.prefer_eigen_convolutions(load_experiment(_ROOT / 'experiments' / 'images_sngan.py').model, env)
  return _worker('sngan-worker', windows, env)


def _sngan_worker(windows: int, torch_gan) -> dict[str, float]:
  partner = None
  if torch_gan is not None:
    partner = torch_gan.warmed_runner(torch_gan.sngan_step(64), warm=2), SNGAN_STEP_CALLS
  with tempfile.TemporaryDirectory() as tmp:
    folder = random_packed(pathlib.Path(tmp) / 'random32', 4096, (32, 32, 3))

    def overrides(config):
      config.data.path, config.data.image_shape = str(folder), (32, 32, 3)

    r = bench_step(
      64, 'joint', windows, experiment='images_sngan', partner=partner, overrides=overrides, calls=SNGAN_STEP_CALLS
    )
  out = {'sngan32_steps_per_s_b64': r['steps_per_s'], 'sngan32_compile_s': r['compile_s']}
  out['sngan32_xla_flags'] = os.environ.get('XLA_FLAGS', '')
  if partner is not None:
    out['sngan32_torch_steps_per_s_b64'] = r['partner_steps_per_s']
    out['sngan32_speedup_vs_torch_b64'] = r['steps_per_s'] / r['partner_steps_per_s']
  return out


def bench_system_malloc(windows: int) -> dict[str, float]:
  """The default's batch-256 step under glibc's own malloc settings (no `ganjax.host`): steps/s, page faults."""
  return _worker('system-malloc-worker', windows, {k: v for k, v in os.environ.items() if not k.startswith('MALLOC_')})


def bench_devices(counts=(1, 2, 4), windows: int = 5) -> dict[int, float]:
  """Steps/s of the batch-64 step on 1, 2 and 4 forced CPU devices (one subprocess each)."""
  rates = {}
  for n in counts:
    env = {**os.environ, 'XLA_FLAGS': f'--xla_force_host_platform_device_count={n}'}
    rates[n] = _worker('devices-worker', windows, env)['steps_per_s']
  return rates


def bench_sweep(members: int, num_steps: int) -> dict[str, float]:
  """Wall time of K seeds of the default experiment: one sweep program (vmap, unroll) vs K runs in a row."""
  base = load_experiment(_ROOT / 'experiments' / 'mnist_gan.py')
  base.train.num_steps = num_steps
  base.checkpoint.enabled = False
  base.eval.every_steps = 0
  times = {}
  with tempfile.TemporaryDirectory() as workdir:
    for mode in ('vmap', 'unroll'):
      sweep = base.copy_and_resolve_references()
      sweep.sweep.field, sweep.sweep.choices, sweep.sweep.mode = 'seed', tuple(range(members)), mode
      t0 = time.perf_counter()
      train.train_and_evaluate(sweep, pathlib.Path(workdir) / mode)
      times[f'{mode}_s'] = time.perf_counter() - t0
    t0 = time.perf_counter()
    for seed in range(members):
      config = base.copy_and_resolve_references()
      config.seed = seed
      train.train_and_evaluate(config, pathlib.Path(workdir) / f'seed_{seed}')
    times['sequential_s'] = time.perf_counter() - t0
  return times


def bench_launch() -> float:
  """Seconds from `python -m ganjax.main` to the end of the default experiment's first step (a 1-step run)."""
  env = {k: v for k, v in os.environ.items() if not k.startswith('JAX_')}  # no persistent compile cache
  with tempfile.TemporaryDirectory() as workdir:
    args = ['--config=experiments/mnist_gan.py', f'--workdir={workdir}', '--config.train.num_steps=1']
    args += ['--config.checkpoint.enabled=False', '--config.eval.every_steps=0', '--config.train.sample_every_steps=0']
    t0 = time.perf_counter()
    subprocess.run([sys.executable, '-m', 'ganjax.main', *args], env=env, cwd=_ROOT, capture_output=True, check=True)
    return time.perf_counter() - t0


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--json', action='store_true', help='print one JSON object on the last line')
  parser.add_argument('--readme', action='store_true', help='write the tables into docs/performance.md')
  parser.add_argument('--windows', type=int, default=7, help='timed windows per measurement')
  parser.add_argument(
    '--from-json',
    metavar='FILE',
    help='write docs/performance.md from a saved run (a file holding its --json line); no timing',
  )
  parser.add_argument('--loop-steps', type=int, default=600, help='steps of the full-loop measurement')
  parser.add_argument('--sweep-steps', type=int, default=200, help='steps per member of the sweep measurement')
  parser.add_argument('--devices-worker', action='store_true', help=argparse.SUPPRESS)
  parser.add_argument('--eigen-conv-worker', action='store_true', help=argparse.SUPPRESS)
  parser.add_argument('--system-malloc-worker', action='store_true', help=argparse.SUPPRESS)
  parser.add_argument('--sngan-worker', action='store_true', help=argparse.SUPPRESS)
  parser.add_argument('--sngan-only', action='store_true', help='only the SNGAN 32x32 step and its twin')
  args = parser.parse_args()
  if args.system_malloc_worker:  # a subprocess of bench_system_malloc: glibc's defaults, as without ganjax.host
    r = bench_step(256, 'joint', args.windows, experiment='mnist_gan')
    print(json.dumps({k: r[k] for k in ('steps_per_s', 'page_faults_per_step')}))
    return
  if args.from_json:
    from readme_block import write

    text = pathlib.Path(args.from_json).read_text().strip().splitlines()[-1]
    write(START, END, readme_tables(json.loads(text)))
    return
  host.keep_freed_memory()  # as `ganjax.main` does, before JAX starts its threads
  if args.devices_worker:  # a subprocess of bench_devices: one number as JSON
    print(json.dumps({'steps_per_s': bench_step(64, 'separate', args.windows)['steps_per_s']}))
    return
  if args.eigen_conv_worker:  # a subprocess of bench_eigen_conv
    print(json.dumps({b: bench_step(b, 'separate', args.windows, conv_impl='xla')['steps_per_s'] for b in (64, 256)}))
    return

  try:
    import torch_gan  # benchmarks/ is on sys.path when this file runs as a script
  except ImportError:
    torch_gan = None
    print("torch is not installed: skipping the PyTorch references (pip install -e '.[bench]')")

  def twin(make_step, batch: int):
    """The PyTorch twin's warmed-up runner and calls per window, timed alternately with ganjax's step."""
    if torch_gan is None:
      return None
    return torch_gan.warmed_runner(make_step(batch)), torch_gan.calls_per_window(batch)

  if args.sngan_worker:  # a subprocess of bench_sngan: under the XLA flags of a resnet run
    print(json.dumps(_sngan_worker(args.windows, torch_gan)))
    return
  if args.sngan_only:
    r = bench_sngan(args.windows)
    print(_sngan_line(r))
    if args.readme:
      from readme_block import DOCS, write

      write(SNGAN_START, SNGAN_END, sngan_text(r, args.windows), DOCS / 'performance.md')
    if args.json:
      print(json.dumps(r))
    return

  t_start = time.perf_counter()
  result = {'device': str(jax.devices()[0]), 'jax': jax.__version__, 'code': code_now()}
  result['matmul_gflops'] = bench_matmul()
  matmul = matmul_runner()  # timed alternately with each tutorial step
  for batch in (64, 256):
    for d_update in ('separate', 'joint'):
      partner = twin(torch_gan.tutorial_step, batch) if d_update == 'separate' and torch_gan else None
      r = bench_step(batch, d_update, args.windows, partner=partner, roofline=matmul)
      suffix = f'b{batch}' + ('' if d_update == 'separate' else '_joint')
      result[f'ganjax_steps_per_s_{suffix}'] = r['steps_per_s']
      result[f'compile_s_{suffix}'] = r['compile_s']
      result[f'gflop_per_step_{suffix}'] = r['gflop_per_step']
      result[f'matmul_gflops_{suffix}'] = r['matmul_gflops']  # timed alternately with this step
      result[f'roofline_fraction_{suffix}'] = r['gflops'] / r['matmul_gflops']
      if partner:
        result[f'torch_steps_per_s_b{batch}'] = r['partner_steps_per_s']
        result[f'speedup_vs_torch_b{batch}'] = r['steps_per_s'] / r['partner_steps_per_s']
  for batch in (64, 256):  # the same step with lax.conv in D instead of the default PatchConv
    r = bench_step(batch, 'separate', args.windows, conv_impl='xla')
    result[f'ganjax_steps_per_s_b{batch}_xla_conv'] = r['steps_per_s']
  for batch, rate in bench_eigen_conv(args.windows).items():
    result[f'ganjax_steps_per_s_b{batch}_xla_conv_eigen'] = rate
  for impl in ('patches', 'xla'):  # DCGAN (transposed convolutions in G, 5x5 convolutions in D), batch 64
    r = bench_step(64, 'separate', 3, conv_impl=impl, experiment='mnist_dcgan')
    result[f'dcgan_steps_per_s_b64_{impl}'] = r['steps_per_s']
  for batch in (64, 256):  # the default experiment (experiments/mnist_gan.py): its own joint D update
    partner = twin(torch_gan.default_step, batch) if torch_gan else None
    r = bench_step(batch, 'joint', args.windows, experiment='mnist_gan', partner=partner)
    result[f'default_steps_per_s_b{batch}'] = r['steps_per_s']
    result[f'default_page_faults_per_step_b{batch}'] = r['page_faults_per_step']
    if partner:
      result[f'default_torch_steps_per_s_b{batch}'] = r['partner_steps_per_s']
      result[f'default_speedup_vs_torch_b{batch}'] = r['steps_per_s'] / r['partner_steps_per_s']
  result.update(bench_sngan(min(args.windows, 5)))
  system = bench_system_malloc(args.windows)
  result['default_steps_per_s_b256_system_malloc'] = system['steps_per_s']
  result['default_page_faults_per_step_b256_system_malloc'] = system['page_faults_per_step']
  result['loop_steps_per_s_b64'] = bench_loop(64, args.loop_steps)
  result['loop_vs_step_b64'] = result['loop_steps_per_s_b64'] / result['ganjax_steps_per_s_b64']
  result['peak_rss_mib'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  result['launch_to_first_step_s'] = bench_launch()
  for n, rate in bench_devices().items():
    result[f'steps_per_s_b64_{n}dev'] = rate
    result[f'images_per_s_b64_{n}dev'] = 64 * rate
  sweep = bench_sweep(4, args.sweep_steps)
  for key, seconds in sweep.items():
    result[f'sweep4_{key}'] = seconds
  result['sweep_steps'] = args.sweep_steps
  result['wall_s'] = time.perf_counter() - t_start

  print(f'device {result["device"]}, jax {result["jax"]}; fp32 matmul {result["matmul_gflops"]:.1f} GFLOP/s')
  print(f'{"step":<18}{"steps/s":>10}{"compile s":>11}{"GFLOP/step":>12}{"of roofline":>13}')
  for batch in (64, 256):
    for d_update in ('separate', 'joint'):
      s = f'b{batch}' + ('' if d_update == 'separate' else '_joint')
      print(
        f'{f"{d_update}, batch {batch}":<18}{result[f"ganjax_steps_per_s_{s}"]:>10.2f}'
        f'{result[f"compile_s_{s}"]:>11.2f}{result[f"gflop_per_step_{s}"]:>12.2f}'
        f'{100 * result[f"roofline_fraction_{s}"]:>12.1f}%'
      )
  for batch in (64, 256):
    print(
      f'separate, batch {batch}, lax.conv in D: {result[f"ganjax_steps_per_s_b{batch}_xla_conv"]:.2f} steps/s; '
      f'with Eigen convolutions ({EIGEN_CONV_FLAG}): {result[f"ganjax_steps_per_s_b{batch}_xla_conv_eigen"]:.2f}'
    )
  print(
    f'mnist_dcgan, batch 64: {result["dcgan_steps_per_s_b64_patches"]:.2f} steps/s (PatchConv, PatchConvTranspose), '
    f'{result["dcgan_steps_per_s_b64_xla"]:.2f} (lax.conv, lax.conv_transpose)'
  )
  for batch in (64, 256):
    if f'torch_steps_per_s_b{batch}' in result:
      print(
        f'{f"pytorch, batch {batch}":<18}{result[f"torch_steps_per_s_b{batch}"]:>10.2f}'
        f'   ganjax/pytorch: {result[f"speedup_vs_torch_b{batch}"]:.2f}x'
      )
  for batch in (64, 256):
    line = f'default (mnist_gan.py), batch {batch}: {result[f"default_steps_per_s_b{batch}"]:.2f} steps/s'
    if f'default_torch_steps_per_s_b{batch}' in result:
      line += (
        f'; its PyTorch twin {result[f"default_torch_steps_per_s_b{batch}"]:.2f}, '
        f'ganjax/pytorch: {result[f"default_speedup_vs_torch_b{batch}"]:.2f}x'
      )
    print(line)
  print(_sngan_line(result))
  print(
    f'default, batch 256, glibc malloc defaults (without ganjax.host): '
    f'{result["default_steps_per_s_b256_system_malloc"]:.2f} steps/s, '
    f'{result["default_page_faults_per_step_b256_system_malloc"]:.0f} page faults per step; with it: '
    f'{result["default_steps_per_s_b256"]:.2f} steps/s, {result["default_page_faults_per_step_b256"]:.0f}'
  )
  print(
    f'full loop, batch 64: {result["loop_steps_per_s_b64"]:.2f} steps/s '
    f'({100 * result["loop_vs_step_b64"]:.0f}% of the bare step); peak RSS {result["peak_rss_mib"]:.0f} MiB'
  )
  print(f'launch to first step (imports + compile, default experiment): {result["launch_to_first_step_s"]:.1f} s')
  print(
    'forced CPU devices, global batch 64: '
    + ', '.join(
      f'{n}: {result[f"steps_per_s_b64_{n}dev"]:.2f} steps/s ({result[f"images_per_s_b64_{n}dev"]:.0f} images/s)'
      for n in (1, 2, 4)
    )
  )
  print(
    f'4 seeds x {args.sweep_steps} steps of the default: one sweep program {result["sweep4_vmap_s"]:.1f} s '
    f'(sweep.mode=vmap), {result["sweep4_unroll_s"]:.1f} s (unroll); 4 runs one after another '
    f'{result["sweep4_sequential_s"]:.1f} s'
  )
  if args.readme:
    from readme_block import DOCS, write

    write(START, END, readme_tables(result), DOCS / 'performance.md')
  if args.json:
    print(json.dumps(result))


def _sngan_line(r: dict) -> str:
  line = f'images_sngan 32x32, batch 64: {r["sngan32_steps_per_s_b64"]:.3f} steps/s'
  line += f' (XLA_FLAGS {r["sngan32_xla_flags"]!r})'
  if 'sngan32_torch_steps_per_s_b64' in r:
    line += (
      f'; its PyTorch twin {r["sngan32_torch_steps_per_s_b64"]:.3f}, '
      f'ganjax/pytorch: {r["sngan32_speedup_vs_torch_b64"]:.2f}x'
    )
  return line


START, END = '<!-- perf:start -->', '<!-- perf:end -->'
SNGAN_START, SNGAN_END = '<!-- sngan:start -->', '<!-- sngan:end -->'


def sngan_text(r: dict, windows: int) -> str:
  """The SNGAN block of docs/performance.md (`--sngan-only --readme`)."""
  import datetime

  from quality import machine

  lines = [
    f'Written by `python benchmarks/step_speed.py --sngan-only --readme` on {datetime.date.today()}: '
    f'{code_now()}; {machine()}. Median of {windows} windows of {SNGAN_STEP_CALLS} steps each, ganjax and '
    'its twin alternating; XLA_FLAGS as `ganjax.main` sets them for a `resnet` run: '
    f'`{r["sngan32_xla_flags"] or "(none)"}`.',
    '',
    '| step (5 D updates + 1 G update, batch 64, 32x32) | steps/s | vs PyTorch twin |',
    '| --- | ---: | ---: |',
    f'| `images_sngan.py` in ganjax | {r["sngan32_steps_per_s_b64"]:.4f} | '
    + (f'{r["sngan32_speedup_vs_torch_b64"]:.2f}x |' if 'sngan32_speedup_vs_torch_b64' in r else 'not run |'),
  ]
  if 'sngan32_torch_steps_per_s_b64' in r:
    lines.append(f'| its PyTorch twin (`benchmarks/torch_gan.py`) | {r["sngan32_torch_steps_per_s_b64"]:.4f} | 1 |')
    met = 'met' if r['sngan32_speedup_vs_torch_b64'] >= 1.25 else 'not met'
    lines += ['', f'Target of the images issue, >= 1.25x the twin: {r["sngan32_speedup_vs_torch_b64"]:.2f}x, {met}.']
  return '\n'.join(lines)


def readme_tables(r: dict) -> str:
  """The Performance tables and figures (docs/performance.md), from one run's results."""
  import datetime

  from quality import machine

  torch_version = ''
  if 'torch_steps_per_s_b64' in r:
    import torch

    torch_version = f', torch {torch.__version__}'

  def x(key: str) -> str:
    return f'{r[key]:.2f}x' if key in r else 'not run'

  lines = [
    f'Written by `python benchmarks/step_speed.py --readme` on {datetime.date.today()}: timing '
    f'{r.get("code", "code not recorded")}; {machine()}{torch_version}; '
    f'one run, {r["wall_s"]:.0f} s. Steps/s are medians of timed windows after warm-up; fp32 matmul roofline '
    f'{r["matmul_gflops"]:.1f} GFLOP/s at the start'
    + (
      f', {min(_step_rooflines(r)):.1f}-{max(_step_rooflines(r)):.1f} in the windows that alternate with the '
      "tutorial's steps (each row's fraction is of its own)"
      if _step_rooflines(r)
      else ''
    )
    + '.',
    '',
    '| step | steps/s | compile s | GFLOP/step | of roofline | vs PyTorch twin |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
  ]
  for batch in (64, 256):
    torch_rate = r.get(f'default_torch_steps_per_s_b{batch}')
    lines.append(
      f'| default (`mnist_gan.py`), batch {batch} | {r[f"default_steps_per_s_b{batch}"]:.2f} | | | | '
      f'{x(f"default_speedup_vs_torch_b{batch}")} |'
    )
    if torch_rate:
      lines.append(f'| its PyTorch twin, batch {batch} | {torch_rate:.2f} | | | | 1 |')
  lines.append(
    "| default, batch 256, glibc's own malloc settings (without `ganjax.host`) | "
    f'{r["default_steps_per_s_b256_system_malloc"]:.2f} | | | | |'
  )
  for batch in (64, 256):
    for mode, suffix in (('separate', ''), ('joint', '_joint')):
      key = f'b{batch}{suffix}'
      vs = x(f'speedup_vs_torch_b{batch}') if not suffix else ''
      lines.append(
        f'| tutorial, {mode} D updates, batch {batch} | {r[f"ganjax_steps_per_s_{key}"]:.2f} | '
        f'{r[f"compile_s_{key}"]:.2f} | {r[f"gflop_per_step_{key}"]:.2f} | '
        f'{100 * r[f"roofline_fraction_{key}"]:.1f}% | {vs} |'
      )
    lines.append(
      f'| tutorial, batch {batch}, lax.conv in D | {r[f"ganjax_steps_per_s_b{batch}_xla_conv"]:.2f} | | | | |'
    )
    lines.append(
      f"| ... and Eigen's convolutions instead of YNNPACK's | {r[f'ganjax_steps_per_s_b{batch}_xla_conv_eigen']:.2f} "
      '| | | | |'
    )
    if f'torch_steps_per_s_b{batch}' in r:
      lines.append(f'| tutorial in PyTorch, batch {batch} | {r[f"torch_steps_per_s_b{batch}"]:.2f} | | | | 1 |')
  if 'sngan32_steps_per_s_b64' in r:
    lines.append(
      f'| `images_sngan` 32x32 (5 D updates, 1 G update), batch 64 | {r["sngan32_steps_per_s_b64"]:.3f} | '
      f'{r["sngan32_compile_s"]:.2f} | | | {x("sngan32_speedup_vs_torch_b64")} |'
    )
    if 'sngan32_torch_steps_per_s_b64' in r:
      lines.append(f'| its PyTorch twin, batch 64 | {r["sngan32_torch_steps_per_s_b64"]:.3f} | | | | 1 |')
  lines += [
    f'| `mnist_dcgan`, batch 64, patch convolutions | {r["dcgan_steps_per_s_b64_patches"]:.2f} | | | | |',
    f'| `mnist_dcgan`, batch 64, lax.conv and lax.conv_transpose | {r["dcgan_steps_per_s_b64_xla"]:.2f} | | | | |',
    '',
    f'Page faults per step of the default at batch 256: {r["default_page_faults_per_step_b256"]:.0f} with '
    f"`ganjax.host`'s malloc settings, {r['default_page_faults_per_step_b256_system_malloc']:.0f} with glibc's own. "
    "Each ganjax step is timed in windows that alternate with its PyTorch twin's, so a drift of the machine "
    'falls on both. '
    f'The full loop (`train_and_evaluate` on the tutorial with logging and sample grids at their default '
    f'intervals, checkpoints and evaluation off): {r["loop_steps_per_s_b64"]:.2f} steps/s at batch 64, '
    f'{100 * r["loop_vs_step_b64"]:.0f}% of the bare step. Peak RSS {r["peak_rss_mib"]:.0f} MiB. Launch to the end '
    f"of the default experiment's first step (a fresh `python -m ganjax.main`, imports and compilation): "
    f"{r['launch_to_first_step_s']:.1f} s. The tutorial's batch-64 step on forced CPU devices (the same global "
    'batch split across them, on the same cores): '
    + ', '.join(f'{r[f"steps_per_s_b64_{n}dev"]:.2f} steps/s on {n}' for n in (1, 2, 4))
    + f'. Four seeds of the default for {r.get("sweep_steps", "the same")} steps each: one sweep program '
    f'{r["sweep4_vmap_s"]:.1f} s (vmap), {r["sweep4_unroll_s"]:.1f} s (unroll); four runs in a row '
    f'{r["sweep4_sequential_s"]:.1f} s.',
    '',
    'Targets of the performance issue, in this run: ' + '; '.join(_targets(r)) + '.',
  ]
  return '\n'.join(lines)


def _step_rooflines(r: dict) -> list[float]:
  """The matmul rates timed alternately with the tutorial's steps (absent from runs before they were)."""
  return [v for k, v in r.items() if k.startswith('matmul_gflops_b')]


def _targets(r: dict) -> list[str]:
  """Each speed target of the performance issue with this run's figure and whether it is met."""
  checks = [
    ('the default >= 1.25x its PyTorch twin at batch 64', 'default_speedup_vs_torch_b64', 1.25, 'x'),
    ('... at batch 256', 'default_speedup_vs_torch_b256', 1.25, 'x'),
    ('the tutorial >= 1.25x PyTorch at batch 64', 'speedup_vs_torch_b64', 1.25, 'x'),
    ('>= 1.0x at batch 256', 'speedup_vs_torch_b256', 1.0, 'x'),
    ('>= 60% of the matmul roofline at batch 256', 'roofline_fraction_b256', 0.60, '%'),
    ('the SNGAN 32x32 step >= 1.25x its PyTorch twin at batch 64', 'sngan32_speedup_vs_torch_b64', 1.25, 'x'),
  ]
  out = []
  for text, key, target, unit in checks:
    if key not in r:
      out.append(f'{text}: not run')
      continue
    figure = f'{100 * r[key]:.1f}%' if unit == '%' else f'{r[key]:.2f}x'
    out.append(f'{text}: {figure}, {"met" if r[key] >= target else "not met"}')
  return out


if __name__ == '__main__':
  sys.exit(main())
