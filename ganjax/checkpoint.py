"""Orbax checkpoints of a run: both TrainStates, the step, the data position, the config.

Layout: `WORKDIR/checkpoints/<step>/{state,meta}`. `state` holds both
TrainStates (params, Adam moments, step counters, BatchNorm statistics);
`meta` is JSON with the step, the input pipeline's position, the run's PRNG
key data and the resolved config, so a checkpoint can be restored with no
config file at hand. Orbax writes each step to a temporary folder and renames
it when complete, so a process killed mid-save leaves the previous
checkpoints intact and the partial one is never listed.
"""

import contextlib
import dataclasses
import datetime
import json
import logging
import pathlib
import sys
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from flax.training import train_state

from ganjax import config as config_lib
from ganjax import members as members_lib
from ganjax import provenance
from ganjax.errors import CheckpointError, UnreadableCheckpointError
from ganjax.states import GState

CHECKPOINT_DIR = 'checkpoints'
_LABEL = 'd/real_label'  # a sweep's real labels (states.DState)


@dataclasses.dataclass
class Run:
  """A restored run: what `ganjax.restore` returns."""

  config: ml_collections.ConfigDict
  g_state: GState
  d_state: train_state.TrainState
  step: int
  workdir: pathlib.Path
  member: int | None = None  # which member of a sweep; None for a plain run


@contextlib.contextmanager
def _quiet_absl():
  """Orbax warns on every read-only manager ('Given directory is read only', ...); a restore should be silent."""
  logger = logging.getLogger('absl')
  level = logger.level
  logger.setLevel(logging.ERROR)
  try:
    yield
  finally:
    logger.setLevel(level)


def _manager(directory: pathlib.Path, max_to_keep: int | None = None, read_only: bool = False) -> ocp.CheckpointManager:
  with _quiet_absl() if read_only else contextlib.nullcontext():
    options = ocp.CheckpointManagerOptions(
      max_to_keep=max_to_keep,
      create=not read_only,
      read_only=read_only,
      enable_async_checkpointing=not read_only,
      cleanup_tmp_directories=not read_only,
    )
    handlers = {'state': ocp.StandardCheckpointHandler(), 'meta': ocp.JsonCheckpointHandler()}
    return ocp.CheckpointManager(directory, options=options, item_handlers=handlers)


def _steps(manager: ocp.CheckpointManager) -> list[int]:
  manager.reload()  # another process may have written or deleted steps
  return sorted(manager.all_steps())


def _shapes(tree: Any) -> dict[str, tuple]:
  """'g/params/Dense_0/kernel' -> shape; the same names for saved metadata and live states."""

  def name(entry) -> str:
    for attr in ('key', 'name', 'idx'):
      if hasattr(entry, attr):
        return str(getattr(entry, attr))
    return str(entry)

  flat = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {'/'.join(name(e) for e in path): tuple(leaf.shape) if hasattr(leaf, 'shape') else () for path, leaf in flat}


def _first_mismatch(have: dict[str, tuple], want: dict[str, tuple]) -> str | None:
  """The first leaf (params first) whose shape differs between two `_shapes` maps."""
  for key in sorted(set(have) | set(want), key=lambda k: ('/params/' not in k, k)):
    if have.get(key) != want.get(key):
      return key
  return None


def _corrupt(directory: pathlib.Path, step: int, error: Exception) -> CheckpointError:
  return UnreadableCheckpointError(
    f'checkpoint {directory / str(step)} is unreadable or corrupt: {type(error).__name__}: {error}'
  )


