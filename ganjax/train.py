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
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm
from jax.experimental import multihost_utils

from ganjax import checkpoint, evaluate, input_pipeline, toy, train_step, writers
from ganjax import config as config_lib
from ganjax.errors import ConfigError, DivergenceError, WorkdirError

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


def say(message: str) -> None:
  """Prints on process 0 only: with several processes, the others print errors only."""
  if jax.process_index() == 0:
    print(message)


def tutorial_line(step: int, num_steps: int, m: dict[str, float]) -> str:
  """The tutorial's log line."""
  return f'{step}/{num_steps} [D loss: {m["d_loss"]:.6f}, acc.: {100 * m["d_acc"]:.2f}%] [G loss: {m["g_loss"]:.6f}]'


def _check_finite(step: int, metrics: dict[str, float], prefix: str = '') -> None:
  for name, value in metrics.items():
    if not np.isfinite(value):
      raise DivergenceError(f'{prefix}non-finite {name} ({value}) at step {step}; training stopped')


def _make_sampler_fn():
  return jax.jit(lambda g_state, z, labels: train_step.generate(g_state, z, train=False, labels=labels)[0])


GRID_PER_CLASS = 10  # a conditional run's grids: one row per class, this many samples each


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
    say(f'checkpoint.resume=False: starting fresh; earlier checkpoints moved to {moved}')
    return 0
  return latest


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> dict[str, Any]:
  """Trains the GAN described by `config`, writing everything to `workdir`.

  The step runs data-parallel over all devices (`config.train.batch_size` is
  the global batch). With `config.sweep`, K members train side by side in one
  compiled program; member k writes its logs and samples to
  `workdir/member_k`, and all share one checkpoint (stacked states).

  Returns a summary: final step, metrics of the last logged step, wall time,
  steps/s and the final states (stacked for a sweep).
  """
  config_lib.validate(config)
  num_devices = jax.device_count()
  if config.train.batch_size % num_devices:
    raise ConfigError(
      f'train.batch_size={config.train.batch_size} is the global batch and must divide by the '
      f'{num_devices} devices in use ({jax.local_device_count()} local)'
    )
  if config.sweep.field and config.checkpoint.init_from:
    raise ConfigError('checkpoint.init_from (warm start) cannot be combined with a sweep')
  # On several hosts, process 0 creates the workdir and writes logs, samples and summaries; the others
  # wait for it here; every process takes part in checkpoints.
  primary = jax.process_index() == 0
  workdir = prepare_workdir(workdir) if primary else pathlib.Path(workdir)
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices('ganjax: workdir ready')
  if primary:
    (workdir / 'config.json').write_text(config.to_json_best_effort(indent=2) + '\n')
  t_launch = time.perf_counter()

  member_configs = config_lib.members(config)
  sweep = bool(config.sweep.field)
  ids = list(range(len(member_configs))) if sweep else [None]
  run_dirs = [workdir / f'member_{k}' for k in ids] if sweep else [workdir]
  for run_dir, member in zip(run_dirs, member_configs, strict=True):
    if primary and sweep:
      run_dir.mkdir(exist_ok=True)
      (run_dir / 'config.json').write_text(member.to_json_best_effort(indent=2) + '\n')

  data = input_pipeline.load(config)
  member_keys = [streams(m.seed) for m in member_configs]
  keys = train_step.stack(member_keys) if sweep else member_keys[0]
  states = [train_step.create_states(m, k['init']) for m, k in zip(member_configs, member_keys, strict=True)]
  g_state, d_state = train_step.stack(states) if sweep else states[0]
  real_label = (jnp.array([m.loss.real_label for m in member_configs]),) if sweep else ()  # else bound in the step
  classes = config.model.num_classes
  if classes and (data.labels is None or data.labels.min() < 0 or data.labels.max() >= classes):
    raise ConfigError(f'model.num_classes={classes} needs labels in [0, {classes}) in the data ({data.name})')
  sampler = input_pipeline.DeviceSampler(
    data.images, config.train.batch_size, keys['data'], config.train.n_critic, data.labels if classes else None
  )
  step_fn = train_step.make_train_step(config, members=sweep)
  fold_in = jax.jit(jax.vmap(jax.random.fold_in, in_axes=(0, None))) if sweep else jax.random.fold_in
  generate_fn = _make_sampler_fn()
  t = config.train
  latent = config.model.latent_dim
  # Each member draws its fixed sample and eval latents from its own seed, as a plain run would.
  # A conditional run draws its grid class by class (one row each) and evaluates balanced classes.
  num_grid = classes * GRID_PER_CLASS if classes else t.num_sample_images
  sample_z = [jax.random.normal(k['samples'], (num_grid, latent)) for k in member_keys]
  eval_z = [jax.random.normal(k['eval'], (config.eval.num_samples, latent)) for k in member_keys]
  grid_labels = jnp.repeat(jnp.arange(classes), GRID_PER_CLASS) if classes else None
  eval_labels = jnp.arange(config.eval.num_samples) % classes if classes else None
  # Classifier metrics need MNIST-shaped images; other datasets get pixel_std only.
  mnist_like = evaluate.is_mnist(config)
  is_toy = config.data.source == 'toy'
  # The copy check compares samples with the very images G trains on.
  evaluator = (
    evaluate.Evaluator(train_images=evaluate.to_unit(data.images)) if config.eval.every_steps and mnist_like else None
  )

  def prefix(k: int | None) -> str:
    return '' if k is None else f'[member {k}: {config.sweep.field}={config.sweep.choices[k]}] '

  def log(step: int, metrics: dict[str, Any], bar: tqdm.tqdm) -> list[dict[str, float]]:
    fetched = jax.device_get(train_step.unreplicate(metrics))  # all devices hold the same values after pmean
    out = []
    for j, k in enumerate(ids):
      host = {name: float(v if k is None else v[k]) for name, v in fetched.items()}
      _check_finite(step, host, prefix(k))
      writer_list[j].scalars(step, host)
      if primary:
        bar.write(prefix(k) + tutorial_line(step, t.num_steps, host))
      out.append(host)
    return out

  def side_tasks(step: int, g_rep: train_step.GState) -> None:
    do_samples = t.sample_every_steps and (step % t.sample_every_steps == 0 or step == t.num_steps)
    do_eval = config.eval.every_steps and (step % config.eval.every_steps == 0 or step == t.num_steps)
    if not (do_samples or do_eval) or not primary:
      return
    g_state = train_step.unreplicate(g_rep)
    for j, k in enumerate(ids):
      g_member = train_step.pick_member(g_state, k)
      # Evaluation and the toy scatter plot share one batch of samples from the eval latents.
      samples = np.asarray(generate_fn(g_member, eval_z[j], eval_labels)) if do_eval or is_toy else None
      if do_samples:
        if is_toy:  # points are drawn as a scatter plot over the modes, from the larger eval batch
          path = run_dirs[j] / 'samples' / f'step_{step:06d}.png'
          toy.scatter_png(samples, config.data.toy_name, path, f'{prefix(k)}step {step}')
        else:
          images = np.asarray(generate_fn(g_member, sample_z[j], grid_labels))
          writer_list[j].samples(step, images, cols=GRID_PER_CLASS if classes else None)
      if do_eval:
        if is_toy:
          stats = toy.mode_stats(samples, config.data.toy_name)
        else:
          stats = evaluator(samples) if evaluator else {'pixel_std': evaluate.pixel_std(samples)}
        writer_list[j].scalars(step, {f'eval/{name}': v for name, v in stats.items()})

  ckpt = checkpoint.Checkpointer(workdir, config) if config.checkpoint.enabled else None
  start_step = _resume(ckpt, config)
  if start_step:
    g_state, d_state, _ = ckpt.restore(start_step, g_state, d_state)
    say(f'resuming from the checkpoint at step {start_step} in {ckpt.directory}')
  elif config.checkpoint.init_from:
    g_state, d_state, source = checkpoint.warm_start(config.checkpoint.init_from, g_state, d_state)
    say(f'warm start: params of both networks from {source}; optimizer state and step start fresh')
  writer_list = [writers.RunWriter(run_dir, start_step) if primary else writers.NullWriter() for run_dir in run_dirs]
  # One copy of both states per local device; the step keeps them identical.
  g_rep, d_rep = train_step.replicate((g_state, d_state))
  del g_state, d_state  # donated to the first step; only the replicas live on

  def save(step: int, g_rep, d_rep) -> None:
    epoch, index = sampler.position(step)
    rng = np.asarray(jax.random.key_data(keys['train'])).tolist()
    g_state, d_state = train_step.unreplicate((g_rep, d_rep))
    ckpt.save(step, g_state, d_state, {'epoch': epoch, 'batch_index': index, 'train_rng': rng})

  stop = _StopRequest()
  pending = None  # (step, device metrics) of a logged step not yet fetched
  last = []
  t_first = None
  step = start_step
  # On stdout with the log lines: stderr carries errors only (one line each).
  bar = tqdm.tqdm(
    total=t.num_steps,
    initial=start_step,
    unit='step',
    dynamic_ncols=True,
    mininterval=1.0,
    disable=not primary,
    file=sys.stdout,
  )
  try:
    with stop:
      for i in range(start_step, t.num_steps):
        step = i + 1  # steps completed after this iteration
        g_rep, d_rep, metrics = step_fn(g_rep, d_rep, sampler.batch(i), fold_in(keys['train'], i), *real_label)
        if pending is not None:
          last = log(*pending, bar)
          pending = None
        if t_first is None:
          jax.block_until_ready(metrics)
          t_first = time.perf_counter()
        if step % t.log_every_steps == 0 or step == t.num_steps or stop.signum:
          pending = (step, metrics)
        side_tasks(step, g_rep)
        bar.update(1)
        if stop.signum:
          break
        if ckpt and config.checkpoint.every_steps and step % config.checkpoint.every_steps == 0 and step < t.num_steps:
          if pending is not None:
            last = log(*pending, bar)
            pending = None
          # Never checkpoint a diverged state (the metrics include both param norms).
          fetched = jax.device_get(train_step.unreplicate(metrics))
          for k in ids:
            _check_finite(step, {n: float(v if k is None else v[k]) for n, v in fetched.items()}, prefix(k))
          save(step, g_rep, d_rep)
      if pending is not None:
        last = log(*pending, bar)
      if ckpt and step > start_step:
        save(step, g_rep, d_rep)
  finally:
    bar.close()
    for writer in writer_list:
      writer.close()
    if ckpt:
      ckpt.close()  # waits for the last asynchronous save
  g_state, d_state = train_step.unreplicate((g_rep, d_rep))
  final = {'g_state': g_state, 'd_state': d_state}
  last_metrics = last if sweep else (last[0] if last else {})
  if stop.signum:
    where = f'checkpoint saved at step {step}' if ckpt else 'checkpoints are off, nothing saved'
    say(f'stopped by {signal.Signals(stop.signum).name} after step {step}; {where}. Run the same command to resume.')
    return {'step': step, 'interrupted': True, 'metrics': last_metrics, **final}

  t_end = time.perf_counter()
  steps_done = t.num_steps - start_step
  if not steps_done:
    say(f'nothing to do: the checkpoint in {workdir} is already at step {t.num_steps}')
    return {'step': t.num_steps, 'metrics': last_metrics, **final}
  # Steps/s counts from the end of the first step, so compile time is reported apart.
  rate = (steps_done - 1) / (t_end - t_first) if steps_done > 1 else float('nan')
  for run_dir in run_dirs if primary else []:
    writers.plot_metrics(run_dir)
  summary = {
    'step': t.num_steps,
    'wall_s': t_end - t_launch,
    'first_step_s': t_first - t_launch,
    'steps_per_s': rate,
    'devices': num_devices,
    'metrics': last_metrics,
  }
  if sweep:
    summary['sweep'] = {'field': config.sweep.field, 'values': list(config.sweep.choices)}
  if primary:
    (workdir / 'summary.json').write_text(json.dumps(summary, indent=2) + '\n')
  members_note = f' x {len(ids)} members' if sweep else ''
  say(
    f'done: {steps_done} steps{members_note} on {num_devices} device(s) in {summary["wall_s"]:.1f} s, '
    f'{rate:.2f} steps/s after the first step (setup and compilation before it: {summary["first_step_s"]:.1f} s); '
    f'workdir {workdir}'
  )
  return {**summary, **final}
