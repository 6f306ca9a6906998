"""Train states and the one pure, jitted GAN train step.

One call of `train_step` is one iteration of the tutorial's loop:

1. D update on the real batch (label `real_label`);
2. D update on `stop_gradient(G(z))` (label 0), a second Adam step
   (Keras' `train_on_batch` twice), or, with `d_update='joint'`, one update on
   the mean of both losses;
3. G update through D with D's params held constant (`stop_gradient`) and
   gradients taken only with respect to G's params. That is what Keras'
   `discriminator.trainable = False` meant in the tutorial.

Metrics are computed in the same forward passes as the updates, so they are
the values before each update, as Keras' `train_on_batch` reports them.

`train.update_rule` 'simultaneous' lets G's update see D's starting state,
and 'optimistic' does so with optimistic Adam/GD. 'extragradient' and
consensus optimisation (`loss.consensus_weight`) instead update both players
from the game's joint field (`game_field`, `_game_step`).

Data parallelism: `make_train_step` runs the step under `jax.pmap` over the
local devices with axis name `AXIS`, each device holding a slice of the
global batch. With `cfg.axis_name` set, gradients and metrics are averaged across
devices, BatchNorm and the minibatch-std feature use global-batch
statistics, and the latent noise of the global batch is drawn from the
step's key and sliced, so the trajectory does not depend on the device count
(up to floating-point reduction order). Dropout and instance-noise masks are
drawn per device (the key folded with the device index): those two options
match across device counts in distribution only.
"""

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import jax_utils
from flax.training import train_state

from ganjax import choices, losses, models
from ganjax import config as config_lib

Metrics = dict[str, jax.Array]

AXIS = 'batch'  # the pmap axis of the data-parallel step
Batch = dict[str, jax.Array]  # {'image': (B, H, W, C) [, 'label': (B,)]}; with n_critic > 1 a leading axis


@dataclasses.dataclass(frozen=True)
class StepConfig:
  """Everything static the step needs, built once from the config (hashable: jit treats it as a constant)."""

  latent_dim: int
  num_classes: int = 0  # > 0: G takes a label, drawn uniformly for fakes (a cGAN's class or a latent category)
  d_update: str = 'separate'  # 'separate' (two Adam steps, the tutorial) | 'joint'
  loss: str = 'bce'  # one of losses.LOSSES
  n_critic: int = 1  # D updates before the G update, each on its own real batch
  update_rule: str = 'alternating'  # one of choices.UPDATE_RULES; G sees the updated D in 'alternating' (the tutorial)
  consensus_weight: float = 0.0  # consensus optimisation's gamma (Mescheder et al. 2017)
  real_label: float = 1.0  # BCE target of real images; < 1 is one-sided label smoothing
  gp_weight: float = 0.0  # WGAN-GP penalty (joint updates only)
  r1_weight: float = 0.0  # R1 penalty on real images
  g_ema_decay: float = 0.0  # decay of G's parameter EMA (used when the state keeps one)
  dirac: bool = False  # the Dirac-GAN: log theta, psi and their distance to the equilibrium (0, 0)
  info_weight: float = 0.0  # InfoGAN: weight of the cross-entropy of D's Q head on the fakes' latent categories
  info_decay_steps: int = 0  # > 0: that weight decays linearly to 0 at this step (loss.info_schedule='linear')
  axis_name: str | None = None  # the pmap axis to average over; None outside pmap

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict, axis_name: str | None = None) -> 'StepConfig':
    t, loss = config.train, config.loss
    return cls(
      latent_dim=config.model.latent_dim,
      num_classes=config_lib.g_classes(config),
      d_update=t.d_update,
      loss=loss.name,
      n_critic=t.n_critic,
      update_rule=t.update_rule,
      consensus_weight=loss.consensus_weight,
      real_label=float(loss.real_label),
      gp_weight=loss.gp_weight,
      r1_weight=loss.r1_weight,
      g_ema_decay=t.g_ema_decay,
      info_weight=loss.info_weight,
      info_decay_steps=t.num_steps if loss.info_schedule == 'linear' else 0,
      dirac=config.model.g_arch == 'dirac',
      axis_name=axis_name,
    )


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


