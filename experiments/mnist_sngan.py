"""SNGAN-style (Miyato et al. 2018) on the tutorial's networks: spectral norm in D, hinge loss, TTUR.

Spectral normalisation on every D layer, hinge loss, joint D update, and the
two time-scale rule: D at 4e-4, G at 1e-4 (Heusel et al. 2017), Adam b1=0.5.

Launch:
  python -m ganjax.main --config=experiments/mnist_sngan.py --workdir=runs/mnist_sngan
"""

from ganjax.config import sibling


def get_config():
  config = sibling(__file__, 'tutorial_gan')
  config.model.d_spectral_norm = True
  config.loss.name = 'hinge'
  config.train.d_update = 'joint'
  config.opt.d_lr, config.opt.g_lr = 4e-4, 1e-4
  return config
