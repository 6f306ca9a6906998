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

Data parallelism: `make_train_step` runs the step under `jax.pmap` over the
local devices with axis name `AXIS`, each device holding a slice of the
global batch. With `axis_name` set, gradients and metrics are averaged across
devices, BatchNorm and the minibatch-std feature use global-batch
statistics, and the latent noise of the global batch is drawn from the
step's key and sliced, so the trajectory does not depend on the device count
(up to floating-point reduction order). Dropout and instance-noise masks are
drawn per device (the key folded with the device index): those two options
match across device counts in distribution only.
"""

import functools
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import jax_utils
from flax.training import train_state

from ganjax import losses, models

Metrics = dict[str, jax.Array]

AXIS = 'batch'  # the pmap axis of the data-parallel step


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


def _adam(config: ml_collections.ConfigDict, lr: float) -> optax.GradientTransformation:
  if config.sweep.field in ('opt.g_lr', 'opt.d_lr'):
    # A learning-rate sweep keeps the rate in the optimizer state, so vmapped members differ by data only.
    return optax.inject_hyperparams(optax.adam)(
      learning_rate=lr, b1=config.opt.b1, b2=config.opt.b2, eps=config.opt.eps
    )
  return optax.adam(lr, b1=config.opt.b1, b2=config.opt.b2, eps=config.opt.eps)


def create_states(config: ml_collections.ConfigDict, rng: jax.Array) -> tuple[GState, DState]:
  """Initialises G and D params and their Adam states from `rng`."""
  g_model, d_model = models.build_models(config)
  g_rng, d_rng = jax.random.split(rng)
  z = jnp.zeros((1, config.model.latent_dim), jnp.float32)
  x = jnp.zeros((1, *config.data.image_shape), jnp.float32)
  labels = jnp.zeros((1,), jnp.int32) if config.model.num_classes else None
  g_vars = g_model.init(g_rng, z, train=False, labels=labels)
  ema = config.train.g_ema_decay > 0
  d_vars = d_model.init(d_rng, x, train=False, labels=labels)
  g_state = GState.create(
    apply_fn=g_model.apply,
    params=g_vars['params'],
    tx=_adam(config, config.opt.g_lr),
    batch_stats=g_vars.get('batch_stats', flax.core.FrozenDict()),
    ema_params=g_vars['params'] if ema else flax.core.FrozenDict(),
    ema_batch_stats=g_vars.get('batch_stats', flax.core.FrozenDict()) if ema else flax.core.FrozenDict(),
  )
  d_state = DState.create(
    apply_fn=d_model.apply,
    params=d_vars['params'],
    tx=_adam(config, config.opt.d_lr),
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


def num_classes(g_state: GState) -> int:
  """The number of classes of a conditional G (its label embedding's rows); 0 when unconditional."""
  embed = g_state.params.get('Embed_0')
  return 0 if embed is None else embed['embedding'].shape[0]


def _discriminate(
  d_state: DState,
  params: Any,
  images: jax.Array,
  rng: jax.Array,
  axis_name: str | None = None,
  update_stats: bool = False,
  labels: jax.Array | None = None,
) -> tuple[jax.Array, Any]:
  """D's logits and its (spectral-norm) statistics, advanced one power iteration when `update_stats`."""
  if axis_name is not None:  # a different dropout mask on each device's slice
    rng = jax.random.fold_in(rng, jax.lax.axis_index(axis_name))
  drop_rng, noise_rng = jax.random.split(rng)
  rngs = {'dropout': drop_rng, 'noise': noise_rng}
  kwargs = {'train': True, 'axis_name': axis_name, 'labels': labels, 'rngs': rngs}
  if not d_state.batch_stats:
    return d_state.apply_fn({'params': params}, images, **kwargs), d_state.batch_stats
  variables = {'params': params, 'batch_stats': d_state.batch_stats}
  logits, updates = d_state.apply_fn(variables, images, update_stats=update_stats, mutable=['batch_stats'], **kwargs)
  return logits, updates['batch_stats']


def _num_devices(axis_name: str | None) -> int:
  return 1 if axis_name is None else jax.lax.psum(1, axis_name)  # a Python int under pmap


def _device_rows(rows: jax.Array, batch_size: int, axis_name: str | None) -> jax.Array:
  """This device's `batch_size` rows of a global batch drawn alike on every device (all of it outside pmap)."""
  if axis_name is None:
    return rows
  return jax.lax.dynamic_slice_in_dim(rows, jax.lax.axis_index(axis_name) * batch_size, batch_size)


def _latent(g_state: GState, key: jax.Array, batch_size: int, axis_name: str | None = None) -> jax.Array:
  """This device's rows of the global latent batch drawn from `key` (`batch_size` rows per device)."""
  latent_dim = g_state.params['Dense_0']['kernel'].shape[0]  # static under jit
  z = jax.random.normal(key, (batch_size * _num_devices(axis_name), latent_dim))
  return _device_rows(z, batch_size, axis_name)


def _labels(g_state: GState, key: jax.Array, batch_size: int, axis_name: str | None = None) -> jax.Array | None:
  """This device's rows of the global batch of uniformly drawn class labels; None for an unconditional G."""
  classes = num_classes(g_state)
  if not classes:
    return None
  labels = jax.random.randint(key, (batch_size * _num_devices(axis_name),), 0, classes)
  return _device_rows(labels, batch_size, axis_name)


def _images_labels(batch: jax.Array | tuple) -> tuple[jax.Array, jax.Array | None]:
  """A real batch is images, or (images, labels) for a conditional GAN."""
  return batch if isinstance(batch, tuple) else (batch, None)


def _pmean(tree: Any, axis_name: str | None) -> Any:
  return tree if axis_name is None else jax.lax.pmean(tree, axis_name)


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
):
  """D's loss on G(z) (label 0 for BCE). G enters only through stop_gradient: no gradient reaches G.

  Returns (loss, (logits, D's new statistics, the fakes)).
  """
  fakes, _ = generate(g_state, z, params=g_params, train=True, axis_name=axis_name, labels=labels)
  fakes = jax.lax.stop_gradient(fakes)
  logits, stats = _discriminate(d_state, d_params, fakes, rng, axis_name, update_stats=True, labels=labels)
  return losses.d_fake(logits, loss_name), (logits, stats, fakes)


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
):
  """G's loss through D, whose params are constants here (Keras' trainable=False)."""
  images, new_stats = generate(g_state, z, params=g_params, train=True, axis_name=axis_name, labels=labels)
  logits, _ = _discriminate(d_state, jax.lax.stop_gradient(d_params), images, rng, axis_name, labels=labels)
  return losses.g_loss(logits, loss_name), (logits, new_stats)