def _optimizer(
  config: ml_collections.ConfigDict, lr: float, updates_per_step: int = 1, inject_lr: bool = False
) -> optax.GradientTransformation:
  """`opt.name` (Adam or SGD) at `lr`, constant or decaying to 0 over the run's updates (`updates_per_step`
  of them per step); its optimistic variant for `train.update_rule='optimistic'`.

  `inject_lr` keeps the rate in the optimizer state (`optax.inject_hyperparams`).
  """
  o = config.opt
  optimistic = config.train.update_rule == 'optimistic'
  if o.name == 'sgd':
    # Optimistic GD: 2 g_t - g_{t-1}, the previous gradient kept in the optimizer state (Daskalakis et al. 2018).
    make = optax.optimistic_gradient_descent if optimistic else optax.sgd
    kwargs = {}
  else:
    make = optax.optimistic_adam if optimistic else optax.adam
    kwargs = {'b1': o.b1, 'b2': o.b2, 'eps': o.eps}
  updates = config.train.num_steps * updates_per_step
  if inject_lr:
    # The rate must be a plain number in the state (an injected schedule would be the first member's for all);
    # the decay is a separate factor.
    opt = optax.inject_hyperparams(make)(learning_rate=lr, **kwargs)
    decay = optax.scale_by_schedule(optax.linear_schedule(1.0, 0.0, updates))
    return optax.chain(opt, decay) if o.schedule == 'linear' else opt
  return make(optax.linear_schedule(lr, 0.0, updates) if o.schedule == 'linear' else lr, **kwargs)


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


