"""The training loop: `train_and_evaluate(config, workdir)`.

The loop dispatches one jitted step per iteration and never waits on it:
metrics of a logged step are fetched after the next step has been
dispatched, and everything else (sample grids, evaluation, checkpoints) runs
at its own interval.
"""

import contextlib
import json
import os
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

from ganjax import checkpoint, evaluate, input_pipeline, provenance, samplers, sampling, states, train_step, writers
from ganjax import config as config_lib
from ganjax import members as members_lib
from ganjax.errors import ConfigError, DivergenceError, WorkdirError
from ganjax.validate import validate


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


class _StopRequest:
  """Turns SIGTERM/SIGINT into a flag the loop checks after each step (then it saves and exits).

  With several processes, all must stop after the same step, or the others would wait forever in the
  next collective. JAX's preemption service does that: its own SIGTERM handler (left in place here)
  tells every process, and `reached_preemption_sync_point` turns true at one common step in all of them
  (`synced`). SIGINT is routed through it by sending this process SIGTERM.
  """

  def __init__(self):
    self.signum = 0
    self._previous = {}
    self.multiprocess = jax.process_count() > 1
    self._forwarded = False  # a SIGINT already passed on as SIGTERM (several processes)

  def __enter__(self):
    signals = (signal.SIGINT,) if self.multiprocess else (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
      # Outside the main thread (some notebook runners) signals cannot be caught.
      with contextlib.suppress(ValueError):
        self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def _handle(self, signum, frame):
    if self.signum or self._forwarded:
      raise KeyboardInterrupt  # a second signal: stop at once
    if self.multiprocess:
      self._forwarded = True
      os.kill(os.getpid(), signal.SIGTERM)  # to JAX's preemption notifier: every process stops together
      return
    self.signum = signum

  def synced(self, step: int) -> bool:
    """With several processes: True (and the flag set) at the step where all of them stop on a SIGTERM."""
    if self.multiprocess and multihost_utils.reached_preemption_sync_point(step):
      self.signum = signal.SIGTERM
    return bool(self.signum)

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


def _start(ckpt, config: ml_collections.ConfigDict, g_state, d_state) -> tuple[int, Any, Any]:
  """(start step, states): from the latest checkpoint, from another run's params (warm start), or fresh."""
  start_step = _resume(ckpt, config)
  if start_step:
    start_step, g_state, d_state, meta, skipped = ckpt.restore_latest(g_state, d_state)
    for bad, kept, why in skipped:
      say(
        f'the checkpoint at step {bad} cannot be read ({why}); resuming from step {start_step} instead; '
        f'the unreadable one is kept in {kept}'
      )
    say(f'resuming from the checkpoint at step {start_step} in {ckpt.directory}')
    checkpoint.note_version_change(meta)
    changed = config_lib.config_changes(meta['config'], config)
    if changed:
      say(changed)
  elif config.checkpoint.init_from:
    member = config.checkpoint.init_member if config.checkpoint.init_member >= 0 else None
    g_state, d_state, source = checkpoint.warm_start(config.checkpoint.init_from, g_state, d_state, member)
    say(f'warm start: params of both networks from {source}; optimizer state and step start fresh')
  return start_step, g_state, d_state


def _check_run(config: ml_collections.ConfigDict) -> None:
  """Config errors that need the devices, on top of `validate.validate`."""
  validate(config)
  num_devices = jax.device_count()
  pack = config.model.d_pack  # PacGAN: whole packs on every device
  if config.train.batch_size % (num_devices * pack):
    raise ConfigError(
      f'train.batch_size={config.train.batch_size} is the global batch and must divide by the '
      f'{num_devices} devices in use ({jax.process_count()} process(es) x {jax.local_device_count()} local)'
      + (f' times model.d_pack={pack}' if pack > 1 else '')
    )
  if config.sweep.field and config.checkpoint.init_from:
    raise ConfigError('checkpoint.init_from (warm start) cannot be combined with a sweep')


def _open_workdir(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> pathlib.Path:
  """Process 0 creates the workdir and writes the config; on several hosts the others wait for it."""
  primary = jax.process_index() == 0
  workdir = prepare_workdir(workdir) if primary else pathlib.Path(workdir)
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices('ganjax: workdir ready')
  if primary:
    writers.write_text(workdir / 'config.json', config.to_json_best_effort(indent=2) + '\n')
  return workdir


GRID_PER_CLASS = 10  # a conditional run's grids: one row per class, this many samples each


class _Periodic:
  """The loop's work besides the step, for every member: log lines, sample grids, evaluation.

  Only process 0 writes (the others get null writers); every member draws its fixed grid and eval
  latents from its own seed, as a plain run would. A conditional run draws its grid class by class
  (one row each) and evaluates balanced classes; toy data draw the eval batch as a scatter plot.
  """

  def __init__(self, config, members: members_lib.Members, data, start_step: int, t_launch: float):
    self.config, self.members, self.t_launch = config, members, t_launch
    self.eval_wall_s: dict[int, float] = {}  # step -> seconds from launch to the end of its evaluation
    self.primary = jax.process_index() == 0
    classes, latent, toy_name = config_lib.g_classes(config.model), config.model.latent_dim, config.data.toy_name
    is_toy = config.data.source == 'toy'
    self.writers = [
      writers.RunWriter(m.run_dir, start_step, toy_name if is_toy else '') if self.primary else writers.NullWriter()
      for m in members
    ]
    n_grid = classes * GRID_PER_CLASS if classes else config.train.num_sample_images
    n_eval = config.eval.num_samples
    self.eval_z = [jax.random.normal(m.keys['eval'], (n_eval, latent)) for m in members]
    # A toy run draws its eval batch: points show modes better in numbers.
    self.grid_z = self.eval_z if is_toy else [jax.random.normal(m.keys['samples'], (n_grid, latent)) for m in members]
    self.eval_labels = jnp.arange(n_eval) % classes if classes else None
    grid_labels = jnp.repeat(jnp.arange(classes), GRID_PER_CLASS) if classes else None
    self.grid_labels = self.eval_labels if is_toy else grid_labels
    self.cols = GRID_PER_CLASS if classes else None
    self.standing_keys = [jax.random.fold_in(m.keys['eval'], sampling.STANDING_FOLD) for m in members]
    scored = config.eval.every_steps and self.primary
    self.score = evaluate.make_scorer(config, data.images, say=say)[0] if scored else None

  def log(self, step: int, metrics: Any, bar: tqdm.tqdm) -> list[dict[str, float]]:
    """Writes a step's metrics (fetched from the devices now) and the tutorial's line; stops on NaN."""
    rows = self.members.host_metrics(jax.device_get(train_step.unreplicate(metrics)))
    for m, writer, row in zip(self.members, self.writers, rows, strict=True):
      _check_finite(step, row, m.prefix)
      writer.scalars(step, row)
      if self.primary:
        bar.write(m.prefix + tutorial_line(step, self.config.train.num_steps, row))
    return rows

  def _due(self, step: int, every: int) -> bool:
    return bool(every) and (step % every == 0 or step == self.config.train.num_steps)

  def __call__(self, step: int, g_rep: states.GState) -> None:
    """Sample grids and evaluation when due."""
    do_samples = self._due(step, self.config.train.sample_every_steps)
    do_eval = self._due(step, self.config.eval.every_steps)
    if not (do_samples or do_eval) or not self.primary:
      return
    g_state = train_step.unreplicate(g_rep)
    for j, (m, writer) in enumerate(zip(self.members, self.writers, strict=True)):
      g = sampling.standing(self.members.pick(g_state, j), self.config, self.standing_keys[j])
      samples = sampling.images_in_chunks(g, self.eval_z[j], self.eval_labels) if do_eval else None
      if do_samples:
        # A toy run draws its eval batch: generated once when both are due.
        same = samples is not None and self.grid_z is self.eval_z
        grid = samples if same else sampling.images_in_chunks(g, self.grid_z[j], self.grid_labels)
        writer.samples(step, grid, cols=self.cols, title=m.prefix)
      if do_eval:
        writer.scalars(step, {f'eval/{name}': v for name, v in self.score(samples).items()})
    if do_eval:  # kept out of metrics.jsonl, which stays the same from run to run
      self.eval_wall_s[step] = time.perf_counter() - self.t_launch

  def close(self) -> None:
    for writer in self.writers:
      writer.close()


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> dict[str, Any]:
  """Trains the GAN described by `config`, writing everything to `workdir`.

  The step runs data-parallel over all devices (`config.train.batch_size` is
  the global batch). With `config.sweep`, K members train side by side in one
  compiled program; member k writes its logs and samples to
  `workdir/member_k`, and all share one checkpoint (stacked states).

  Returns a summary: final step, metrics of the last logged step, wall time,
  steps/s and the final states (stacked for a sweep).
  """
  config = input_pipeline.with_data_shapes(config)  # a packed dataset's shape and classes
  _check_run(config)
  code = provenance.code()  # the code this run starts with, whatever the checkout does meanwhile
  workdir = _open_workdir(config, workdir)
  t_launch = time.perf_counter()
  members = members_lib.Members(config, workdir)
  if jax.process_index() == 0:
    members.write_configs()
  data = input_pipeline.load(config)
  g_state, d_state = members.create_states()
  sampler = samplers.make_sampler(config, data, members.keys('data'))
  step_fn = members.make_step()
  ckpt = checkpoint.Checkpointer(workdir, config, code) if config.checkpoint.enabled else None
  start_step, g_state, d_state = _start(ckpt, config, g_state, d_state)
  periodic = _Periodic(config, members, data, start_step, t_launch)
  # One copy of both states per local device; the step keeps them identical.
  g_rep, d_rep = train_step.replicate((g_state, d_state))
  del g_state, d_state  # donated to the first step; only the replicas live on
  loop = _Loop(config, members, sampler, step_fn, ckpt, periodic)
  try:
    loop.run(start_step, g_rep, d_rep)
  finally:
    periodic.close()
    if ckpt:
      ckpt.close()  # waits for the last asynchronous save
  return _finish(config, workdir, members, loop, start_step, t_launch, code)


class _Loop:
  """Dispatches one step per iteration and never waits on it: a logged step's metrics are fetched
  after the next step is dispatched. Checkpoints at their interval and at the end; SIGTERM/SIGINT
  stop it after the step in flight, with a checkpoint."""

  def __init__(self, config, members, sampler, step_fn, ckpt, periodic: _Periodic):
    self.config, self.members, self.sampler, self.step_fn = config, members, sampler, step_fn
    self.ckpt, self.periodic = ckpt, periodic
    self.stop = _StopRequest()
    self.last: list[dict[str, float]] = []  # per member, the metrics of the last logged step
    self.t_first = None  # when the first step finished (compilation included)
    self.step = 0
    self.g_rep = self.d_rep = None

  def save(self, step: int) -> None:
    epoch, index = self.sampler.position(step)
    rng = np.asarray(jax.random.key_data(self.members.keys('train'))).tolist()
    g_state, d_state = train_step.unreplicate((self.g_rep, self.d_rep))
    self.ckpt.save(step, g_state, d_state, {'epoch': epoch, 'batch_index': index, 'train_rng': rng})

  def _checkpoint_due(self, step: int) -> bool:
    every = self.config.checkpoint.every_steps
    return bool(self.ckpt and every and step % every == 0 and step < self.config.train.num_steps)

  def _check_state(self, step: int, metrics: Any) -> None:
    rows = self.members.host_metrics(jax.device_get(train_step.unreplicate(metrics)))
    for m, row in zip(self.members, rows, strict=True):
      _check_finite(step, row, m.prefix)

  def run(self, start_step: int, g_rep, d_rep) -> None:
    t = self.config.train
    self.g_rep, self.d_rep, self.step = g_rep, d_rep, start_step
    pending = None  # (step, device metrics) of a logged step not yet fetched
    # On stdout with the log lines: stderr carries errors only (one line each).
    primary = jax.process_index() == 0
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
      with self.stop:
        for i in range(start_step, t.num_steps):
          step = self.step = i + 1  # steps completed after this iteration
          self.g_rep, self.d_rep, metrics = self.step_fn(self.g_rep, self.d_rep, self.sampler.batch(i))
          self.stop.synced(step)
          if pending is not None:
            self.last, pending = self.periodic.log(*pending, bar), None
          if self.t_first is None:
            jax.block_until_ready(metrics)
            self.t_first = time.perf_counter()
          if step % t.log_every_steps == 0 or step == t.num_steps or self.stop.signum:
            pending = (step, metrics)
          self.periodic(step, self.g_rep)
          bar.update(1)
          if self.stop.signum:
            break
          if self._checkpoint_due(step):
            # Never checkpoint a diverged state (the metrics include both param norms). A pending log
            # holds this very step's metrics, and logging checks them.
            if pending is not None:
              self.last, pending = self.periodic.log(*pending, bar), None
            else:
              self._check_state(step, metrics)
            self.save(step)
        if pending is not None:
          self.last = self.periodic.log(*pending, bar)
        if self.ckpt and self.step > start_step:
          self.save(self.step)
    finally:
      bar.close()


def _finish(
  config, workdir: pathlib.Path, members, loop: _Loop, start_step: int, t_launch: float, code: dict[str, Any]
) -> dict[str, Any]:
  """The run's summary (also written to summary.json) and final states; a one-line report."""
  g_state, d_state = train_step.unreplicate((loop.g_rep, loop.d_rep))
  final = {'g_state': g_state, 'd_state': d_state}
  last_metrics = loop.last if members.stacked else (loop.last[0] if loop.last else {})
  step, t = loop.step, config.train
  if loop.stop.signum:
    where = f'checkpoint saved at step {step}' if loop.ckpt else 'checkpoints are off, nothing saved'
    name = signal.Signals(loop.stop.signum).name
    say(f'stopped by {name} after step {step}; {where}. Run the same command to resume.')
    return {'step': step, 'interrupted': True, 'metrics': last_metrics, **final}
  t_end = time.perf_counter()
  steps_done = t.num_steps - start_step
  if not steps_done:
    say(f'nothing to do: the checkpoint in {workdir} is already at step {t.num_steps}')
    return {'step': t.num_steps, 'metrics': last_metrics, **final}
  # Steps/s counts from the end of the first step, so compile time is reported apart.
  rate = (steps_done - 1) / (t_end - loop.t_first) if steps_done > 1 else float('nan')
  primary = jax.process_index() == 0
  for m in members if primary else []:
    writers.plot_metrics(m.run_dir)
  summary = {
    'step': t.num_steps,
    'wall_s': t_end - t_launch,
    'first_step_s': loop.t_first - t_launch,
    'steps_per_s': rate,
    'devices': jax.device_count(),
    'metrics': last_metrics,
    # When each periodic evaluation finished, in seconds from launch (this process' run only).
    'eval_wall_s': {str(k): v for k, v in loop.periodic.eval_wall_s.items()},
    # Which code, libraries and machine produced these numbers.
    'provenance': provenance.record(code),
  }
  if members.stacked:
    summary['sweep'] = {'field': config.sweep.field, 'values': list(config.sweep.choices)}
  if primary:
    writers.write_text(workdir / 'summary.json', json.dumps(summary, indent=2) + '\n')
  members_note = f' x {len(members)} members' if members.stacked else ''
  say(
    f'done: {steps_done} steps{members_note} on {jax.device_count()} device(s) in {summary["wall_s"]:.1f} s, '
    f'{rate:.2f} steps/s after the first step (setup and compilation before it: {summary["first_step_s"]:.1f} s); '
    f'workdir {workdir}'
  )
  return {**summary, **final}
