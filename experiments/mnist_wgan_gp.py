"""WGAN-GP (Gulrajani et al. 2017) with the tutorial's networks.

Wasserstein loss, gradient penalty 10 on real/fake interpolates, 5 critic
updates (each on its own batch) per G update, Adam(1e-4, b1=0.5, b2=0.9).
The penalty needs one joint D loss (train.d_update='joint'). D has no
normalisation, as the penalty assumes per-example gradients.

Launch:
  python -m ganjax.main --config=experiments/mnist_wgan_gp.py --workdir=runs/mnist_wgan_gp
"""

from ganjax.config import sibling


def get_config():
  config = sibling(__file__, 'tutorial_gan')
  config.loss.name = 'wgan'
  config.loss.gp_weight = 10.0
  config.train.d_update = 'joint'
  config.train.n_critic = 5
  config.opt.g_lr = config.opt.d_lr = 1e-4
  config.opt.b2 = 0.9
  return config
