"""absl flag definitions the entry scripts share: one flag per Config field,
the generator flags, finite-float flags, generate.py's modes.

Every Config field becomes a flag of the same name whose default is None,
meaning "keep the preset's value"; so the preset table stays the one place
defaults live.
"""

import dataclasses
import math

from absl import flags

from configs import presets

# Adam steps of a photo projection: project.py puts quality first; the
# explorer's page waits for it (about 3 s at 64x64 on 2 CPU cores).
PROJECTION_STEPS = 300
EXPLORER_PROJECTION_STEPS = 150

_DEFINE = {
  bool: flags.DEFINE_bool,
  int: flags.DEFINE_integer,
  float: flags.DEFINE_float,
  str: flags.DEFINE_string,
}


def define_config_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Defines --preset and one override flag per Config field."""
  flags.DEFINE_enum(
    'preset',
    'celeba64',
    list(presets.PRESETS),
    'Preset: celeba48, celeba64, celeba157x128, quick48 (CPU '
    'quickstart on synthetic faces) or tiny (tests).',
    flag_values=flag_values,
  )
  for field in dataclasses.fields(presets.Config):
    if field.name == 'preset':
      continue
    help_text = field.metadata['help'] + ' Default: from the preset.'
    if field.name in presets.CHOICES:
      flags.DEFINE_enum(
        field.name, None, presets.CHOICES[field.name], help_text, flag_values=flag_values
      )
    else:
      _DEFINE[field.type](field.name, None, help_text, flag_values=flag_values)


def define_finite_float(
  name: str,
  default,
  help_text: str,
  lower_bound=None,
  positive: bool = False,
  flag_values: flags.FlagValues = flags.FLAGS,
) -> None:
  """DEFINE_float that also refuses nan and inf (absl's bounds let nan by)."""
  flags.DEFINE_float(name, default, help_text, lower_bound=lower_bound, flag_values=flag_values)
  flags.register_validator(
    name,
    lambda v: v is None or (math.isfinite(v) and (v > 0 or not positive)),
    message=f'--{name} must be a {"positive" if positive else "finite"} number.',
    flag_values=flag_values,
  )


# generate.py's outputs (pictures.exports writes them); --mode=all writes the
# pictures, the SavedModel, TFLite model and weights folder only when asked
# (large or slow to write, and most runs of generate.py only want pictures).
PICTURE_MODES = ('grid', 'interpolate', 'circle', 'walk', 'directions', 'progress')
GENERATE_MODES = PICTURE_MODES + ('savedmodel', 'tflite', 'weights')


def define_generator_flags(
  flag_values: flags.FlagValues = flags.FLAGS, required: bool = True
) -> None:
  """--checkpoint and --no_ema: the trained G a tool loads."""
  flags.DEFINE_string(
    'checkpoint',
    None,
    'Run directory, its checkpoints/ folder or a checkpoint prefix (runs/x/checkpoints/ckpt-N).',
    flag_values=flag_values,
  )
  flags.DEFINE_bool(
    'no_ema', False, 'Use the raw G instead of its EMA copy.', flag_values=flag_values
  )
  if required:
    flags.mark_flag_as_required('checkpoint', flag_values=flag_values)


def config_from_flags(values: flags.FlagValues) -> presets.Config:
  """The preset's Config with every flag the user set applied.

  Raises:
    ValueError: an invalid combination (message fit for the user).
  """
  overrides = {
    f.name: values[f.name].value
    for f in dataclasses.fields(presets.Config)
    if f.name != 'preset' and values[f.name].value is not None
  }
  return presets.get_config(values.preset, **overrides)