def d_phase(
  g_state: GState,
  d_state: DState,
  batch: jax.Array,
  rng: jax.Array,
  d_update: str,
  real_label: float | jax.Array,
  loss_name: str = 'bce',
  axis_name: str | None = None,
  gp_weight: float = 0.0,
  r1_weight: float = 0.0,
) -> tuple[DState, Metrics]:
  """The discriminator's part of a step: returns the new D state; G is read, never written.

  `gp_weight` (joint updates only) adds the WGAN-GP penalty on interpolates
  of the real batch and the fakes; `r1_weight` the R1 penalty on the real batch.
  """
  z_rng, drop_real, drop_fake, gp_rng = jax.random.split(rng, 4)
  batch, real_labels = _images_labels(batch)
  # Fakes come from one latent batch drawn before any update, as `generator.predict` does.
  z = _latent(g_state, z_rng, batch.shape[0], axis_name)
  fake_labels = _labels(g_state, jax.random.fold_in(z_rng, 1), batch.shape[0], axis_name)

  def frozen_d(d_params, stats, rng):  # D on real labels as a function of its input, for the penalties
    d = d_state.replace(batch_stats=stats)
    return lambda x: _discriminate(d, d_params, x, rng, axis_name, labels=real_labels)[0]

  def real_loss(d_params, stats):
    d = d_state.replace(batch_stats=stats)
    logits, new_stats = _discriminate(d, d_params, batch, drop_real, axis_name, True, labels=real_labels)
    loss = losses.d_real(logits, loss_name, real_label)
    penalty = r1_weight * losses.r1_penalty(frozen_d(d_params, stats, drop_real), batch) if r1_weight else 0.0
    return loss + penalty, (loss, logits, new_stats, penalty)

  def fake_loss(d_params, stats):
    d = d_state.replace(batch_stats=stats)
    loss, (logits, new_stats, fakes) = d_fake_loss_fn(
      d_params, g_state.params, g_state, d, z, drop_fake, loss_name, axis_name, fake_labels
    )
    return loss, (logits, new_stats, fakes)

  if d_update == 'separate':
    (_, aux), grads_real = jax.value_and_grad(real_loss, has_aux=True)(d_state.params, d_state.batch_stats)
    loss_real, logits_real, stats, penalty = aux
    grads_real = _pmean(grads_real, axis_name)
    d_state = d_state.apply_gradients(grads=grads_real, batch_stats=stats)
    (loss_fake, (logits_fake, stats, _)), grads_fake = jax.value_and_grad(fake_loss, has_aux=True)(
      d_state.params, d_state.batch_stats
    )
    grads_fake = _pmean(grads_fake, axis_name)
    d_state = d_state.apply_gradients(grads=grads_fake, batch_stats=stats)
    d_grads = jax.tree.map(lambda a, b: 0.5 * (a + b), grads_real, grads_fake)
  elif d_update == 'joint':

    def joint_loss(d_params):
      # Half of (real + fake + penalties): the usual sum's gradient direction; Adam ignores the scale.
      total_real, (l_real, lg_real, _, pen) = real_loss(d_params, d_state.batch_stats)
      l_fake, (lg_fake, stats, fakes) = fake_loss(d_params, d_state.batch_stats)
      if gp_weight:
        gp = losses.gradient_penalty(frozen_d(d_params, d_state.batch_stats, drop_fake), batch, fakes, gp_rng)
        pen = pen + gp_weight * gp
        total_real = total_real + gp_weight * gp
      return 0.5 * (total_real + l_fake), (l_real, l_fake, lg_real, lg_fake, stats, pen)

    (_, aux), d_grads = jax.value_and_grad(joint_loss, has_aux=True)(d_state.params)
    loss_real, loss_fake, logits_real, logits_fake, stats, penalty = aux
    d_grads = _pmean(d_grads, axis_name)
    d_state = d_state.apply_gradients(grads=d_grads, batch_stats=stats)
  else:
    raise ValueError(f"train.d_update must be 'separate' or 'joint', got {d_update!r}")

  acc_real = losses.accuracy(logits_real, is_real=True)
  acc_fake = losses.accuracy(logits_fake, is_real=False)
  metrics = {
    'd_loss': 0.5 * (loss_real + loss_fake),
    'd_acc': 0.5 * (acc_real + acc_fake),
    'd_loss_real': loss_real,
    'd_loss_fake': loss_fake,
    'd_acc_real': acc_real,
    'd_acc_fake': acc_fake,
    'd_real_prob': jnp.mean(jax.nn.sigmoid(logits_real)),
    'd_fake_prob': jnp.mean(jax.nn.sigmoid(logits_fake)),
  }
  if gp_weight or r1_weight:
    metrics['d_penalty'] = jnp.asarray(penalty)
  metrics = _pmean(metrics, axis_name)
  # Gradients are already averaged across devices, so the norms are global.
  metrics['d_grad_norm'] = optax.tree.norm(d_grads)
  metrics['d_param_norm'] = optax.tree.norm(d_state.params)
  return d_state, metrics


