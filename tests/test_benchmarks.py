"""The profiler behind `benchmarks/profile_step.py --ops` and the variants of `benchmarks/step_variants.py`
(scripts; their numbers are not tested)."""

import pathlib
import sys

import jax
import jax.numpy as jnp

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / 'benchmarks'))
import profile_step  # noqa: E402
import pytest  # noqa: E402
import step_variants  # noqa: E402

TINY = pathlib.Path(__file__).resolve().parent.parent / 'experiments' / 'tiny.py'


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


def test_step_variants_apply_overrides_as_literals_and_name_a_bad_one():
  config = step_variants._config(TINY, 'train.g_reuses_fakes=True opt.g_lr=8e-4 loss.name=hinge seed=3')
  assert config.train.g_reuses_fakes is True and config.opt.g_lr == 8e-4 and config.loss.name == 'hinge'
  assert config.seed == 3
  with pytest.raises(SystemExit, match="key=value pairs of config keys, got 'train.nope=1'"):
    step_variants._config(TINY, 'train.nope=1')
  with pytest.raises(SystemExit, match="got 'nosection.x=1'"):
    step_variants._config(TINY, 'nosection.x=1')
  with pytest.raises(SystemExit, match="got 'g_steps'"):
    step_variants._config(TINY, 'g_steps')
