"""The eigenvalues of the game's Jacobian at a checkpoint: is training locally convergent there?

  python -m ganjax.dynamics --workdir DIR [--step S] [--top K] [--member M]

The game's update direction is v(w) = -(dL_G/dtheta, dL_D/dphi) at the joint params w = (theta, phi)
(`game.game_field`, penalties such as R1 and the gradient penalty included). Near a point where
v = 0, gradient descent with a small step follows w' = J (w - w*); eigenvalues of J with negative real
parts pull towards w*, positive ones push away, and large imaginary parts rotate (Mescheder et al. 2017).

Convention: L_D is the plain sum of D's real loss, its fake loss and its penalties (the joint update
halves that sum; Adam does not see the scale). With the BCE loss the Dirac-GAN's eigenvalues at (0, 0)
are then +-i f'(0) = +-i/2, and with R1 of weight gamma (ganjax's penalty: gamma/2 times the mean
squared input gradient) (-gamma +- sqrt(gamma^2 - 4 f'(0)^2)) / 2.

The Jacobian is exact (`jax.jacfwd`, then numpy's eigvals) up to MAX_EXACT parameters; with --top K,
the K eigenvalues of largest magnitude come from ARPACK's implicitly restarted Arnoldi iteration
(scipy.sparse.linalg.eigs) on Jacobian-vector products, so the Jacobian is never formed. Every eigenvalue
is printed as `eig re=<float> im=<float>`; a scatter plot on the complex plane goes to
`DIR/eigenvalues_step_<S>.png`. The field is evaluated on one fixed batch of the run's data (the first
of its sampler) with fixed random draws, BatchNorm in training mode, as in the step.
"""

import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags, logging
from jax.flatten_util import ravel_pytree

from ganjax import checkpoint, game, host, input_pipeline, objectives, samplers
from ganjax.errors import GanjaxError

MAX_EXACT = 3000  # parameters: the exact Jacobian is MAX_EXACT^2 floats (36 MB) and as many JVPs


class DynamicsError(GanjaxError):
  """A request the eigenvalue analysis cannot serve (model too large, --top too large)."""


def vector_field(run: checkpoint.Run, batch_seed: int = 0):
  """(v, w0): the game's update direction as a function of the flat joint params, and those params."""
  config = run.config
  cfg = objectives.StepConfig.from_config(config)
  data = input_pipeline.load(config)
  batch = jax.tree.map(lambda x: x[0], samplers.make_sampler(config, data, jax.random.key(batch_seed)).batch(0))
  w0, unravel = ravel_pytree((run.g_state.params, run.d_state.params))
  rng = jax.random.key(batch_seed)

  def v(w):
    g_params, d_params = unravel(w)
    grads, _ = game.game_field(g_params, d_params, run.g_state, run.d_state, batch, rng, cfg, d_scale=1.0)
    return -ravel_pytree(grads)[0]

  return v, w0


def eigenvalues(run: checkpoint.Run, top: int | None = None) -> np.ndarray:
  """The Jacobian's eigenvalues at the run's params: all (exact), or the `top` of largest magnitude (Arnoldi)."""
  v, w0 = vector_field(run)
  n = w0.size
  if top is None:
    if n > MAX_EXACT:
      raise DynamicsError(
        f'the model has {n:,} parameters, too many for the exact Jacobian (at most {MAX_EXACT:,}); '
        'pass --top K for the K largest eigenvalues by Arnoldi iteration'
      )
    jacobian = np.asarray(jax.jacfwd(v)(w0), np.float64)
    return _sorted(np.linalg.eigvals(jacobian))
  if not 1 <= top < n - 1:
    raise DynamicsError(
      f'--top={top} does not fit this model of {n:,} parameters (ARPACK needs 1 <= K <= parameters - 2); '
      'leave out --top for all eigenvalues'
    )
  from scipy.sparse.linalg import LinearOperator, eigs

  jvp = jax.jit(lambda t: jax.jvp(v, (w0,), (t,))[1])
  op = LinearOperator((n, n), matvec=lambda t: np.asarray(jvp(jnp.asarray(t, w0.dtype)), np.float64), dtype=np.float64)
  values = eigs(op, k=top, which='LM', return_eigenvectors=False, tol=1e-6, v0=np.ones(n))
  return _sorted(values)


def _sorted(values: np.ndarray) -> np.ndarray:
  """Largest real part first (the least stable direction leads), then imaginary part."""
  return values[np.lexsort((-values.imag, -values.real))]


def scatter_png(values: np.ndarray, path: pathlib.Path, title: str) -> pathlib.Path:
  """The eigenvalues on the complex plane, the stable half-plane (Re < 0) shaded."""
  from matplotlib.figure import Figure  # no pyplot: leaves a notebook's backend alone

  fig = Figure(figsize=(5, 5))
  ax = fig.subplots()
  ax.axvspan(min(values.real.min(), 0) * 1.1 - 1e-3, 0, color='green', alpha=0.08, label='Re < 0 (contracting)')
  ax.axvline(0, color='grey', lw=0.8)
  ax.axhline(0, color='grey', lw=0.8)
  ax.scatter(values.real, values.imag, s=12)
  ax.set_xlabel('Re')
  ax.set_ylabel('Im')
  ax.set_title(title)
  ax.legend(loc='upper right', fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  return path


_WORKDIR = flags.DEFINE_string('workdir', None, 'Run directory with checkpoints/.', required=True)
_STEP = flags.DEFINE_integer('step', None, 'Checkpoint step (default: the latest).')
_TOP = flags.DEFINE_integer('top', None, 'The K eigenvalues of largest magnitude by Arnoldi iteration (default: all).')
_MEMBER = flags.DEFINE_integer('member', None, 'For a sweep workdir: which member (0-based).')


def main(argv: list[str]) -> None:
  del argv
  host.prepare()  # before JAX starts its threads or compiles
  logging.set_verbosity(logging.ERROR)
  try:
    run = checkpoint.restore(_WORKDIR.value, _STEP.value, member=_MEMBER.value)
    values = eigenvalues(run, _TOP.value)
  except GanjaxError as e:
    sys.exit(f'ganjax: error: {e}')
  for value in values:
    print(f'eig re={value.real:.6g} im={value.imag:.6g}')
  member = '' if run.member is None else f'_member{run.member}'
  path = pathlib.Path(_WORKDIR.value) / f'eigenvalues_step_{run.step:06d}{member}.png'
  scatter_png(values, path, f'Jacobian eigenvalues, step {run.step}')
  print(f'wrote {path}', file=sys.stderr)


if __name__ == '__main__':
  app.run(main)
