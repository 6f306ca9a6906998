"""The training loop: `train_and_evaluate(config, workdir)`.

The loop dispatches one jitted step per iteration and never waits on it:
metrics of a logged step are fetched after the next step has been
dispatched, and everything else (sample grids, evaluation, checkpoints) runs
at its own interval.
"""

import contextlib
import json
import pathlib
import signal
import time
from typing import Any

import jax
import ml_collections
import numpy as np
import tqdm

from ganjax import checkpoint, evaluate, input_pipeline, toy, train_step, writers
from ganjax import config as config_lib
from ganjax.errors import DivergenceError, WorkdirError

# Independent random streams, all derived from config.seed.
_INIT, _DATA, _TRAIN, _SAMPLES, _EVAL = range(5)


def streams(seed: int) -> dict[str, jax.Array]:
  """The run's named PRNG keys; the train step's key is `fold_in(keys['train'], step)`."""
  root = jax.random.key(seed)
  names = {'init': _INIT, 'data': _DATA, 'train': _TRAIN, 'samples': _SAMPLES, 'eval': _EVAL}
  return {name: jax.random.fold_in(root, i) for name, i in names.items()}


def prepare_workdir(workdir: str | pathlib.Path) -> pathlib.Path:
  """Creates the workdir and checks it can be written; raises WorkdirError otherwise."""
  path = pathlib.Path(workdir)
  try:
    path.mkdir(parents=True, exist_ok=True)
    probe = path / '.write_test'
    probe.write_text('ok')
    probe.unlink()
  except OSError as e:
    raise WorkdirError(f'workdir {path} is not writable: {e.strerror or e}') from e
  return path


def tutorial_line(step: int, num_steps: int, m: dict[str, float]) -> str:
  """The tutorial's log line."""
  return f'{step}/{num_steps} [D loss: {m["d_loss"]:.6f}, acc.: {100 * m["d_acc"]:.2f}%] [G loss: {m["g_loss"]:.6f}]'


def _check_finite(step: int, metrics: dict[str, float]) -> None:
  for name, value in metrics.items():
    if not np.isfinite(value):
      raise DivergenceError(f'non-finite {name} ({value}) at step {step}; training stopped')


def _make_sampler_fn():
  return jax.jit(lambda g_state, z: train_step.generate(g_state, z, train=False)[0])


class _StopRequest:
  """Turns SIGTERM/SIGINT into a flag the loop checks after each step (then it saves and exits)."""

  def __init__(self):
    self.signum = 0
    self._previous = {}

  def __enter__(self):
    for sig in (signal.SIGTERM, signal.SIGINT):
      # Outside the main thread (some notebook runners) signals cannot be caught.
      with contextlib.suppress(ValueError):
        self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def _handle(self, signum, frame):
    if self.signum:  # a second signal: stop at once
      raise KeyboardInterrupt
    self.signum = signum

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)