def create_states(config: ml_collections.ConfigDict, rng: jax.Array, inject_lr: bool = False) -> tuple[GState, DState]:
  """Initialises G and D params and their Adam states from `rng`.

  `inject_lr`: the learning rate lives in the optimizer state (a learning-rate sweep, `members.py`).
  """
  g_model, d_model = models.build_models(config)
  g_rng, d_rng = jax.random.split(rng)
  z = jnp.zeros((1, config.model.latent_dim), jnp.float32)
  x = jnp.zeros((1, *config.data.image_shape), jnp.float32)
  labels = jnp.zeros((1,), jnp.int32) if config_lib.g_classes(config) else None
  g_vars = g_model.init(g_rng, z, train=False, labels=labels)
  ema = config.train.g_ema_decay > 0
  # D makes n_critic Adam updates per step, twice that with separate real and fake updates.
  d_updates = config.train.n_critic * (2 if config.train.d_update == 'separate' else 1)
  d_vars = d_model.init(d_rng, x, train=False, labels=labels)
  # bfloat16 compute (train.half_precision): for GPUs and TPUs; on XLA:CPU it is emulated and slower.
  g_apply, d_apply = g_model.apply, d_model.apply
  if config.train.half_precision:
    g_apply, d_apply = half_precision(g_apply), half_precision(d_apply)
  g_state = GState.create(
    apply_fn=g_apply,
    params=g_vars['params'],
    tx=_optimizer(config, config.opt.g_lr, inject_lr=inject_lr),
    batch_stats=g_vars.get('batch_stats', flax.core.FrozenDict()),
    ema_params=g_vars['params'] if ema else flax.core.FrozenDict(),
    ema_batch_stats=g_vars.get('batch_stats', flax.core.FrozenDict()) if ema else flax.core.FrozenDict(),
  )
  d_state = DState.create(
    apply_fn=d_apply,
    params=d_vars['params'],
    tx=_optimizer(config, config.opt.d_lr, d_updates, inject_lr),
    batch_stats=d_vars.get('batch_stats', flax.core.FrozenDict()),
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


def _discriminate(
  d_state: DState,
  params: Any,
  images: jax.Array,
  rng: jax.Array,
  axis_name: str | None = None,
  update_stats: bool = False,
  labels: jax.Array | None = None,
  info: bool = False,
) -> tuple[jax.Array, Any] | tuple[jax.Array, Any, jax.Array]:
  """D's logits and its statistics (spectral-norm estimates, BatchNorm), advanced when `update_stats`.

  With `info`, also the logits of D's Q head over the latent categories (InfoGAN).
  """
  if axis_name is not None:  # a different dropout mask on each device's slice
    rng = jax.random.fold_in(rng, jax.lax.axis_index(axis_name))
  drop_rng, noise_rng = jax.random.split(rng)
  # Folded rather than a third split, so that runs without augmentation keep their random streams.
  rngs = {'dropout': drop_rng, 'noise': noise_rng, 'augment': jax.random.fold_in(noise_rng, 1)}
  kwargs = {'train': True, 'axis_name': axis_name, 'labels': labels, 'rngs': rngs}
  variables = {'params': params}
  mutable = ['intermediates'] if info else []
  if d_state.batch_stats:
    variables['batch_stats'] = d_state.batch_stats
    kwargs['update_stats'] = update_stats
    mutable.append('batch_stats')
  if not mutable:
    return d_state.apply_fn(variables, images, **kwargs), d_state.batch_stats
  logits, updates = d_state.apply_fn(variables, images, mutable=mutable, **kwargs)
  stats = updates['batch_stats'] if d_state.batch_stats else d_state.batch_stats
  if info:
    return logits, stats, updates['intermediates']['q_logits'][0]
  return logits, stats


def _num_devices(axis_name: str | None) -> int:
  return 1 if axis_name is None else jax.lax.psum(1, axis_name)  # a Python int under pmap


def _device_rows(rows: jax.Array, batch_size: int, axis_name: str | None) -> jax.Array:
  """This device's `batch_size` rows of a global batch drawn alike on every device (all of it outside pmap)."""
  if axis_name is None:
    return rows
  return jax.lax.dynamic_slice_in_dim(rows, jax.lax.axis_index(axis_name) * batch_size, batch_size)


def draw_fakes_input(key: jax.Array, batch_size: int, cfg: StepConfig) -> tuple[jax.Array, jax.Array | None]:
  """This device's rows of the global batch of latents (and uniformly drawn classes for a conditional G).

  Drawn for the whole global batch from `key` and sliced, so the numbers do not depend on the device count.
  """
  rows = batch_size * _num_devices(cfg.axis_name)
  z = _device_rows(jax.random.normal(key, (rows, cfg.latent_dim)), batch_size, cfg.axis_name)
  if not cfg.num_classes:
    return z, None
  labels = jax.random.randint(jax.random.fold_in(key, 1), (rows,), 0, cfg.num_classes)
  return z, _device_rows(labels, batch_size, cfg.axis_name)


def _pmean(tree: Any, axis_name: str | None) -> Any:
  return tree if axis_name is None else jax.lax.pmean(tree, axis_name)


def info_weight_at(cfg: StepConfig, step) -> float | jax.Array:
  """InfoGAN's weight at `step` (G updates so far): constant, or decaying linearly to 0 at `info_decay_steps`."""
  if not cfg.info_weight or not cfg.info_decay_steps:
    return cfg.info_weight
  return cfg.info_weight * jnp.clip(1.0 - step / cfg.info_decay_steps, 0.0, 1.0)


def _no_info(info_weight: float | jax.Array) -> bool:
  """True when InfoGAN is off: a weight of exactly 0 known at trace time (a traced weight means on)."""
  return isinstance(info_weight, (int, float)) and not info_weight


def d_fake_loss_fn(
  d_params: Any,
  g_params: Any,
  g_state: GState,
  d_state: DState,
  z: jax.Array,
  rng: jax.Array,
  loss_name: str = 'bce',
  axis_name: str | None = None,
  labels: jax.Array | None = None,
  info_weight: float = 0.0,
  stop_g_gradient: bool = True,
):
  """D's loss on G(z) (label 0 for BCE). G enters only through stop_gradient: no gradient reaches G.

  `stop_g_gradient=False` leaves the fakes differentiable in G's params, for the game's Jacobian (its
  cross terms); the update's gradient is with respect to D's params either way.

  With `info_weight`, plus that weight times the cross-entropy of D's Q head on the fakes' categories
  `labels` (InfoGAN: Q learns to tell G's latent categories apart).
  Returns (loss, (logits, D's new statistics, the fakes, the loss without the InfoGAN term)).
  """
  fakes, _ = generate(g_state, z, params=g_params, train=True, axis_name=axis_name, labels=labels)
  if stop_g_gradient:
    fakes = jax.lax.stop_gradient(fakes)
  if _no_info(info_weight):
    logits, stats = _discriminate(d_state, d_params, fakes, rng, axis_name, update_stats=True, labels=labels)
    loss = losses.d_fake(logits, loss_name)
    return loss, (logits, stats, fakes, loss)
  logits, stats, q = _discriminate(d_state, d_params, fakes, rng, axis_name, True, labels, info=True)
  loss = losses.d_fake(logits, loss_name)
  return loss + info_weight * losses.info_loss(q, labels), (logits, stats, fakes, loss)


def g_loss_fn(
  g_params: Any,
  d_params: Any,
  g_state: GState,
  d_state: DState,
  z: jax.Array,
  rng: jax.Array,
  loss_name: str = 'bce',
  axis_name: str | None = None,
  labels: jax.Array | None = None,
  info_weight: float = 0.0,
  stop_d_gradient: bool = True,
):
  """G's loss through D, whose params are constants here (Keras' trainable=False).

  `stop_d_gradient=False` leaves D's params differentiable, for the game's Jacobian (its cross terms);
  the update's gradient is with respect to G's params either way.

  With `info_weight`, plus that weight times the cross-entropy of D's (frozen) Q head on the
  categories `labels` G drew from: G makes its categories tell apart (InfoGAN's mutual-information bound).
  Returns (loss, (logits, G's new BatchNorm statistics, the loss without the InfoGAN term, that term's CE)).
  """
  images, new_stats = generate(g_state, z, params=g_params, train=True, axis_name=axis_name, labels=labels)
  frozen = jax.lax.stop_gradient(d_params) if stop_d_gradient else d_params
  if _no_info(info_weight):
    logits, _ = _discriminate(d_state, frozen, images, rng, axis_name, labels=labels)
    loss = losses.g_loss(logits, loss_name)
    return loss, (logits, new_stats, loss, jnp.zeros(()))
  logits, _, q = _discriminate(d_state, frozen, images, rng, axis_name, labels=labels, info=True)
  loss, info = losses.g_loss(logits, loss_name), losses.info_loss(q, labels)
  return loss + info_weight * info, (logits, new_stats, loss, info)


class _Half(NamedTuple):
  """One half (real or fake) of a D loss: the loss without penalties, D's logits, D's new statistics."""

  loss: jax.Array
  logits: jax.Array
  stats: Any


class _DLosses:
  """D's real and fake losses at given params and statistics, for one D update of one step."""

  def __init__(self, g_state, d_state, batch: Batch, rng: jax.Array, cfg: StepConfig, real_label):
    z_rng, self.drop_real, self.drop_fake, self.gp_rng = jax.random.split(rng, 4)
    self.g_state, self.d_state, self.cfg, self.real_label = g_state, d_state, cfg, real_label
    self.images, self.labels = batch['image'], batch.get('label')
    # Fakes come from one latent batch drawn before any update, as `generator.predict` does.
    self.z, self.fake_labels = draw_fakes_input(z_rng, self.images.shape[0], cfg)

  def frozen(self, d_params, stats, rng):
    """D on the real labels as a function of its input alone, for the penalties."""
    d = self.d_state.replace(batch_stats=stats)
    return lambda x: _discriminate(d, d_params, x, rng, self.cfg.axis_name, labels=self.labels)[0]

  def real(self, d_params, stats) -> tuple[jax.Array, tuple[_Half, jax.Array]]:
    """(loss + R1 penalty, (the real half, the weighted penalty))."""
    d = self.d_state.replace(batch_stats=stats)
    logits, new_stats = _discriminate(
      d, d_params, self.images, self.drop_real, self.cfg.axis_name, True, labels=self.labels
    )
    loss = losses.d_real(logits, self.cfg.loss, self.real_label)
    penalty = 0.0
    if self.cfg.r1_weight:
      penalty = self.cfg.r1_weight * losses.r1_penalty(self.frozen(d_params, stats, self.drop_real), self.images)
    return loss + penalty, (_Half(loss, logits, new_stats), penalty)

  def fake(self, d_params, stats, g_params=None, stop_g_gradient=True) -> tuple[jax.Array, tuple[_Half, jax.Array]]:
    """(loss, (the fake half, the fakes)), the fakes from `g_params` (default G's own)."""
    d = self.d_state.replace(batch_stats=stats)
    g, c = self.g_state, self.cfg
    g_params = g.params if g_params is None else g_params
    loss, (logits, new_stats, fakes, gan_loss) = d_fake_loss_fn(
      d_params,
      g_params,
      g,
      d,
      self.z,
      self.drop_fake,
      c.loss,
      c.axis_name,
      self.fake_labels,
      info_weight_at(c, g.step),
      stop_g_gradient,
    )
    return loss, (_Half(gan_loss, logits, new_stats), fakes)

  def joint(self, d_params, stats, g_params=None, scale=0.5, stop_g_gradient=True):
    """`scale` x (real loss + fake loss + penalties): (loss, (the real half, the fake half, the penalties)).

    The joint D update takes half the sum; the game's field (`game_field`) passes G's params and lets
    the fakes depend on them.
    """
    total_real, (real, penalty) = self.real(d_params, stats)
    loss_fake, (fake, fakes) = self.fake(d_params, stats, g_params, stop_g_gradient)
    if self.cfg.gp_weight:
      frozen = self.frozen(d_params, stats, self.drop_fake)
      gp = self.cfg.gp_weight * losses.gradient_penalty(frozen, self.images, fakes, self.gp_rng)
      penalty, total_real = penalty + gp, total_real + gp
    return scale * (total_real + loss_fake), (real, fake, penalty)


def _d_separate(d_state: DState, d: _DLosses) -> tuple[DState, _Half, _Half, Any, jax.Array]:
  """Two Adam steps, as Keras' `train_on_batch` twice: the real batch, then the fakes at the updated params."""
  axis = d.cfg.axis_name
  (_, (real, penalty)), grads_real = jax.value_and_grad(d.real, has_aux=True)(d_state.params, d_state.batch_stats)
  grads_real = _pmean(grads_real, axis)
  d_state = d_state.apply_gradients(grads=grads_real, batch_stats=real.stats)
  (_, (fake, _)), grads_fake = jax.value_and_grad(d.fake, has_aux=True)(d_state.params, d_state.batch_stats)
  grads_fake = _pmean(grads_fake, axis)
  d_state = d_state.apply_gradients(grads=grads_fake, batch_stats=fake.stats)
  grads = jax.tree.map(lambda a, b: 0.5 * (a + b), grads_real, grads_fake)
  return d_state, real, fake, grads, penalty


def _d_joint(d_state: DState, d: _DLosses) -> tuple[DState, _Half, _Half, Any, jax.Array]:
  """One Adam step on half of (real + fake + penalties): the usual sum's direction; Adam ignores the scale."""
  (_, (real, fake, penalty)), grads = jax.value_and_grad(d.joint, has_aux=True)(d_state.params, d_state.batch_stats)
  grads = _pmean(grads, d.cfg.axis_name)
  d_state = d_state.apply_gradients(grads=grads, batch_stats=fake.stats)
  return d_state, real, fake, grads, penalty


_D_UPDATES = {'separate': _d_separate, 'joint': _d_joint}
assert tuple(_D_UPDATES) == choices.D_UPDATES, 'train_step._D_UPDATES must implement choices.D_UPDATES'


def d_phase(
  g_state: GState, d_state: DState, batch: Batch, rng: jax.Array, cfg: StepConfig, real_label=None
) -> tuple[DState, Metrics]:
  """The discriminator's part of a step: returns the new D state; G is read, never written.

  `real_label` overrides `cfg.real_label` with a traced value (a sweep over it).
  """
  if cfg.d_update not in _D_UPDATES:
    raise ValueError(f'train.d_update must be one of {tuple(_D_UPDATES)}, got {cfg.d_update!r}')
  d = _DLosses(g_state, d_state, batch, rng, cfg, cfg.real_label if real_label is None else real_label)
  d_state, real, fake, d_grads, penalty = _D_UPDATES[cfg.d_update](d_state, d)
  return d_state, _d_metrics(real, fake, penalty, d_grads, d_state.params, cfg)


def _d_metrics(real: _Half, fake: _Half, penalty, d_grads, d_params, cfg: StepConfig) -> Metrics:
  """D's logged values: losses, accuracies and mean probabilities of both halves, penalty and norms."""
  acc_real = losses.accuracy(real.logits, is_real=True)
  acc_fake = losses.accuracy(fake.logits, is_real=False)
  metrics = {
    'd_loss': 0.5 * (real.loss + fake.loss),
    'd_acc': 0.5 * (acc_real + acc_fake),
    'd_loss_real': real.loss,
    'd_loss_fake': fake.loss,
    'd_acc_real': acc_real,
    'd_acc_fake': acc_fake,
    'd_real_prob': jnp.mean(jax.nn.sigmoid(real.logits)),
    'd_fake_prob': jnp.mean(jax.nn.sigmoid(fake.logits)),
  }
  if cfg.gp_weight or cfg.r1_weight:
    metrics['d_penalty'] = jnp.asarray(penalty)
  metrics = _pmean(metrics, cfg.axis_name)
  # Gradients are already averaged across devices, so the norms are global.
  metrics['d_grad_norm'] = optax.tree.norm(d_grads)
  metrics['d_param_norm'] = optax.tree.norm(d_params)
  return metrics


def _g_metrics(g_loss: jax.Array, g_grads: Any, g_params: Any, cfg: StepConfig) -> Metrics:
  """G's logged values: its loss (averaged across devices) and the norms of its gradient and params."""
  return {
    'g_loss': _pmean(g_loss, cfg.axis_name),
    'g_grad_norm': optax.tree.norm(g_grads),
    'g_param_norm': optax.tree.norm(g_params),
  }


def _update_ema(g_state: GState, z: jax.Array, labels: jax.Array | None, cfg: StepConfig) -> GState:
  """Moves G's parameter EMA towards the new params, and the EMA generator's own BatchNorm statistics."""
  decay = cfg.g_ema_decay
  ema = jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, g_state.ema_params, g_state.params)
  g_state = g_state.replace(ema_params=ema)
  if g_state.batch_stats:  # advance the EMA generator's running statistics on the same latents
    with_ema_stats = g_state.replace(batch_stats=g_state.ema_batch_stats)
    _, ema_stats = generate(with_ema_stats, z, params=ema, train=True, axis_name=cfg.axis_name, labels=labels)
    g_state = g_state.replace(ema_batch_stats=ema_stats)
  return g_state