def g_phase(
  g_state: GState,
  d_state: DState,
  batch_size: int,
  rng: jax.Array,
  loss_name: str = 'bce',
  axis_name: str | None = None,
  g_ema_decay: float = 0.0,
) -> tuple[GState, Metrics]:
  """The generator's part of a step: returns the new G state; D is read, never written."""
  z_rng, drop_rng = jax.random.split(rng)
  z = _latent(g_state, z_rng, batch_size, axis_name)
  labels = _labels(g_state, jax.random.fold_in(z_rng, 1), batch_size, axis_name)
  # Gradients are taken with respect to G's params only (argnums=0).
  (g_loss, (_, new_stats)), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(
    g_state.params, d_state.params, g_state, d_state, z, drop_rng, loss_name, axis_name, labels
  )
  g_grads = _pmean(g_grads, axis_name)
  g_state = g_state.apply_gradients(grads=g_grads, batch_stats=new_stats)
  if g_state.ema_params:
    ema = jax.tree.map(lambda e, p: g_ema_decay * e + (1.0 - g_ema_decay) * p, g_state.ema_params, g_state.params)
    g_state = g_state.replace(ema_params=ema)
    if g_state.batch_stats:  # advance the EMA generator's running statistics on the same latents
      _, ema_stats = generate(
        g_state.replace(batch_stats=g_state.ema_batch_stats),
        z,
        params=ema,
        train=True,
        axis_name=axis_name,
        labels=labels,
      )
      g_state = g_state.replace(ema_batch_stats=ema_stats)
  metrics = {
    'g_loss': _pmean(g_loss, axis_name),
    'g_grad_norm': optax.tree.norm(g_grads),
    'g_param_norm': optax.tree.norm(g_state.params),
  }
  return g_state, metrics