class Checkpointer:
  """Saves and restores a run's checkpoints under `workdir/checkpoints`."""

  def __init__(self, workdir: pathlib.Path, config: ml_collections.ConfigDict, code: dict[str, Any] | None = None):
    """`code`: `provenance.code()` as the run started (asked now when not given)."""
    self.directory = pathlib.Path(workdir).absolute() / CHECKPOINT_DIR
    self.config = config
    self.code = provenance.code() if code is None else code
    self._manager = _manager(self.directory, max_to_keep=config.checkpoint.max_to_keep)

  def all_steps(self) -> list[int]:
    return _steps(self._manager)

  def latest_step(self) -> int | None:
    steps = self.all_steps()
    return steps[-1] if steps else None

  def save(self, step: int, g_state: GState, d_state: train_state.TrainState, meta: dict[str, Any]) -> None:
    """Starts an asynchronous save of `step`; returns once the arrays are copied."""
    # Host copies: the donated buffers of the next train step can never alias what is being written,
    # and on several hosts Orbax writes host (replicated) arrays from the primary process only.
    state = jax.tree.map(np.array, {'g': g_state, 'd': d_state})
    meta = {
      'step': step,
      'config': json.loads(self.config.to_json_best_effort()),
      'versions': provenance.versions(),
      'code': self.code,
      **meta,
    }
    self._manager.save(
      step, args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)), force=True
    )

  def restore(
    self, step: int, g_state: GState, d_state: train_state.TrainState
  ) -> tuple[GState, train_state.TrainState, dict]:
    """Restores `step` into states shaped like the given ones; CheckpointError if they differ."""
    return restore_states(self._manager, self.directory, step, g_state, d_state)

  def restore_latest(
    self, g_state: GState, d_state: train_state.TrainState
  ) -> tuple[int, GState, train_state.TrainState, dict, list[tuple[int, pathlib.Path, str]]]:
    """The newest checkpoint that can be read, restored into states shaped like the given ones.

    Newer checkpoints that cannot be read (truncated or corrupt files) are moved out of the way,
    never deleted: to `checkpoints.unreadable/<step>-<time>` beside the checkpoints. Returns
    (step, g_state, d_state, meta, [(unreadable step, where it was moved, why)]). A checkpoint of
    another model shape stays an error; so does having no readable checkpoint at all.
    """
    skipped = []
    for step in reversed(self.all_steps()):
      try:
        g_state_out, d_state_out, meta = self.restore(step, g_state, d_state)
      except UnreadableCheckpointError as e:
        skipped.append((step, ' '.join(str(e).split())))  # one line, whatever Orbax said
        continue
      return step, g_state_out, d_state_out, meta, [(bad, self._move_unreadable(bad), why) for bad, why in skipped]
    raise CheckpointError(f'no readable checkpoint in {self.directory}: {skipped[0][1] if skipped else "none left"}')

  def _move_unreadable(self, step: int) -> pathlib.Path:
    """Moves checkpoint `step` to checkpoints.unreadable/ (process 0 only; the others leave it be)."""
    target = self.directory.with_name(f'{CHECKPOINT_DIR}.unreadable') / (
      f'{step}-{datetime.datetime.now().strftime("%Y%m%d-%H%M%S")}'
    )
    if jax.process_index() == 0:
      self._manager.close()
      target.parent.mkdir(exist_ok=True)
      (self.directory / str(step)).rename(target)
      self._manager = _manager(self.directory, max_to_keep=self.config.checkpoint.max_to_keep)
    return target

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()

  def set_aside(self) -> pathlib.Path | None:
    """Renames existing checkpoints out of the way (for a fresh start); returns the new path."""
    if not self.all_steps():
      return None
    self._manager.close()
    stamp = datetime.datetime.now().strftime('%Y%m%d-%H%M%S')
    target = self.directory.with_name(f'{CHECKPOINT_DIR}.old-{stamp}')
    self.directory.rename(target)
    self._manager = _manager(self.directory, max_to_keep=self.config.checkpoint.max_to_keep)
    return target


def note_version_change(meta: dict) -> None:
  """One line on stderr when the checkpoint was written under another JAX version than this one."""
  note = provenance.version_change(meta.get('versions'))
  if note and jax.process_index() == 0:
    print(f'ganjax: note: step {meta.get("step")}: {note}', file=sys.stderr, flush=True)


def _describe(directory: pathlib.Path, steps: list[int]) -> str:
  return f'checkpoints in {directory}: steps {steps}' if steps else f'no checkpoints in {directory}'


