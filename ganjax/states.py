"""The two players' states: TrainStates with their statistics, the optimizer, and G's forward pass.

`create_states` builds G and D from `config.model` and their optimizers from `config.opt`;
`generate` runs G (its EMA in inference, when the run keeps one); `stack` and `pick_member` lay
sweep members along a leading axis and take one back.
"""

from collections.abc import Callable
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax.training import train_state

from ganjax import config as config_lib
from ganjax import models


class GState(train_state.TrainState):
  """Generator state: TrainState plus BatchNorm statistics and an EMA of the params (each empty when off)."""

  batch_stats: Any = flax.core.FrozenDict()
  ema_params: Any = flax.core.FrozenDict()  # train.g_ema_decay > 0: used for samples and evaluation
  # The EMA generator's own BatchNorm running statistics: the live G's would not match the averaged
  # weights (samples came out grey and noisy with them). Empty without EMA or without BatchNorm.
  ema_batch_stats: Any = flax.core.FrozenDict()


class DState(train_state.TrainState):
  """Discriminator state: TrainState plus spectral-norm estimates (empty without spectral norm)."""

  batch_stats: Any = flax.core.FrozenDict()
  # A sweep's members carry their BCE target of real images here, a traced value as learning-rate
  # sweeps keep their rates in the optimizer state; empty in a plain run, whose step uses `loss.real_label`.
  real_label: Any = flax.core.FrozenDict()


def real_label_of(d_state: DState, default: float) -> Any:
  """The real label D's losses use: the state's own in a sweep, else `default` (the config's)."""
  return d_state.real_label if jax.tree.leaves(d_state.real_label) else default


def optimizer(
  opt: ml_collections.ConfigDict, lr: float, num_updates: int, optimistic: bool = False, inject_lr: bool = False
) -> optax.GradientTransformation:
  """From the config's `opt` section: `opt.name` (Adam or SGD) at `lr`, constant or decaying to 0 over
  `num_updates` updates (`opt.schedule`), after the first `opt.decay_from` of them at `lr`; its optimistic
  variant for `train.update_rule='optimistic'`.

  `inject_lr` keeps the rate in the optimizer state (`optax.inject_hyperparams`).
  """
  if opt.name == 'sgd':
    # Optimistic GD: 2 g_t - g_{t-1}, the previous gradient kept in the optimizer state (Daskalakis et al. 2018).
    make = optax.optimistic_gradient_descent if optimistic else optax.sgd
    kwargs = {}
  else:
    make = optax.optimistic_adam if optimistic else optax.adam
    kwargs = {'b1': opt.b1, 'b2': opt.b2, 'eps': opt.eps}
  begin = int(opt.decay_from * num_updates)  # updates at the full rate before the linear decay

  def linear(start: float) -> optax.Schedule:
    return optax.linear_schedule(start, 0.0, num_updates - begin, transition_begin=begin)

  if inject_lr:
    # The rate must be a plain number in the state (an injected schedule would be the first member's for all);
    # the decay is a separate factor.
    tx = optax.inject_hyperparams(make)(learning_rate=lr, **kwargs)
    return optax.chain(tx, optax.scale_by_schedule(linear(1.0))) if opt.schedule == 'linear' else tx
  return make(linear(lr) if opt.schedule == 'linear' else lr, **kwargs)


def half_precision(apply_fn: Callable) -> Callable:
  """`apply_fn` computing in bfloat16: params and float inputs cast down on the way in, float outputs
  (and new statistics) cast back to float32. Params, gradients and optimizer states stay float32, as in
  flax's examples' `half_precision`; BatchNorm reduces in float32 (flax does for bfloat16 inputs)."""

  def cast(tree, dtype):
    floating = lambda x: jnp.issubdtype(getattr(x, 'dtype', None) or jnp.int32, jnp.floating)  # noqa: E731
    return jax.tree.map(lambda x: x.astype(dtype) if floating(x) else x, tree)

  def apply(variables, *args, **kwargs):
    variables = {**variables, 'params': cast(variables['params'], jnp.bfloat16)}
    return cast(apply_fn(variables, *cast(args, jnp.bfloat16), **kwargs), jnp.float32)

  return apply


def create_states(
  config: ml_collections.ConfigDict, rng: jax.Array, inject_lr: bool = False, label_in_state: bool = False
) -> tuple[GState, DState]:
  """Initialises G and D params and their Adam states from `rng`.

  `inject_lr`: the learning rate lives in the optimizer state (a learning-rate sweep, `members.py`);
  `label_in_state`: `loss.real_label` lives in D's state (every sweep, so that members may differ in it).
  """
  g_model, d_model = models.build_models(config.model, config.data.image_shape, config.loss.info_weight > 0)
  g_rng, d_rng = jax.random.split(rng)
  z = jnp.zeros((1, config.model.latent_dim), jnp.float32)
  x = jnp.zeros((config.model.d_pack, *config.data.image_shape), jnp.float32)  # one pack (PacGAN)
  labels = jnp.zeros((1,), jnp.int32) if config_lib.g_classes(config.model) else None
  g_vars = g_model.init(g_rng, z, train=False, labels=labels)
  d_vars = d_model.init(d_rng, x, train=False, labels=labels)
  t = config.train
  ema = t.g_ema_decay > 0
  # D makes n_critic Adam updates per step, twice that with separate real and fake updates; G makes g_steps.
  d_updates = t.n_critic * (2 if t.d_update == 'separate' else 1)
  optimistic = t.update_rule == 'optimistic'
  # bfloat16 compute (train.half_precision): for GPUs and TPUs; on XLA:CPU it is emulated and slower.
  g_apply, d_apply = g_model.apply, d_model.apply
  if t.half_precision:
    g_apply, d_apply = half_precision(g_apply), half_precision(d_apply)
  g_state = GState.create(
    apply_fn=g_apply,
    params=g_vars['params'],
    tx=optimizer(config.opt, config.opt.g_lr, t.num_steps * t.g_steps, optimistic, inject_lr),
    batch_stats=g_vars.get('batch_stats', flax.core.FrozenDict()),
    ema_params=g_vars['params'] if ema else flax.core.FrozenDict(),
    ema_batch_stats=g_vars.get('batch_stats', flax.core.FrozenDict()) if ema else flax.core.FrozenDict(),
  )
  d_state = DState.create(
    apply_fn=d_apply,
    params=d_vars['params'],
    tx=optimizer(config.opt, config.opt.d_lr, t.num_steps * d_updates, optimistic, inject_lr),
    batch_stats=d_vars.get('batch_stats', flax.core.FrozenDict()),
    real_label=jnp.float32(config.loss.real_label) if label_in_state else flax.core.FrozenDict(),
  )
  return g_state, d_state


