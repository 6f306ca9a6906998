"""Class-conditional GAN on MNIST labels: `mnist_mlp_bn.py` with a label-embedded G and a projection D.

G multiplies z by a learned embedding of the class (as the Keras-GAN CGAN
does); D adds the projection term <embed(y), features(x)> to its logit
(Miyato & Koyama 2018). Real images come with their labels; fakes get
uniformly drawn classes. Sample grids have one row per digit, and
`ganjax.sample(run, n, labels=...)` or `python -m ganjax.sample --by_class 10`
draw chosen classes.

Launch:
  python -m ganjax.main --config=experiments/mnist_cgan.py --workdir=runs/mnist_cgan
"""

from ganjax.config import sibling


def get_config():
  config = sibling(__file__, 'mnist_mlp_bn')
  config.model.num_classes = 10
  return config
