"""The one pure, jitted GAN train step: D's and G's phases, and its data-parallel (pmapped) wrapper.

One call of `train_step` is one iteration of the tutorial's loop:

1. D update on the real batch (label `real_label`);
2. D update on `stop_gradient(G(z))` (label 0), a second Adam step
   (Keras' `train_on_batch` twice), or, with `d_update='joint'`, one update on
   the mean of both losses;
3. G update through D with D's params held constant (`stop_gradient`) and
   gradients taken only with respect to G's params. That is what Keras'
   `discriminator.trainable = False` meant in the tutorial. `train.g_steps`
   repeats it on fresh latents (PacGAN's code takes two). `train.g_reuses_fakes`
   updates G on step 2's fakes instead (PyTorch's DCGAN example), from one
   forward pass of G that serves both players.

Metrics are computed in the same forward passes as the updates, so they are
the values before each update, as Keras' `train_on_batch` reports them.

`train.update_rule` 'simultaneous' lets G's update see D's starting state,
and 'optimistic' does so with optimistic Adam/GD. 'extragradient' and
consensus optimisation (`loss.consensus_weight`) instead update both players
from the game's joint field (`game.game_field`, `game.game_step`).

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

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
from flax import jax_utils

from ganjax import choices
from ganjax.game import game_step, plays_the_game
from ganjax.objectives import (
  Batch,
  DLosses,
  Half,
  Metrics,
  StepConfig,
  d_fakes_input,
  d_metrics,
  draw_fakes_input,
  g_loss_fn,
  g_loss_on_images,
  g_metrics,
  info_weight_at,
  pmean,
)
from ganjax.states import DState, GState, generate, pick_member, stack, update_ema

AXIS = 'batch'  # the pmap axis of the data-parallel step


def _d_separate(d_state: DState, d: DLosses) -> tuple[DState, Half, Half, Any, jax.Array]:
  """Two Adam steps, as Keras' `train_on_batch` twice: the real batch, then the fakes at the updated params."""
  axis = d.cfg.axis_name
  (_, (real, penalty)), grads_real = jax.value_and_grad(d.real, has_aux=True)(d_state.params, d_state.batch_stats)
  grads_real = pmean(grads_real, axis)
  d_state = d_state.apply_gradients(grads=grads_real, batch_stats=real.stats)
  (_, (fake, _)), grads_fake = jax.value_and_grad(d.fake, has_aux=True)(d_state.params, d_state.batch_stats)
  grads_fake = pmean(grads_fake, axis)
  d_state = d_state.apply_gradients(grads=grads_fake, batch_stats=fake.stats)
  grads = jax.tree.map(lambda a, b: 0.5 * (a + b), grads_real, grads_fake)
  return d_state, real, fake, grads, penalty


def _d_joint(d_state: DState, d: DLosses) -> tuple[DState, Half, Half, Any, jax.Array]:
  """One Adam step on half of (real + fake + penalties): the usual sum's direction; Adam ignores the scale."""
  (_, (real, fake, penalty)), grads = jax.value_and_grad(d.joint, has_aux=True)(d_state.params, d_state.batch_stats)
  grads = pmean(grads, d.cfg.axis_name)
  d_state = d_state.apply_gradients(grads=grads, batch_stats=fake.stats)
  return d_state, real, fake, grads, penalty


_D_UPDATES = {'separate': _d_separate, 'joint': _d_joint}
assert tuple(_D_UPDATES) == choices.D_UPDATES, 'train_step._D_UPDATES must implement choices.D_UPDATES'


class SharedPass(NamedTuple):
  """G's one forward pass on the latents of D's fake batch, kept for G's update (`train.g_reuses_fakes`)."""

  fakes: jax.Array
  pullback: Any  # G's images' gradient -> G's params' gradient
  stats: Any  # G's BatchNorm statistics after the pass
  z: jax.Array
  labels: jax.Array | None


