"""What the machine decides: the precision policy, XLA and the BatchNorm kind.

Each `auto` setting is resolved here, once, from what the machine has; the
models are then built from the resolved values (see models.blocks.Kit).
"""

import functools
from typing import FrozenSet, Tuple

import tensorflow as tf

from configs.errors import FaceganError


class UnsupportedSetup(FaceganError, ValueError):
  """A combination of settings this GAN cannot run; the message says why."""


@functools.lru_cache(maxsize=None)
def cpu_info() -> Tuple[str, FrozenSet[str]]:
  """(CPU model name, its feature flags) from /proc/cpuinfo (Linux); or
  ('unknown CPU', no flags) elsewhere."""
  model, flags = 'unknown CPU', frozenset()
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        key, _, value = line.partition(':')
        if key.strip() == 'model name' and model == 'unknown CPU':
          model = value.strip()
        elif key.strip() == 'flags' and not flags:
          flags = frozenset(value.split())
  except OSError:
    pass
  return model, flags


def cpu_has_native_bfloat16() -> bool:
  """Whether this CPU computes in bfloat16 natively (Linux CPU flags)."""
  return bool(cpu_info()[1] & {'avx512_bf16', 'amx_bf16'})


def resolve_mixed_precision(setting: str) -> str:
  """The Keras policy for a mixed_precision setting ('off' for float32).

  'auto' is bfloat16 on a CPU-only machine whose CPU has native bfloat16,
  where a preset's step runs faster with float32 variables and the same
  quality in a CPU study (both measured in BENCHMARKS.md). Elsewhere, GPUs
  included until measured, it is float32. Never float16: its loss-scale
  state would make checkpoints depend on the machine.
  """
  if setting != 'auto':
    return setting
  if tf.config.list_logical_devices('GPU') or not cpu_has_native_bfloat16():
    return 'off'
  return 'mixed_bfloat16'


def dtype_policy_name(mixed_precision: str) -> str:
  """The Keras dtype policy of a resolved mixed_precision setting."""
  return 'float32' if mixed_precision == 'off' else mixed_precision


def resolve_jit_compile(setting: str, replicas: int) -> bool:
  """'on'/'off', or 'auto': XLA on a single GPU (unmeasured; see BENCHMARKS.md).

  Raises:
    UnsupportedSetup: 'on' with several replicas, where synchronised
      BatchNorm needs a cross-replica all-reduce that an XLA cluster cannot
      contain.
  """
  if setting == 'on' and replicas > 1:
    raise UnsupportedSetup(
      '--jit_compile=on is not supported with several replicas '
      '(synchronised BatchNorm cannot run inside XLA); use '
      '--jit_compile=off or auto with --strategy=mirrored.'
    )
  if setting == 'auto':
    return replicas == 1 and bool(tf.config.list_logical_devices('GPU'))
  return setting == 'on'


def batch_norm_kind(replicas: int, jit_compile: bool) -> str:
  """The models.blocks.Kit BatchNorm for this replica count and XLA setting.

  Several replicas synchronise their statistics; under XLA Keras' layer is
  the faster one; otherwise TF's fused kernel.
  """
  if replicas > 1:
    return 'synchronized'
  return 'keras' if jit_compile else 'fused'