def train_step(
  g_state: GState,
  d_state: DState,
  batch: jax.Array,
  rng: jax.Array,
  *,
  d_update: str = 'separate',
  real_label: float | jax.Array = 1.0,
  loss_name: str = 'bce',
  axis_name: str | None = None,
  n_critic: int = 1,
  update_order: str = 'alternating',
  gp_weight: float = 0.0,
  r1_weight: float = 0.0,
  g_ema_decay: float = 0.0,
) -> tuple[GState, DState, Metrics]:
  """One tutorial iteration: D on real, D on fake, then G through a frozen D.

  Args:
    g_state: generator state.
    d_state: discriminator state.
    batch: real images (B, H, W, C) in [-1, 1]; under pmap, this device's slice.
      With `n_critic` > 1, (n_critic, B, H, W, C): one batch per D update.
      For a conditional GAN, a tuple (images, labels) with labels (B,) or (n_critic, B).
    rng: key for this step only (the loop derives it with `fold_in(key, step)`),
      the same on every device.
    d_update: 'separate' (two Adam steps, the tutorial) or 'joint' (one step
      on the mean of the real and fake losses).
    real_label: target for real images; < 1 is one-sided label smoothing.
    loss_name: one of `losses.LOSSES`; 'bce' is the tutorial's.
    axis_name: the pmap axis to average over; None outside pmap.
    n_critic: D updates before the G update.
    update_order: 'alternating' (G's update sees the updated D, the tutorial)
      or 'simultaneous' (both updates computed from the states at the start).
    gp_weight, r1_weight: weights of the WGAN-GP and R1 penalties on D.
    g_ema_decay: decay of G's parameter EMA (used only when the state keeps one).

  Returns:
    The updated states and a dict of scalar metrics (global-batch values;
    D's averaged over its `n_critic` updates).
  """
  d_rng, g_rng = jax.random.split(rng)
  d_before = d_state
  phase = functools.partial(
    d_phase,
    d_update=d_update,
    real_label=real_label,
    loss_name=loss_name,
    axis_name=axis_name,
    gp_weight=gp_weight,
    r1_weight=r1_weight,
  )
  if n_critic == 1:
    d_state, d_metrics = phase(g_state, d_state, batch, d_rng)
  else:
    all_metrics = []
    for i in range(n_critic):  # unrolled: n_critic is small and static
      d_state, m = phase(g_state, d_state, jax.tree.map(lambda b, i=i: b[i], batch), jax.random.fold_in(d_rng, i))
      all_metrics.append(m)
    d_metrics = jax.tree.map(lambda *v: jnp.mean(jnp.stack(v)), *all_metrics)
  d_seen = d_state if update_order == 'alternating' else d_before
  images = _images_labels(batch)[0]
  batch_size = images.shape[1] if n_critic > 1 else images.shape[0]
  g_state, g_metrics = g_phase(g_state, d_seen, batch_size, g_rng, loss_name, axis_name, g_ema_decay)
  return g_state, d_state, {**d_metrics, **g_metrics}


def make_train_step(config: ml_collections.ConfigDict, members: bool = False):
  """The data-parallel step: `train_step` under `pmap` over the local devices, states donated.

  Call it as `step(g_state, d_state, batch, rng)` with states replicated
  (leading device axis, see `replicate`), `batch` of shape
  (devices, B / devices, ...) (with `train.n_critic` > 1:
  (devices, n_critic, B / devices, ...)) and `rng` the step's key, the same
  for all devices. With `members=True` (a sweep), states and batch carry a
  member axis after the device axis, and the call is
  `step(g_state, d_state, batch, rngs, real_labels)` with one key and one
  real label per member: the members train side by side.
  """
  t, loss = config.train, config.loss
  bound = functools.partial(
    train_step,
    d_update=t.d_update,
    loss_name=loss.name,
    axis_name=AXIS,
    n_critic=t.n_critic,
    update_order=t.update_order,
    gp_weight=loss.gp_weight,
    r1_weight=loss.r1_weight,
    g_ema_decay=t.g_ema_decay,
  )
  if members:
    one = lambda g, d, batch, rng, real_label: bound(g, d, batch, rng, real_label=real_label)  # noqa: E731
    step = jax.vmap(one) if config.sweep.mode == 'vmap' else functools.partial(_unrolled, one)
    in_axes = (0, 0, 0, None, None)
  else:
    step = functools.partial(bound, real_label=loss.real_label)
    in_axes = (0, 0, 0, None)
  return jax.pmap(step, axis_name=AXIS, in_axes=in_axes, donate_argnums=(0, 1))


def _unrolled(step, *stacked):
  """The members' steps one after another in one program: `sweep.mode='unroll'`.

  Same results as vmap. With lax.conv in D (`model.d_conv_impl='xla'`) it
  avoids the grouped convolutions that vmapping a conv over stacked weights
  becomes on XLA:CPU (measured 2.3x slower there); with the default
  PatchConv both modes took the same time.
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