def shared_pass(g_state: GState, d_rng: jax.Array, batch_size: int, cfg: StepConfig) -> SharedPass:
  """G on the latents that `d_phase(..., d_rng, ...)` draws for its fake batch, differentiable in G's params."""
  z, labels = d_fakes_input(d_rng, batch_size, cfg)

  def g_of(params):
    return generate(g_state, z, params=params, train=True, axis_name=cfg.axis_name, labels=labels)

  fakes, pullback, stats = jax.vjp(g_of, g_state.params, has_aux=True)
  return SharedPass(fakes, pullback, stats, z, labels)


def d_phase(
  g_state: GState, d_state: DState, batch: Batch, rng: jax.Array, cfg: StepConfig, fakes: jax.Array | None = None
) -> tuple[DState, Metrics]:
  """The discriminator's part of a step: returns the new D state; G is read, never written.

  `fakes`: G's images on this phase's latents, already computed (`shared_pass`).
  """
  if cfg.d_update not in _D_UPDATES:
    raise ValueError(f'train.d_update must be one of {tuple(_D_UPDATES)}, got {cfg.d_update!r}')
  d = DLosses(g_state, d_state, batch, rng, cfg)
  d.fakes = fakes
  d_state, real, fake, d_grads, penalty = _D_UPDATES[cfg.d_update](d_state, d)
  return d_state, d_metrics(real, fake, penalty, d_grads, d_state.params, cfg)


def g_phase(
  g_state: GState,
  d_state: DState,
  batch_size: int,
  rng: jax.Array,
  cfg: StepConfig,
  shared: SharedPass | None = None,
) -> tuple[GState, Metrics]:
  """The generator's part of a step: returns the new G state; D is read, never written.

  `shared`: G's update on D's fakes from that pass instead of fresh latents drawn from `rng`.
  """
  z_rng, drop_rng = jax.random.split(rng)
  weight = info_weight_at(cfg, g_state.step)
  if shared is None:
    z, labels = draw_fakes_input(z_rng, batch_size, cfg)
    # Gradients are taken with respect to G's params only (argnums=0).
    (_, (_, new_stats, g_loss, info)), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(
      g_state.params, d_state.params, g_state, d_state, z, drop_rng, cfg.loss, cfg.axis_name, labels, weight
    )
  else:
    z, labels, new_stats = shared.z, shared.labels, shared.stats
    (_, (_, g_loss, info)), image_grads = jax.value_and_grad(g_loss_on_images, has_aux=True)(
      shared.fakes, d_state.params, d_state, drop_rng, cfg.loss, cfg.axis_name, labels, weight
    )
    (g_grads,) = shared.pullback(image_grads)  # back through the pass D's update already used
  g_grads = pmean(g_grads, cfg.axis_name)
  g_state = g_state.apply_gradients(grads=g_grads, batch_stats=new_stats)
  if g_state.ema_params:
    g_state = update_ema(g_state, z, labels, cfg.g_ema_decay, cfg.axis_name, cfg.ema_batch_stats)
  metrics = g_metrics(g_loss, g_grads, g_state.params, cfg)
  if cfg.info_weight:
    metrics['info_loss'] = pmean(info, cfg.axis_name)  # low: G's categories are told apart
  return g_state, metrics


def train_step(
  g_state: GState, d_state: DState, batch: Batch, rng: jax.Array, cfg: StepConfig
) -> tuple[GState, DState, Metrics]:
  """One tutorial iteration: D on real, D on fake, then G through a frozen D.

  Args:
    g_state: generator state.
    d_state: discriminator state.
    batch: {'image': real images (B, H, W, C) in [-1, 1]} (under pmap, this
      device's slice), with 'label' (B,) for a conditional GAN; with
      `cfg.n_critic` > 1 every entry has a leading axis, one batch per D update.
    rng: key for this step only (`make_train_step` folds G's step count into the run's key),
      the same on every device.
    cfg: the static `StepConfig` (a sweep's members keep their real label in `d_state`).

  Returns:
    The updated states and a dict of scalar metrics (global-batch values;
    D's averaged over its `n_critic` updates, G's over its `g_steps`).
  """
  step = game_step if plays_the_game(cfg) else _step_in_turn
  g_state, d_state, metrics = step(g_state, d_state, batch, rng, cfg)
  if cfg.dirac:  # the two parameters of the Dirac-GAN and their distance to the equilibrium (0, 0)
    theta, psi = g_state.params['theta'], d_state.params['psi']
    metrics.update({'dirac/theta': theta, 'dirac/psi': psi, 'dirac/distance': jnp.sqrt(theta**2 + psi**2)})
  return g_state, d_state, metrics


