"""PacGAN (Lin et al. 2018): D judges packs of samples, `model.d_pack` at a time.

A pack is `pack` consecutive samples of one batch concatenated along channels; D's batches are all
real or all fake, so each pack is too. Packing lets D see a set's diversity, which penalises mode
collapse. `model.d_pack=1` builds no wrapper: the step is the unpacked one, bit for bit.

DiffAugment (`model.d_augment`) transforms one image at a time, so the wrapper augments every sample
before packing (each with its own draw) and the inner D gets no policy of its own.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ganjax import augment


class Packed(nn.Module):
  """PacGAN's D: `inner` judges packs of `pack` consecutive samples concatenated along channels.

  (B, H, W, C) -> (B / pack, H, W, pack * C) -> `inner` -> one logit per pack. Every batch D sees is all
  real or all fake, so every pack is too. `inner` is built for the images' shape; its first layer sees
  pack * C channels. `augment`: DiffAugment transforms applied to each sample in training, before packing.
  """

  inner: nn.Module
  pack: int
  augment: Sequence[str] = ()

  def __call__(self, x: jax.Array, train: bool = True, **kwargs) -> jax.Array:
    if train and self.augment:
      x = augment.diff_augment(x, self.make_rng('augment'), self.augment)
    b, *rest = x.shape
    x = x.reshape(b // self.pack, self.pack, *rest)
    x = jnp.moveaxis(x, 1, -2).reshape(b // self.pack, *rest[:-1], self.pack * rest[-1])
    return self.inner(x, train=train, **kwargs)
