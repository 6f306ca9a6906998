"""ganjax: GANs in JAX/Flax, from the tutorial MNIST GAN to a research baseline.

run = ganjax.restore('runs/mnist_gan')      # .config, .g_state, .d_state, .step
images = ganjax.sample(run, 64, seed=0)     # numpy (64, 28, 28, 1) in [-1, 1]
"""

from ganjax.checkpoint import Run, restore
from ganjax.sampling import sample
from ganjax.train import train_and_evaluate

__all__ = ['Run', 'restore', 'sample', 'train_and_evaluate']
__version__ = '0.1.0'