def g_phase(
  g_state: GState, d_state: DState, batch_size: int, rng: jax.Array, cfg: StepConfig
) -> tuple[GState, Metrics]:
  """The generator's part of a step: returns the new G state; D is read, never written."""
  z_rng, drop_rng = jax.random.split(rng)
  z, labels = draw_fakes_input(z_rng, batch_size, cfg)
  # Gradients are taken with respect to G's params only (argnums=0).
  (_, (_, new_stats, g_loss, info)), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(
    g_state.params,
    d_state.params,
    g_state,
    d_state,
    z,
    drop_rng,
    cfg.loss,
    cfg.axis_name,
    labels,
    info_weight_at(cfg, g_state.step),
  )
  g_grads = _pmean(g_grads, cfg.axis_name)
  g_state = g_state.apply_gradients(grads=g_grads, batch_stats=new_stats)
  if g_state.ema_params:
    g_state = _update_ema(g_state, z, labels, cfg)
  metrics = _g_metrics(g_loss, g_grads, g_state.params, cfg)
  if cfg.info_weight:
    metrics['info_loss'] = _pmean(info, cfg.axis_name)  # low: G's categories are told apart
  return g_state, metrics


class _GameAux(NamedTuple):
  """What the game's field computes besides the gradients: logged values and new statistics."""

  real: _Half
  fake: _Half
  penalty: jax.Array
  g_loss: jax.Array
  g_stats: Any  # G's BatchNorm statistics after its forward pass
  z: jax.Array
  labels: jax.Array | None