def stack(trees: list[Any]) -> Any:
  """Stacks the leaves of same-shaped trees (sweep members); static fields (apply_fn, tx) come from the first."""
  leaves = [jax.tree.leaves(tree) for tree in trees]
  return jax.tree.unflatten(jax.tree.structure(trees[0]), [jnp.stack(xs) for xs in zip(*leaves, strict=True)])


def pick_member(tree: Any, member: int | None) -> Any:
  """Member `member` of stacked (sweep) trees; the tree itself for `member=None` (no sweep)."""
  return tree if member is None else jax.tree.map(lambda x: x[member], tree)


def generate(
  g_state: GState,
  z: jax.Array,
  params: Any = None,
  train: bool = False,
  axis_name: str | None = None,
  labels: jax.Array | None = None,
) -> tuple[jax.Array, Any]:
  """Runs G on `z` (and `labels`, for a conditional G); returns (images, new batch_stats).

  `params` defaults to G's own, or in inference (`train=False`) to their EMA
  (with the EMA's BatchNorm statistics) when the run keeps one.
  """
  use_ema = params is None and not train and bool(g_state.ema_params)
  if params is None:
    params = g_state.ema_params if use_ema else g_state.params
  variables = {'params': params}
  if g_state.batch_stats:
    variables['batch_stats'] = g_state.ema_batch_stats if use_ema else g_state.batch_stats
    if train:
      images, updates = g_state.apply_fn(
        variables, z, train=True, axis_name=axis_name, labels=labels, mutable=['batch_stats']
      )
      return images, updates['batch_stats']
  return g_state.apply_fn(variables, z, train=train, axis_name=axis_name, labels=labels), g_state.batch_stats


def update_ema(
  g_state: GState,
  z: jax.Array,
  labels: jax.Array | None,
  decay: float,
  axis_name: str | None,
  batch_stats: bool = True,
) -> GState:
  """Moves G's parameter EMA towards the new params, and (`batch_stats`) the EMA generator's own BatchNorm statistics.

  Without `batch_stats` the EMA's statistics stay as they were: a run whose samples use standing
  statistics (`eval.standing_stats`) recomputes them before each sample, and saves G's pass a step.
  """
  ema = jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, g_state.ema_params, g_state.params)
  g_state = g_state.replace(ema_params=ema)
  if g_state.batch_stats and batch_stats:  # advance the EMA generator's running statistics on the same latents
    with_ema_stats = g_state.replace(batch_stats=g_state.ema_batch_stats)
    _, ema_stats = generate(with_ema_stats, z, params=ema, train=True, axis_name=axis_name, labels=labels)
    g_state = g_state.replace(ema_batch_stats=ema_stats)
  return g_state


@jax.jit
def standing_stats(g_state: GState, z: jax.Array, labels: jax.Array | None = None) -> GState:
  """G with BatchNorm statistics averaged over the batches `z` (K, B, latent): BigGAN's standing statistics.

  In inference G normalises with running averages that trail its weights (momentum 0.9 remembers the
  last ~10 steps' G). These are the mean over K batches of the statistics that train mode computes
  for the weights samples use (the EMA's, when the run keeps one); `labels` (K, B) for a conditional G.
  Without BatchNorm the state comes back unchanged.
  """
  if not g_state.batch_stats:
    return g_state
  use_ema = bool(g_state.ema_params)
  params = g_state.ema_params if use_ema else g_state.params
  stats = g_state.ema_batch_stats if use_ema else g_state.batch_stats

  def updated(start, zb, lb):
    return generate(g_state.replace(batch_stats=start), zb, params=params, train=True, labels=lb)[1]

  # BatchNorm's running update is m * old + (1 - m) * batch: from zeros it leaves (1 - m) * batch,
  # and from ones m more, which gives each layer's m without knowing the model.
  zeros, ones = jax.tree.map(jnp.zeros_like, stats), jax.tree.map(jnp.ones_like, stats)
  scaled = jax.lax.map(lambda args: updated(zeros, *args), (z, labels))
  from_ones = updated(ones, z[0], None if labels is None else labels[0])
  keep = jax.tree.map(lambda b, a: b - a[0], from_ones, scaled)
  mean = jax.tree.map(lambda s, m: jnp.mean(s, axis=0) / (1.0 - m), scaled, keep)
  return g_state.replace(ema_batch_stats=mean) if use_ema else g_state.replace(batch_stats=mean)
