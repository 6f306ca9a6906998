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
"""

import functools
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax.training import train_state

from ganjax import losses, models

Metrics = dict[str, jax.Array]


class GState(train_state.TrainState):
  """Generator state: TrainState plus BatchNorm statistics (empty without BN)."""

  batch_stats: Any = flax.core.FrozenDict()


def _adam(config: ml_collections.ConfigDict, lr: float) -> optax.GradientTransformation:
  return optax.adam(lr, b1=config.opt.b1, b2=config.opt.b2, eps=config.opt.eps)


def create_states(config: ml_collections.ConfigDict, rng: jax.Array) -> tuple[GState, train_state.TrainState]:
  """Initialises G and D params and their Adam states from `rng`."""
  g_model, d_model = models.build_models(config)
  g_rng, d_rng = jax.random.split(rng)
  z = jnp.zeros((1, config.model.latent_dim), jnp.float32)
  x = jnp.zeros((1, *config.data.image_shape), jnp.float32)
  g_vars = g_model.init(g_rng, z, train=False)
  d_vars = d_model.init(d_rng, x, train=False)
  g_state = GState.create(
    apply_fn=g_model.apply,
    params=g_vars['params'],
    tx=_adam(config, config.opt.g_lr),
    batch_stats=g_vars.get('batch_stats', flax.core.FrozenDict()),
  )
  d_state = train_state.TrainState.create(
    apply_fn=d_model.apply, params=d_vars['params'], tx=_adam(config, config.opt.d_lr)
  )
  return g_state, d_state


def generate(g_state: GState, z: jax.Array, params: Any = None, train: bool = False) -> tuple[jax.Array, Any]:
  """Runs G on `z`; returns (images, new batch_stats). `params` defaults to G's own."""
  params = g_state.params if params is None else params
  variables = {'params': params}
  if g_state.batch_stats:
    variables['batch_stats'] = g_state.batch_stats
    if train:
      images, updates = g_state.apply_fn(variables, z, train=True, mutable=['batch_stats'])
      return images, updates['batch_stats']
  return g_state.apply_fn(variables, z, train=train), g_state.batch_stats


def _discriminate(d_state: train_state.TrainState, params: Any, images: jax.Array, rng: jax.Array) -> jax.Array:
  drop_rng, noise_rng = jax.random.split(rng)
  return d_state.apply_fn({'params': params}, images, train=True, rngs={'dropout': drop_rng, 'noise': noise_rng})


def _latent(g_state: GState, key: jax.Array, batch_size: int) -> jax.Array:
  latent_dim = g_state.params['Dense_0']['kernel'].shape[0]  # static under jit
  return jax.random.normal(key, (batch_size, latent_dim))


def d_fake_loss_fn(
  d_params: Any,
  g_params: Any,
  g_state: GState,
  d_state: train_state.TrainState,
  z: jax.Array,
  rng: jax.Array,
  loss_name: str = 'bce',
):
  """D's loss on G(z) (label 0 for BCE). G enters only through stop_gradient: no gradient reaches G."""
  fakes, _ = generate(g_state, z, params=g_params, train=True)
  logits = _discriminate(d_state, d_params, jax.lax.stop_gradient(fakes), rng)
  return losses.d_fake(logits, loss_name), logits


def g_loss_fn(
  g_params: Any,
  d_params: Any,
  g_state: GState,
  d_state: train_state.TrainState,
  z: jax.Array,
  rng: jax.Array,
  loss_name: str = 'bce',
):
  """G's loss through D, whose params are constants here (Keras' trainable=False)."""
  images, new_stats = generate(g_state, z, params=g_params, train=True)
  logits = _discriminate(d_state, jax.lax.stop_gradient(d_params), images, rng)
  return losses.g_loss(logits, loss_name), (logits, new_stats)


