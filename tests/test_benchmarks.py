"""The profiler behind `benchmarks/profile_step.py --ops` (a script; its numbers are not tested)."""

import pathlib
import sys

import jax
import jax.numpy as jnp

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / 'benchmarks'))
import profile_step  # noqa: E402


def test_op_sources_map_compiled_instructions_to_model_code():
  def f(x, w):
    return jnp.tanh(x @ w)

  x, w = jnp.ones((8, 4)), jnp.ones((4, 3))
  sources = profile_step._op_sources(jax.jit(f).lower(x, w).compile().as_text())
  assert sources, 'no instruction carried op_name metadata'
  assert any(src.startswith('f32[8,3]') and 'dot_general' in src for src in sources.values())


def test_op_profile_charges_the_traced_step_to_its_ops(tiny_config):
  ms_per_step, rows = profile_step.op_profile(tiny_config, steps=2)
  assert ms_per_step > 0 and rows
  charged = [ms for ms, _, _ in rows]
  assert all(ms >= 0 for ms in charged) and charged == sorted(charged, reverse=True)
  # Launch-to-launch intervals inside the traced steps cannot add up to more than the traced time.
  assert sum(charged) <= ms_per_step * 1.05
  sources = ' '.join(source for _, _, source in rows)
  assert 'Discriminator' in sources and 'Generator' in sources