def restore_states(
  manager: ocp.CheckpointManager, directory: pathlib.Path, step: int, g_state: GState, d_state: train_state.TrainState
):
  """Restores states of `step` (an existing step) into the given templates, with one-line errors for every failure."""
  target = {'g': g_state, 'd': d_state}
  try:
    saved_shapes = _shapes(manager.item_metadata(step)['state'])
  except Exception as e:
    raise _corrupt(directory, step, e) from e
  want = _shapes(target)
  # A sweep saved before its members kept their real label in D's state: keep the template's (the config's).
  legacy_label = bool(saved_shapes) and _LABEL in want and _LABEL not in saved_shapes
  if legacy_label:
    target = {'g': g_state, 'd': d_state.replace(real_label=flax.core.FrozenDict())}
    want = _shapes(target)
  key = _first_mismatch(saved_shapes, want) if saved_shapes else None
  if key is not None:
    raise CheckpointError(
      f'checkpoint {directory / str(step)} does not fit this model: {key} is {saved_shapes.get(key)} in the '
      f'checkpoint but {want.get(key)} in the model (changed widths or latent size?)'
    )
  # Restore onto this process' first device, wherever the checkpoint was written.
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  # (TrainState.create leaves `step` a Python int, hence jnp.asarray for its dtype.)
  abstract = jax.tree.map(
    lambda x: jax.ShapeDtypeStruct(np.shape(x), getattr(x, 'dtype', None) or jnp.asarray(x).dtype, sharding=device),
    target,
  )
  try:
    restored = manager.restore(
      step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore())
    )
  except Exception as e:
    raise _corrupt(directory, step, e) from e
  d = restored['state']['d']
  return restored['state']['g'], d.replace(real_label=d_state.real_label) if legacy_label else d, dict(restored['meta'])


def read_meta(
  workdir: str | pathlib.Path, step: int | None = None
) -> tuple[int, dict, ocp.CheckpointManager, pathlib.Path]:
  """Opens a run's checkpoints read-only; returns (step, meta, manager, directory)."""
  directory = pathlib.Path(workdir).absolute() / CHECKPOINT_DIR
  if not directory.is_dir():
    raise CheckpointError(f'no checkpoints in {directory} (is {workdir} a ganjax workdir?)')
  manager = _manager(directory, read_only=True)
  steps = _steps(manager)
  if not steps:
    raise CheckpointError(f'no checkpoints in {directory}')
  step = steps[-1] if step is None else step
  if step not in steps:
    raise CheckpointError(f'no checkpoint for step {step}; {_describe(directory, steps)}')
  try:
    meta = manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))['meta']
  except Exception as e:
    raise _corrupt(directory, step, e) from e
  return step, dict(meta), manager, directory


def config_from_meta(meta: dict) -> ml_collections.ConfigDict:
  """The run's config as saved in the checkpoint, over today's defaults.

  Keys added to ganjax after the checkpoint was written take their defaults
  (which reproduce the old behaviour); JSON lists become tuples again.
  """
  config = config_lib.tutorial_config()

  def merge(target: ml_collections.ConfigDict, saved: dict) -> None:
    for key, value in saved.items():
      if isinstance(value, dict) and key in target:
        merge(target[key], value)
      else:
        with target.ignore_type():
          target[key] = tuple(value) if isinstance(value, list) else value

  saved = {k: dict(v) if isinstance(v, dict) else v for k, v in meta['config'].items()}  # meta stays as read
  for old, new in config_lib.RENAMED.items():  # checkpoints written before the rename
    (old_section, old_key), (new_section, new_key) = old.split('.'), new.split('.')
    if old_key in saved.get(old_section, {}):
      saved.setdefault(new_section, {})[new_key] = saved[old_section].pop(old_key)
  merge(config, saved)
  return config


def restore(workdir: str | pathlib.Path, step: int | None = None, member: int | None = None) -> Run:
  """Restores a run from its checkpoint alone (no config file needed).

  Args:
    workdir: the run's workdir (holding `checkpoints/`).
    step: the step to restore; the latest when None.
    member: for a sweep (`config.sweep`), which member (0-based); must be None otherwise.

  Returns:
    A `Run` with `.config` (the member's, for a sweep), `.g_state`, `.d_state`,
    `.step`, on this process' first device, whatever device count wrote it.
  """
  return _restore(workdir, step, [member])[0]


def restore_members(workdir: str | pathlib.Path, step: int | None = None) -> list[Run]:
  """Every member of a sweep as its own `Run` (a one-element list for a plain run)."""
  return _restore(workdir, step, None)