def _resume(ckpt: 'checkpoint.Checkpointer | None', config: ml_collections.ConfigDict) -> int:
  """The step to start from: the latest checkpoint, or 0 for a fresh start."""
  if ckpt is None:
    return 0
  latest = ckpt.latest_step()
  if latest is None:
    return 0
  if not config.checkpoint.resume:
    moved = ckpt.set_aside()
    print(f'checkpoint.resume=False: starting fresh; earlier checkpoints moved to {moved}')
    return 0
  return latest


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> dict[str, Any]:
  """Trains the GAN described by `config`, writing everything to `workdir`.

  Returns a summary: final step, metrics of the last logged step, wall time,
  steps/s and the final states.
  """
  config_lib.validate(config)
  workdir = prepare_workdir(workdir)
  (workdir / 'config.json').write_text(config.to_json_best_effort(indent=2) + '\n')
  t_launch = time.perf_counter()

  data = input_pipeline.load(config)
  keys = streams(config.seed)
  g_state, d_state = train_step.create_states(config, keys['init'])
  sampler = input_pipeline.DeviceSampler(data.images, config.train.batch_size, keys['data'])
  step_fn = train_step.make_train_step(config)
  generate_fn = _make_sampler_fn()
  t = config.train
  sample_z = jax.random.normal(keys['samples'], (t.num_sample_images, config.model.latent_dim))
  eval_z = jax.random.normal(keys['eval'], (config.eval.num_samples, config.model.latent_dim))
  # Classifier metrics need MNIST-shaped images; other datasets get pixel_std only.
  mnist_like = tuple(config.data.image_shape) == evaluate.MNIST_SHAPE and config.data.source != 'toy'
  is_toy = config.data.source == 'toy'
  evaluator = evaluate.Evaluator() if config.eval.every_steps and mnist_like else None

  def log(step: int, metrics: dict[str, Any], bar: tqdm.tqdm) -> dict[str, float]:
    host = {k: float(v) for k, v in jax.device_get(metrics).items()}
    _check_finite(step, host)
    writer.scalars(step, host)
    bar.write(tutorial_line(step, t.num_steps, host))
    return host

  def side_tasks(step: int) -> None:
    if t.sample_every_steps and (step % t.sample_every_steps == 0 or step == t.num_steps):
      if is_toy:  # points are drawn as a scatter plot over the modes, from the larger eval batch
        path = workdir / 'samples' / f'step_{step:06d}.png'
        toy.scatter_png(np.asarray(generate_fn(g_state, eval_z)), config.data.toy_name, path, f'step {step}')
      else:
        writer.samples(step, np.asarray(generate_fn(g_state, sample_z)))
    if config.eval.every_steps and (step % config.eval.every_steps == 0 or step == t.num_steps):
      samples = np.asarray(generate_fn(g_state, eval_z))
      if is_toy:
        stats = toy.mode_stats(samples, config.data.toy_name)
      else:
        stats = evaluator(samples) if evaluator else {'pixel_std': evaluate.pixel_std(samples)}
      writer.scalars(step, {f'eval/{k}': v for k, v in stats.items()})

  ckpt = checkpoint.Checkpointer(workdir, config) if config.checkpoint.enabled else None
  start_step = _resume(ckpt, config)
  if start_step:
    g_state, d_state, _ = ckpt.restore(start_step, g_state, d_state)
    print(f'resuming from the checkpoint at step {start_step} in {ckpt.directory}')
  elif config.checkpoint.init_from:
    g_state, d_state, source = checkpoint.warm_start(config.checkpoint.init_from, g_state, d_state)
    print(f'warm start: params of both networks from {source}; optimizer state and step start fresh')
  writer = writers.RunWriter(workdir, start_step)

  def save(step: int) -> None:
    epoch, index = sampler.position(step)
    rng = np.asarray(jax.random.key_data(keys['train'])).tolist()
    ckpt.save(step, g_state, d_state, {'epoch': epoch, 'batch_index': index, 'train_rng': rng})

  stop = _StopRequest()
  pending = None  # (step, device metrics) of a logged step not yet fetched
  last = {}
  t_first = None
  step = start_step
  bar = tqdm.tqdm(total=t.num_steps, initial=start_step, unit='step', dynamic_ncols=True, mininterval=1.0)
  try:
    with stop:
      for i in range(start_step, t.num_steps):
        step = i + 1  # steps completed after this iteration
        g_state, d_state, metrics = step_fn(g_state, d_state, sampler.batch(i), jax.random.fold_in(keys['train'], i))
        if pending is not None:
          last = log(*pending, bar)
          pending = None
        if t_first is None:
          jax.block_until_ready(metrics)
          t_first = time.perf_counter()
        if step % t.log_every_steps == 0 or step == t.num_steps or stop.signum:
          pending = (step, metrics)
        side_tasks(step)
        bar.update(1)
        if stop.signum:
          break
        if ckpt and config.checkpoint.every_steps and step % config.checkpoint.every_steps == 0 and step < t.num_steps:
          if pending is not None:
            last = log(*pending, bar)
            pending = None
          # Never checkpoint a diverged state (the metrics include both param norms).
          _check_finite(step, {k: float(v) for k, v in jax.device_get(metrics).items()})
          save(step)
      if pending is not None:
        last = log(*pending, bar)
      if ckpt and step > start_step:
        save(step)
  finally:
    bar.close()
    writer.close()
    if ckpt:
      ckpt.close()  # waits for the last asynchronous save
  if stop.signum:
    where = f'checkpoint saved at step {step}' if ckpt else 'checkpoints are off, nothing saved'
    print(f'stopped by {signal.Signals(stop.signum).name} after step {step}; {where}. Run the same command to resume.')
    return {'step': step, 'interrupted': True, 'metrics': last, 'g_state': g_state, 'd_state': d_state}

  t_end = time.perf_counter()
  steps_done = t.num_steps - start_step
  if not steps_done:
    print(f'nothing to do: the checkpoint in {workdir} is already at step {t.num_steps}')
    return {'step': t.num_steps, 'metrics': last, 'g_state': g_state, 'd_state': d_state}
  # Steps/s counts from the end of the first step, so compile time is reported apart.
  rate = (steps_done - 1) / (t_end - t_first) if steps_done > 1 else float('nan')
  writers.plot_metrics(workdir)
  summary = {
    'step': t.num_steps,
    'wall_s': t_end - t_launch,
    'first_step_s': t_first - t_launch,
    'steps_per_s': rate,
    'metrics': last,
  }
  (workdir / 'summary.json').write_text(json.dumps(summary, indent=2) + '\n')
  print(
    f'done: {steps_done} steps in {summary["wall_s"]:.1f} s, {rate:.2f} steps/s after the first step '
    f'(setup and compilation before it: {summary["first_step_s"]:.1f} s); workdir {workdir}'
  )
  return {**summary, 'g_state': g_state, 'd_state': d_state}
