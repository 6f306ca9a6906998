"""Members: the runs one program trains side by side.

A plain run is one member. A sweep (`config.sweep`) is K members that differ in
one field; their states, keys and data orders are stacked along a leading
member axis, and the step is vmapped (or unrolled) over it. Everything that
depends on that difference lives here: member configs and directories, log
prefixes, stacking and picking, the random streams, learning-rate injection,
the step's per-member arguments and restoring one member. The training loop,
the checkpoint restore and the evaluation iterate over members and never ask
whether they run a sweep.
"""

import dataclasses
import pathlib
from collections.abc import Callable, Iterator
from typing import Any

import jax
import ml_collections

from ganjax import config as config_lib
from ganjax import states, train_step

# Independent random streams, all derived from a member's seed.
_STREAMS = ('init', 'data', 'train', 'samples', 'eval')


def streams(seed: int) -> dict[str, jax.Array]:
  """A run's named PRNG keys; the train step's key is `fold_in(keys['train'], step)`."""
  root = jax.random.key(seed)
  return {name: jax.random.fold_in(root, i) for i, name in enumerate(_STREAMS)}


@dataclasses.dataclass(frozen=True)
class Member:
  """One run: its config, its folder for logs and samples, its keys and its log prefix."""

  index: int | None  # None: a plain run, whose trees carry no member axis
  config: ml_collections.ConfigDict
  run_dir: pathlib.Path
  keys: dict[str, jax.Array]
  prefix: str  # '' for a plain run, '[member k: field=value] ' in a sweep


class Members:
  """The K >= 1 members of a config, with `workdir` (member k's folder is `workdir/member_k` in a sweep)."""

  def __init__(self, config: ml_collections.ConfigDict, workdir: str | pathlib.Path = '.'):
    self.config = config
    self.field = config.sweep.field
    workdir = pathlib.Path(workdir)
    configs = config_lib.members(config)
    if not self.field:
      self._members = [Member(None, config, workdir, streams(config.seed), '')]
    else:
      self._members = [
        Member(k, c, workdir / f'member_{k}', streams(c.seed), f'[member {k}: {self.field}={config.sweep.choices[k]}] ')
        for k, c in enumerate(configs)
      ]

  def __iter__(self) -> Iterator[Member]:
    return iter(self._members)

  def __len__(self) -> int:
    return len(self._members)

  def __getitem__(self, j: int) -> Member:
    return self._members[j]

  @property
  def stacked(self) -> bool:
    """Whether trees carry a member axis (a sweep, even of one member)."""
    return bool(self.field)

  def stack(self, trees: list[Any]) -> Any:
    """The members' trees (one per member) as the step takes them."""
    return states.stack(trees) if self.stacked else trees[0]

  def pick(self, tree: Any, j: int) -> Any:
    """Member j's tree out of `tree` as the step returns it."""
    return states.pick_member(tree, self._members[j].index)

  def keys(self, name: str) -> jax.Array:
    """The members' keys of stream `name`, stacked in a sweep."""
    return self.stack([m.keys[name] for m in self])

  def create_states(self) -> tuple[states.GState, states.DState]:
    """Fresh states of every member from its own seed, stacked in a sweep."""
    # A learning-rate sweep keeps the rate in the optimizer state, so vmapped members differ by data only.
    inject = self.field in ('opt.g_lr', 'opt.d_lr')
    created = [states.create_states(m.config, m.keys['init'], inject, label_in_state=self.stacked) for m in self]
    return self.stack(created)

  def make_step(self) -> Callable:
    """The pmapped step as the loop calls it: `step(g_rep, d_rep, batch)`; it folds the step count into
    the members' training keys itself."""
    step = train_step.make_train_step(self.config, members=self.stacked)
    train_key = self.keys('train')
    return lambda g, d, batch: step(g, d, batch, train_key)

  def host_metrics(self, fetched: dict[str, Any]) -> list[dict[str, float]]:
    """Per member, the step's fetched metrics as floats."""
    return [{n: float(v if m.index is None else v[m.index]) for n, v in fetched.items()} for m in self]

  def write_configs(self) -> None:
    """Each sweep member's folder and config.json (a plain run's config is the workdir's own)."""
    for m in self:
      if m.index is not None:
        m.run_dir.mkdir(exist_ok=True)
        (m.run_dir / 'config.json').write_text(m.config.to_json_best_effort(indent=2) + '\n')