def _restore(workdir: str | pathlib.Path, step: int | None, wanted: list[int | None] | None) -> list[Run]:
  step, meta, manager, directory = read_meta(workdir, step)
  note_version_change(meta)
  try:
    config = config_from_meta(meta)
    members = members_lib.Members(config, workdir)
    wanted = _wanted_members(workdir, members, wanted)
    # Shapes only: the templates' values are never computed, but for the real labels of an old sweep.
    g_state, d_state = jax.eval_shape(members.create_states)
    if members.stacked:
      d_state = d_state.replace(real_label=jnp.array([m.config.loss.real_label for m in members], jnp.float32))
    g_state, d_state, _ = restore_states(manager, directory, step, g_state, d_state)
  finally:
    manager.close()
  runs = []
  for k in wanted:
    j = k or 0
    g, d = members.pick(g_state, j), members.pick(d_state, j)
    runs.append(Run(config=members[j].config, g_state=g, d_state=d, step=step, workdir=pathlib.Path(workdir), member=k))
  return runs


def _wanted_members(
  workdir: str | pathlib.Path, members: 'members_lib.Members', wanted: list[int | None] | None
) -> list[int | None]:
  """The member indices to restore (all for None), checked against the sweep; CheckpointError otherwise."""
  sweep, n = members.stacked, len(members)
  if wanted is None:
    wanted = [m.index for m in members]
    missing = [m.index for m in members if sweep and not m.run_dir.is_dir()]
    if missing:  # a sweep copied or cleaned in part: its logs would not match its checkpoint
      raise CheckpointError(
        f'{workdir} is a sweep of {n} members but member_{missing[0]}/ is missing '
        f'({len(missing)} missing); the checkpoint and the member folders must come together'
      )
  for k in wanted:
    if sweep and (k is None or not 0 <= k < n):
      raise CheckpointError(
        f'{workdir} is a sweep of {n} members ({members.field} = {tuple(members.config.sweep.choices)}); '
        f'pick one with member=0..{n - 1} (checkpoint.init_member for a warm start)'
        + ('' if k is None else f', not {k}')
      )
    if not sweep and k is not None:
      raise CheckpointError(
        f'{workdir} is not a sweep; restore it without member (a warm start: no checkpoint.init_member)'
      )
  return wanted


def warm_start(
  source_workdir: str, g_state: GState, d_state: train_state.TrainState, member: int | None = None
) -> tuple[GState, train_state.TrainState, str]:
  """Copies the params (and BatchNorm statistics) of another run's latest checkpoint into fresh states.

  The optimizer state and step counters stay fresh, so a fine-tune or an
  ablation (say, another loss) starts from trained networks. The networks'
  shapes must match; CheckpointError names the first that does not. From a
  sweep, `member` picks whose networks (`checkpoint.init_member`).
  """
  run = restore(source_workdir, member=member)

  def nets(g, d):
    return {
      'g': {'params': g.params, 'batch_stats': g.batch_stats},
      'd': {'params': d.params, 'batch_stats': d.batch_stats},
    }

  ours, theirs = nets(g_state, d_state), nets(run.g_state, run.d_state)
  want, have = _shapes(ours), _shapes(theirs)
  key = _first_mismatch(have, want)
  if key is not None:
    raise CheckpointError(
      f'checkpoint.init_from={source_workdir} does not fit this model: {key} is {have.get(key)} there '
      f'but {want.get(key)} here'
    )
  g_state = g_state.replace(params=run.g_state.params, batch_stats=run.g_state.batch_stats)
  if g_state.ema_params:  # the EMA starts from the source's EMA, or from its params when it kept none
    g_state = g_state.replace(ema_params=run.g_state.ema_params or run.g_state.params)
    if g_state.batch_stats:
      g_state = g_state.replace(ema_batch_stats=run.g_state.ema_batch_stats or run.g_state.batch_stats)
  d_state = d_state.replace(params=run.d_state.params, batch_stats=run.d_state.batch_stats)
  which = '' if member is None else f', member {member}'
  return g_state, d_state, f'{source_workdir} (step {run.step}{which})'