def game_field(
  g_params: Any,
  d_params: Any,
  g_state: GState,
  d_state: DState,
  batch: Batch,
  rng: jax.Array,
  cfg: StepConfig,
  real_label=None,
  d_scale: float = 0.5,
) -> tuple[tuple[Any, Any], _GameAux]:
  """Both players' gradients at (G's params, D's params): ((dL_G/dG, dL_D/dD), aux).

  The update direction of the game is minus this field. L_D is `d_scale` times (real loss + fake loss
  + penalties): 0.5 is the joint D update's scaling, 1 the plain sum (`ganjax.dynamics`). Unlike the
  alternating step, nothing is stopped: the fakes depend on G's params and G's loss on D's, so that the
  field's Jacobian has its cross terms (consensus, the dynamics' eigenvalues); each gradient is still
  taken with respect to its own player's params only. Needs `d_update='joint'` and `n_critic=1`.
  """
  label = cfg.real_label if real_label is None else real_label
  d_rng, g_rng = jax.random.split(rng)
  # The field is the GAN's game without InfoGAN's term, on both sides (the game rules refuse InfoGAN).
  d = _DLosses(g_state, d_state, batch, d_rng, dataclasses.replace(cfg, info_weight=0.0), label)
  d_grads, (real, fake, penalty) = jax.grad(d.joint, has_aux=True)(
    d_params, d_state.batch_stats, g_params, d_scale, False
  )
  z_rng, drop_rng = jax.random.split(g_rng)
  z, labels = draw_fakes_input(z_rng, d.images.shape[0], cfg)
  g_grads, (_, g_stats, g_loss, _) = jax.grad(g_loss_fn, has_aux=True)(
    g_params, d_params, g_state, d_state, z, drop_rng, cfg.loss, cfg.axis_name, labels, 0.0, False
  )
  grads = _pmean((g_grads, d_grads), cfg.axis_name)
  return grads, _GameAux(real, fake, jnp.asarray(penalty), g_loss, g_stats, z, labels)


