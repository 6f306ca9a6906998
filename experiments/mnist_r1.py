"""The tutorial with the R1 penalty on D (Mescheder et al. 2018), gamma 10, and simultaneous updates.

R1 penalises D's gradient on real images, the regulariser Mescheder et al.
found to make GAN training converge locally; simultaneous updates (G and D
both computed from the step's starting states) are the setting of that
analysis.

Launch:
  python -m ganjax.main --config=experiments/mnist_r1.py --workdir=runs/mnist_r1
"""

from ganjax.config import sibling


def get_config():
  config = sibling(__file__, 'tutorial_gan')
  config.loss.r1_weight = 10.0
  config.train.update_rule = 'simultaneous'
  return config