def _step_in_turn(
  g_state: GState, d_state: DState, batch: Batch, rng: jax.Array, cfg: StepConfig
) -> tuple[GState, DState, Metrics]:
  """D's update(s), then G's, from D's updated ('alternating') or starting ('simultaneous') state."""
  d_rng, g_rng = jax.random.split(rng)
  d_before = d_state
  batch_size = batch['image'].shape[1 if cfg.n_critic > 1 else 0]
  if cfg.g_reuses_fakes and (cfg.n_critic, cfg.g_steps) != (1, 1):
    raise ValueError('train.g_reuses_fakes needs train.n_critic=1 and train.g_steps=1')
  shared = shared_pass(g_state, d_rng, batch_size, cfg) if cfg.g_reuses_fakes else None  # one pass of G, both players
  if cfg.n_critic == 1:
    d_state, d_logged = d_phase(g_state, d_state, batch, d_rng, cfg, None if shared is None else shared.fakes)
  else:
    all_metrics = []
    for i in range(cfg.n_critic):  # unrolled: n_critic is small and static
      one = jax.tree.map(lambda b, i=i: b[i], batch)
      d_state, m = d_phase(g_state, d_state, one, jax.random.fold_in(d_rng, i), cfg)
      all_metrics.append(m)
    d_logged = _mean_metrics(all_metrics)
  d_seen = d_state if cfg.update_rule == 'alternating' else d_before
  g_logged = []
  for i in range(cfg.g_steps):  # unrolled, as D's; each on fresh latents, the first on the one-update step's key
    g_state, m = g_phase(g_state, d_seen, batch_size, jax.random.fold_in(g_rng, i) if i else g_rng, cfg, shared)
    g_logged.append(m)
  return g_state, d_state, {**d_logged, **_mean_metrics(g_logged)}


def _mean_metrics(all_metrics: list[Metrics]) -> Metrics:
  """The metrics of several updates in one step, averaged (one update's as they are)."""
  if len(all_metrics) == 1:
    return all_metrics[0]
  return jax.tree.map(lambda *v: jnp.mean(jnp.stack(v)), *all_metrics)


def make_train_step(config: ml_collections.ConfigDict, members: bool = False):
  """The data-parallel step: `train_step` under `pmap` over the local devices, states donated.

  Call it as `step(g_state, d_state, batch, rng)` with states replicated
  (leading device axis, see `replicate`), every entry of `batch` of shape
  (devices, B / devices, ...) (with `train.n_critic` > 1:
  (devices, n_critic, B / devices, ...)) and `rng` the run's training key, the
  same for all devices and every step: the step folds G's step count into it
  inside the compiled program (as big_vision does), so the host passes nothing
  per step. With `members=True` (a sweep), states and batch carry a member
  axis after the device axis, and `rng` holds one key per member: the members
  train side by side.
  """
  cfg = StepConfig.from_config(config, axis_name=AXIS)

  def one(g, d, batch, rng):
    return train_step(g, d, batch, jax.random.fold_in(rng, g.step), cfg)

  step = one
  if members:
    step = jax.vmap(one) if config.sweep.mode == 'vmap' else functools.partial(_unrolled, one)
  return jax.pmap(step, axis_name=AXIS, in_axes=(0, 0, 0, None), donate_argnums=(0, 1))


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
