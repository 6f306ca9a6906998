"""The GAN as a two-player game: both players' gradients as one joint field, and the update rules
that use it (extragradient, consensus optimisation). `ganjax.dynamics` takes the field's Jacobian.

Unlike the alternating step, nothing is stopped between the players here, so the field's Jacobian
has its cross terms; each gradient is still taken with respect to its own player's params only.
"""

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ganjax.objectives import (
  Batch,
  DLosses,
  Half,
  Metrics,
  StepConfig,
  d_metrics,
  draw_fakes_input,
  g_loss_fn,
  g_metrics,
  pmean,
)
from ganjax.states import DState, GState, update_ema


class GameAux(NamedTuple):
  """What the game's field computes besides the gradients: logged values and new statistics."""

  real: Half
  fake: Half
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
  d_scale: float = 0.5,
) -> tuple[tuple[Any, Any], GameAux]:
  """Both players' gradients at (G's params, D's params): ((dL_G/dG, dL_D/dD), aux).

  The update direction of the game is minus this field. L_D is `d_scale` times (real loss + fake loss
  + penalties): 0.5 is the joint D update's scaling, 1 the plain sum (`ganjax.dynamics`). Unlike the
  alternating step, nothing is stopped: the fakes depend on G's params and G's loss on D's, so that the
  field's Jacobian has its cross terms (consensus, the dynamics' eigenvalues); each gradient is still
  taken with respect to its own player's params only. Needs `d_update='joint'` and `n_critic=1`.
  """
  d_rng, g_rng = jax.random.split(rng)
  # The field is the GAN's game without InfoGAN's term, on both sides (the game rules refuse InfoGAN).
  d = DLosses(g_state, d_state, batch, d_rng, dataclasses.replace(cfg, info_weight=0.0))
  d_grads, (real, fake, penalty) = jax.grad(d.joint, has_aux=True)(
    d_params, d_state.batch_stats, g_params, d_scale, False
  )
  z_rng, drop_rng = jax.random.split(g_rng)
  z, labels = draw_fakes_input(z_rng, d.images.shape[0], cfg)
  g_grads, (_, g_stats, g_loss, _) = jax.grad(g_loss_fn, has_aux=True)(
    g_params, d_params, g_state, d_state, z, drop_rng, cfg.loss, cfg.axis_name, labels, 0.0, False
  )
  grads = pmean((g_grads, d_grads), cfg.axis_name)
  return grads, GameAux(real, fake, jnp.asarray(penalty), g_loss, g_stats, z, labels)


def game_step(
  g_state: GState, d_state: DState, batch: Batch, rng: jax.Array, cfg: StepConfig
) -> tuple[GState, DState, Metrics]:
  """Both players at once from the game's field: extragradient and/or consensus optimisation.

  Extragradient (Korpelevich; Gidel et al. 2019): a look-ahead step of both players from the step's
  states (its optimizer states discarded), then the update of the step's states with the field at the
  look-ahead point. Consensus (Mescheder et al. 2017): each player's gradient gains gamma * J^T v,
  the gradient of gamma/2 ||v||^2 for the field v, by one vector-Jacobian product.
  """

  def field(g_params, d_params):
    return game_field(g_params, d_params, g_state, d_state, batch, rng, cfg)

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
    g_state = update_ema(g_state, aux.z, aux.labels, cfg.g_ema_decay, cfg.axis_name, cfg.ema_batch_stats)
  metrics = d_metrics(aux.real, aux.fake, aux.penalty, d_grads, d_state.params, cfg)
  metrics.update(g_metrics(aux.g_loss, g_grads, g_state.params, cfg))
  return g_state, d_state, metrics


def plays_the_game(cfg: StepConfig) -> bool:
  """Whether the step updates both players from the game's field (`game_step`) rather than in turn."""
  return cfg.update_rule == 'extragradient' or cfg.consensus_weight > 0