def _game_step(
  g_state: GState, d_state: DState, batch: Batch, rng: jax.Array, cfg: StepConfig, real_label=None
) -> tuple[GState, DState, Metrics]:
  """Both players at once from the game's field: extragradient and/or consensus optimisation.

  Extragradient (Korpelevich; Gidel et al. 2019): a look-ahead step of both players from the step's
  states (its optimizer states discarded), then the update of the step's states with the field at the
  look-ahead point. Consensus (Mescheder et al. 2017): each player's gradient gains gamma * J^T v,
  the gradient of gamma/2 ||v||^2 for the field v, by one vector-Jacobian product.
  """

  def field(g_params, d_params):
    return game_field(g_params, d_params, g_state, d_state, batch, rng, cfg, real_label)

  point = (g_state.params, d_state.params)
  if cfg.update_rule == 'extragradient':
    (g_grads, d_grads), _ = field(*point)
    point = (g_state.apply_gradients(grads=g_grads).params, d_state.apply_gradients(grads=d_grads).params)
  if cfg.consensus_weight:
    grads, vjp, aux = jax.vjp(field, *point, has_aux=True)
    reg = vjp(grads)
    grads = jax.tree.map(lambda v, r: v + cfg.consensus_weight * r, grads, reg)
  else:
    grads, aux = field(*point)
  g_grads, d_grads = grads
  g_state = g_state.apply_gradients(grads=g_grads, batch_stats=aux.g_stats)
  d_state = d_state.apply_gradients(grads=d_grads, batch_stats=aux.fake.stats)
  if g_state.ema_params:
    g_state = _update_ema(g_state, aux.z, aux.labels, cfg)
  metrics = _d_metrics(aux.real, aux.fake, aux.penalty, d_grads, d_state.params, cfg)
  metrics.update(_g_metrics(aux.g_loss, g_grads, g_state.params, cfg))
  return g_state, d_state, metrics