def d_phase(
  g_state: GState,
  d_state: train_state.TrainState,
  batch: jax.Array,
  rng: jax.Array,
  d_update: str,
  real_label: float,
  loss_name: str = 'bce',
) -> tuple[train_state.TrainState, Metrics]:
  """The discriminator's part of a step: returns the new D state; G is read, never written."""
  z_rng, drop_real, drop_fake = jax.random.split(rng, 3)
  # Fakes come from one latent batch drawn before any update, as `generator.predict` does.
  z = _latent(g_state, z_rng, batch.shape[0])

  def real_loss(d_params):
    logits = _discriminate(d_state, d_params, batch, drop_real)
    return losses.d_real(logits, loss_name, real_label), logits

  def fake_loss(d_params):
    return d_fake_loss_fn(d_params, g_state.params, g_state, d_state, z, drop_fake, loss_name)

  if d_update == 'separate':
    (loss_real, logits_real), grads_real = jax.value_and_grad(real_loss, has_aux=True)(d_state.params)
    d_state = d_state.apply_gradients(grads=grads_real)
    (loss_fake, logits_fake), grads_fake = jax.value_and_grad(fake_loss, has_aux=True)(d_state.params)
    d_state = d_state.apply_gradients(grads=grads_fake)
    d_grads = jax.tree.map(lambda a, b: 0.5 * (a + b), grads_real, grads_fake)
  elif d_update == 'joint':

    def joint_loss(d_params):
      (l_real, lg_real), (l_fake, lg_fake) = real_loss(d_params), fake_loss(d_params)
      return 0.5 * (l_real + l_fake), (l_real, l_fake, lg_real, lg_fake)

    (_, aux), d_grads = jax.value_and_grad(joint_loss, has_aux=True)(d_state.params)
    loss_real, loss_fake, logits_real, logits_fake = aux
    d_state = d_state.apply_gradients(grads=d_grads)
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
    'd_grad_norm': optax.tree.norm(d_grads),
    'd_param_norm': optax.tree.norm(d_state.params),
  }
  return d_state, metrics


def g_phase(
  g_state: GState, d_state: train_state.TrainState, batch_size: int, rng: jax.Array, loss_name: str = 'bce'
) -> tuple[GState, Metrics]:
  """The generator's part of a step: returns the new G state; D is read, never written."""
  z_rng, drop_rng = jax.random.split(rng)
  z = _latent(g_state, z_rng, batch_size)
  # Gradients are taken with respect to G's params only (argnums=0).
  (g_loss, (_, new_stats)), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(
    g_state.params, d_state.params, g_state, d_state, z, drop_rng, loss_name
  )
  g_state = g_state.apply_gradients(grads=g_grads, batch_stats=new_stats)
  metrics = {
    'g_loss': g_loss,
    'g_grad_norm': optax.tree.norm(g_grads),
    'g_param_norm': optax.tree.norm(g_state.params),
  }
  return g_state, metrics


def train_step(
  g_state: GState,
  d_state: train_state.TrainState,
  batch: jax.Array,
  rng: jax.Array,
  *,
  d_update: str = 'separate',
  real_label: float = 1.0,
  loss_name: str = 'bce',
) -> tuple[GState, train_state.TrainState, Metrics]:
  """One tutorial iteration: D on real, D on fake, then G through a frozen D.

  Args:
    g_state: generator state.
    d_state: discriminator state.
    batch: real images (B, H, W, C) in [-1, 1].
    rng: key for this step only (the loop derives it with `fold_in(key, step)`).
    d_update: 'separate' (two Adam steps, the tutorial) or 'joint' (one step
      on the mean of the real and fake losses).
    real_label: target for real images; < 1 is one-sided label smoothing.
    loss_name: one of `losses.LOSSES`; 'bce' is the tutorial's.

  Returns:
    The updated states and a dict of scalar metrics.
  """
  d_rng, g_rng = jax.random.split(rng)
  d_state, d_metrics = d_phase(g_state, d_state, batch, d_rng, d_update, real_label, loss_name)
  g_state, g_metrics = g_phase(g_state, d_state, batch.shape[0], g_rng, loss_name)
  return g_state, d_state, {**d_metrics, **g_metrics}


def make_train_step(config: ml_collections.ConfigDict):
  """`train_step` with the config's static switches bound, jitted once with donated states."""
  step = functools.partial(
    train_step, d_update=config.train.d_update, real_label=config.loss.real_label, loss_name=config.loss.name
  )
  return jax.jit(step, donate_argnums=(0, 1))
