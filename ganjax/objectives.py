"""What the players minimise, on the step's own logits: the static `StepConfig`, D's and G's losses
(with R1, the gradient penalty and InfoGAN's term), the latents of a step, and the logged values.

Every function here is pure and works on one device's slice of the global batch: with
`cfg.axis_name` set (under pmap), the latents are drawn for the global batch and sliced, and
`pmean` averages across devices.
"""

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import optax

from ganjax import config as config_lib
from ganjax import losses
from ganjax.states import DState, GState, generate, real_label_of

Metrics = dict[str, jax.Array]
Batch = dict[str, jax.Array]  # {'image': (B, H, W, C) [, 'label': (B,)]}; with n_critic > 1 a leading axis


@dataclasses.dataclass(frozen=True)
class StepConfig:
  """Everything static the step needs, built once from the config (hashable: jit treats it as a constant)."""

  latent_dim: int
  num_classes: int = 0  # > 0: G takes a label, drawn uniformly for fakes (a cGAN's class or a latent category)
  d_update: str = 'separate'  # 'separate' (two Adam steps, the tutorial) | 'joint'
  loss: str = 'bce'  # one of losses.LOSSES
  n_critic: int = 1  # D updates before the G update, each on its own real batch
  g_steps: int = 1  # G updates after D's, each on fresh latents
  g_reuses_fakes: bool = False  # G's update takes the latents of D's fake batch instead of fresh ones
  update_rule: str = 'alternating'  # one of choices.UPDATE_RULES; G sees the updated D in 'alternating' (the tutorial)
  consensus_weight: float = 0.0  # consensus optimisation's gamma (Mescheder et al. 2017)
  real_label: float = 1.0  # BCE target of real images; < 1 is one-sided label smoothing
  gp_weight: float = 0.0  # WGAN-GP penalty (joint updates only)
  r1_weight: float = 0.0  # R1 penalty on real images
  g_ema_decay: float = 0.0  # decay of G's parameter EMA (used when the state keeps one)
  ema_batch_stats: bool = True  # advance the EMA generator's BatchNorm statistics (False: samples recompute them)
  dirac: bool = False  # the Dirac-GAN: log theta, psi and their distance to the equilibrium (0, 0)
  info_weight: float = 0.0  # InfoGAN: weight of the cross-entropy of D's Q head on the fakes' latent categories
  info_decay_steps: int = 0  # > 0: that weight decays linearly to 0 at this step (loss.info_schedule='linear')
  axis_name: str | None = None  # the pmap axis to average over; None outside pmap

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict, axis_name: str | None = None) -> 'StepConfig':
    t, loss = config.train, config.loss
    return cls(
      latent_dim=config.model.latent_dim,
      num_classes=config_lib.g_classes(config.model),
      d_update=t.d_update,
      loss=loss.name,
      n_critic=t.n_critic,
      g_steps=t.g_steps,
      g_reuses_fakes=t.g_reuses_fakes,
      update_rule=t.update_rule,
      consensus_weight=loss.consensus_weight,
      real_label=float(loss.real_label),
      gp_weight=loss.gp_weight,
      r1_weight=loss.r1_weight,
      g_ema_decay=t.g_ema_decay,
      # Standing statistics replace the EMA generator's statistics before every sample, so a pass
      # of G a step to advance them would be thrown away.
      ema_batch_stats=not config.eval.standing_stats,
      info_weight=loss.info_weight,
      info_decay_steps=t.num_steps * t.g_steps if loss.info_schedule == 'linear' else 0,
      dirac=config.model.g_arch == 'dirac',
      axis_name=axis_name,
    )


def discriminate(
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
    inter = updates['intermediates']
    inter = inter.get('inner', inter)  # a packed D's Q head is its inner D's
    return logits, stats, inter['q_logits'][0]
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


def d_fakes_input(rng: jax.Array, batch_size: int, cfg: StepConfig) -> tuple[jax.Array, jax.Array | None]:
  """The latents (and classes) of the fake batch of the D update that `DLosses` builds from `rng`."""
  return draw_fakes_input(jax.random.split(rng, 4)[0], batch_size, cfg)


def pmean(tree: Any, axis_name: str | None) -> Any:
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
  fakes: jax.Array | None = None,
):
  """D's loss on G(z) (label 0 for BCE). G enters only through stop_gradient: no gradient reaches G.

  `fakes`: G(z) already computed (`train.g_reuses_fakes`), used instead of running G again.

  `stop_g_gradient=False` leaves the fakes differentiable in G's params, for the game's Jacobian (its
  cross terms); the update's gradient is with respect to D's params either way.

  With `info_weight`, plus that weight times the cross-entropy of D's Q head on the fakes' categories
  `labels` (InfoGAN: Q learns to tell G's latent categories apart).
  Returns (loss, (logits, D's new statistics, the fakes, the loss without the InfoGAN term)).
  """
  if fakes is None:
    fakes, _ = generate(g_state, z, params=g_params, train=True, axis_name=axis_name, labels=labels)
  if stop_g_gradient:
    fakes = jax.lax.stop_gradient(fakes)
  if _no_info(info_weight):
    logits, stats = discriminate(d_state, d_params, fakes, rng, axis_name, update_stats=True, labels=labels)
    loss = losses.d_fake(logits, loss_name)
    return loss, (logits, stats, fakes, loss)
  logits, stats, q = discriminate(d_state, d_params, fakes, rng, axis_name, True, labels, info=True)
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
  total, (logits, loss, info) = g_loss_on_images(
    images, d_params, d_state, rng, loss_name, axis_name, labels, info_weight, stop_d_gradient
  )
  return total, (logits, new_stats, loss, info)