def plays_the_game(cfg: StepConfig) -> bool:
  """Whether the step updates both players from the game's field (`_game_step`) rather than in turn."""
  return cfg.update_rule == 'extragradient' or cfg.consensus_weight > 0


def train_step(
  g_state: GState, d_state: DState, batch: Batch, rng: jax.Array, cfg: StepConfig, real_label=None
) -> tuple[GState, DState, Metrics]:
  """One tutorial iteration: D on real, D on fake, then G through a frozen D.

  Args:
    g_state: generator state.
    d_state: discriminator state.
    batch: {'image': real images (B, H, W, C) in [-1, 1]} (under pmap, this
      device's slice), with 'label' (B,) for a conditional GAN; with
      `cfg.n_critic` > 1 every entry has a leading axis, one batch per D update.
    rng: key for this step only (the loop derives it with `fold_in(key, step)`),
      the same on every device.
    cfg: the static `StepConfig`.
    real_label: a traced override of `cfg.real_label` (a sweep over it); None uses the config's.

  Returns:
    The updated states and a dict of scalar metrics (global-batch values;
    D's averaged over its `n_critic` updates).
  """
  step = _game_step if plays_the_game(cfg) else _step_in_turn
  g_state, d_state, metrics = step(g_state, d_state, batch, rng, cfg, real_label)
  if cfg.dirac:  # the two parameters of the Dirac-GAN and their distance to the equilibrium (0, 0)
    theta, psi = g_state.params['theta'], d_state.params['psi']
    metrics.update({'dirac/theta': theta, 'dirac/psi': psi, 'dirac/distance': jnp.sqrt(theta**2 + psi**2)})
  return g_state, d_state, metrics


