"""PacGAN (Lin et al. 2018): D judges packs of samples, `model.d_pack` at a time.

A pack is `pack` consecutive samples of one batch concatenated along channels; D's batches are all
real or all fake, so each pack is too. Packing lets D see a set's diversity, which penalises mode
collapse. `model.d_pack=1` builds no wrapper: the step is the unpacked one, bit for bit.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp


class Packed(nn.Module):
  """PacGAN's D: `inner` judges packs of `pack` consecutive samples concatenated along channels.

  (B, H, W, C) -> (B / pack, H, W, pack * C) -> `inner` -> one logit per pack. Every batch D sees is all
  real or all fake, so every pack is too. `inner` is built for the images' shape; its first layer sees
  pack * C channels.
  """

  inner: nn.Module
  pack: int

  def __call__(self, x: jax.Array, *args, **kwargs) -> jax.Array:
    b, *rest = x.shape
    x = x.reshape(b // self.pack, self.pack, *rest)
    x = jnp.moveaxis(x, 1, -2).reshape(b // self.pack, *rest[:-1], self.pack * rest[-1])
    return self.inner(x, *args, **kwargs)
