"""The Dirac-GAN (Mescheder et al. 2018): the smallest GAN whose training dynamics can be solved by hand.

The data are a point mass at 0; G is one parameter theta (all its mass sits at theta); D is linear,
D(x) = psi * x. The equilibrium is (theta, psi) = (0, 0). With the BCE loss the game's Jacobian there
has the eigenvalues +-i f'(0) = +-i/2: a pure rotation, which plain simultaneous gradient descent
spirals out of, alternating updates circle around, and extragradient, optimistic updates, consensus
or R1 (loss.r1_weight) pull in. Every step logs dirac/theta, dirac/psi and dirac/distance.

Launch (one rule; `benchmarks/dirac_figure.py` runs them all and draws the trajectories):
  python -m ganjax.main --config=experiments/dirac_gan.py --workdir=runs/dirac_gan \
    --config.train.update_rule=simultaneous
"""

from ganjax.config import sibling


def get_config():
  config = sibling(__file__, 'tutorial_gan')
  config.data.source = 'toy'
  config.data.toy_name = 'dirac'
  config.data.image_shape = (1,)
  config.data.toy_size = 64
  config.model.latent_dim = 1
  config.model.g_arch = config.model.d_arch = 'dirac'
  config.model.g_output = 'linear'
  config.model.dirac_init = (1.0, 1.0)
  config.opt.name = 'sgd'
  config.opt.g_lr = config.opt.d_lr = 0.1
  # One D update on the sum of both halves: the real half (D(0) = 0) has no gradient of its own.
  config.train.d_update = 'joint'
  config.train.batch_size = 8
  config.train.num_steps = 500
  config.train.log_every_steps = 1
  config.train.sample_every_steps = 0
  config.checkpoint.every_steps = 0
  config.eval.every_steps = 0
  return config