def _step_in_turn(
  g_state: GState, d_state: DState, batch: Batch, rng: jax.Array, cfg: StepConfig, real_label=None
) -> tuple[GState, DState, Metrics]:
  """D's update(s), then G's, from D's updated ('alternating') or starting ('simultaneous') state."""
  d_rng, g_rng = jax.random.split(rng)
  d_before = d_state
  if cfg.n_critic == 1:
    d_state, d_metrics = d_phase(g_state, d_state, batch, d_rng, cfg, real_label)
  else:
    all_metrics = []
    for i in range(cfg.n_critic):  # unrolled: n_critic is small and static
      one = jax.tree.map(lambda b, i=i: b[i], batch)
      d_state, m = d_phase(g_state, d_state, one, jax.random.fold_in(d_rng, i), cfg, real_label)
      all_metrics.append(m)
    d_metrics = jax.tree.map(lambda *v: jnp.mean(jnp.stack(v)), *all_metrics)
  d_seen = d_state if cfg.update_rule == 'alternating' else d_before
  batch_size = batch['image'].shape[1 if cfg.n_critic > 1 else 0]
  g_state, g_metrics = g_phase(g_state, d_seen, batch_size, g_rng, cfg)
  return g_state, d_state, {**d_metrics, **g_metrics}


def make_train_step(config: ml_collections.ConfigDict, members: bool = False):
  """The data-parallel step: `train_step` under `pmap` over the local devices, states donated.

  Call it as `step(g_state, d_state, batch, rng)` with states replicated
  (leading device axis, see `replicate`), every entry of `batch` of shape
  (devices, B / devices, ...) (with `train.n_critic` > 1:
  (devices, n_critic, B / devices, ...)) and `rng` the step's key, the same
  for all devices. With `members=True` (a sweep), states and batch carry a
  member axis after the device axis, and the call is
  `step(g_state, d_state, batch, rngs, real_labels)` with one key and one
  real label per member: the members train side by side.
  """
  cfg = StepConfig.from_config(config, axis_name=AXIS)
  if members:
    one = lambda g, d, batch, rng, real_label: train_step(g, d, batch, rng, cfg, real_label)  # noqa: E731
    step = jax.vmap(one) if config.sweep.mode == 'vmap' else functools.partial(_unrolled, one)
    in_axes = (0, 0, 0, None, None)
  else:
    step = functools.partial(train_step, cfg=cfg)
    in_axes = (0, 0, 0, None)
  return jax.pmap(step, axis_name=AXIS, in_axes=in_axes, donate_argnums=(0, 1))


def _unrolled(step, *stacked):
  """The members' steps one after another in one program: `sweep.mode='unroll'`.

  Same results as vmap. With lax.conv in D (`model.d_conv_impl='xla'`) it
  avoids the grouped convolutions that vmapping a conv over stacked weights
  becomes, slow on XLA:CPU (docs/distributed.md, Sweeps).
  """
  num = jax.tree.leaves(stacked[0])[0].shape[0]
  outs = [step(*pick_member(stacked, k)) for k in range(num)]
  return stack(outs)


def replicate(tree: Any) -> Any:
  """One copy of `tree` per local device, laid out as the pmapped step returns its states."""
  return jax_utils.replicate(tree, axis_name=AXIS)


def unreplicate(tree: Any) -> Any:
  """The copy on this process' first device (on several hosts, other processes' copies are not addressable)."""
  return jax.tree.map(lambda x: x.addressable_data(0)[0], tree)