def g_loss_on_images(
  images: jax.Array,
  d_params: Any,
  d_state: DState,
  rng: jax.Array,
  loss_name: str = 'bce',
  axis_name: str | None = None,
  labels: jax.Array | None = None,
  info_weight: float = 0.0,
  stop_d_gradient: bool = True,
):
  """`g_loss_fn` from G's images on: (loss, (logits, the loss without the InfoGAN term, that term's CE))."""
  frozen = jax.lax.stop_gradient(d_params) if stop_d_gradient else d_params
  if _no_info(info_weight):
    logits, _ = discriminate(d_state, frozen, images, rng, axis_name, labels=labels)
    loss = losses.g_loss(logits, loss_name)
    return loss, (logits, loss, jnp.zeros(()))
  logits, _, q = discriminate(d_state, frozen, images, rng, axis_name, labels=labels, info=True)
  loss, info = losses.g_loss(logits, loss_name), losses.info_loss(q, labels)
  return loss + info_weight * info, (logits, loss, info)


class Half(NamedTuple):
  """One half (real or fake) of a D loss: the loss without penalties, D's logits, D's new statistics."""

  loss: jax.Array
  logits: jax.Array
  stats: Any


class DLosses:
  """D's real and fake losses at given params and statistics, for one D update of one step."""

  def __init__(self, g_state, d_state, batch: Batch, rng: jax.Array, cfg: StepConfig):
    _, self.drop_real, self.drop_fake, self.gp_rng = jax.random.split(rng, 4)  # the first: d_fakes_input's
    self.g_state, self.d_state, self.cfg = g_state, d_state, cfg
    self.real_label = real_label_of(d_state, cfg.real_label)
    self.images, self.labels = batch['image'], batch.get('label')
    # Fakes come from one latent batch drawn before any update, as `generator.predict` does.
    self.z, self.fake_labels = d_fakes_input(rng, self.images.shape[0], cfg)
    self.fakes = None  # G(z), when the step computed it already (`train.g_reuses_fakes`)

  def frozen(self, d_params, stats, rng):
    """D on the real labels as a function of its input alone, for the penalties."""
    d = self.d_state.replace(batch_stats=stats)
    return lambda x: discriminate(d, d_params, x, rng, self.cfg.axis_name, labels=self.labels)[0]

  def real(self, d_params, stats) -> tuple[jax.Array, tuple[Half, jax.Array]]:
    """(loss + R1 penalty, (the real half, the weighted penalty))."""
    d = self.d_state.replace(batch_stats=stats)
    logits, new_stats = discriminate(
      d, d_params, self.images, self.drop_real, self.cfg.axis_name, True, labels=self.labels
    )
    loss = losses.d_real(logits, self.cfg.loss, self.real_label)
    penalty = 0.0
    if self.cfg.r1_weight:
      penalty = self.cfg.r1_weight * losses.r1_penalty(self.frozen(d_params, stats, self.drop_real), self.images)
    return loss + penalty, (Half(loss, logits, new_stats), penalty)

  def fake(self, d_params, stats, g_params=None, stop_g_gradient=True) -> tuple[jax.Array, tuple[Half, jax.Array]]:
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
      self.fakes,
    )
    return loss, (Half(gan_loss, logits, new_stats), fakes)

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


def d_metrics(real: Half, fake: Half, penalty, d_grads, d_params, cfg: StepConfig) -> Metrics:
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
  metrics = pmean(metrics, cfg.axis_name)
  # Gradients are already averaged across devices, so the norms are global.
  metrics['d_grad_norm'] = optax.tree.norm(d_grads)
  metrics['d_param_norm'] = optax.tree.norm(d_params)
  return metrics


def g_metrics(g_loss: jax.Array, g_grads: Any, g_params: Any, cfg: StepConfig) -> Metrics:
  """G's logged values: its loss (averaged across devices) and the norms of its gradient and params."""
  return {
    'g_loss': pmean(g_loss, cfg.axis_name),
    'g_grad_norm': optax.tree.norm(g_grads),
    'g_param_norm': optax.tree.norm(g_params),
  }
