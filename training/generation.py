"""Pictures from a trained run: latent paths, sample grids, GIFs, SavedModel.

`load_generator(path)` rebuilds a run's generator from its config.json and
checkpoint; the `write_*` functions turn latents into files. The latent math
(`slerp`, `lerp`, `circle`, `walk`) is plain numpy so it can be tested on known
vectors. Nothing here reads flags.
"""

import dataclasses
import os
from typing import List, Optional, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf

from data.pipeline import from_float
from configs.presets import Config
from models.gan import model_state, uses_positional_keys
from models.generator import Generator
from training import images as img
from training import rundir
from training.rundir import RunDirError

MODES = ('grid', 'interpolate', 'circle', 'walk', 'progress', 'savedmodel')
# What --mode=all writes; the SavedModel only when asked (it is large and
# slow to write, and most runs of generate.py only want pictures).
ALL_MODES = ('grid', 'interpolate', 'circle', 'walk', 'progress')
DEFAULT_WALK_DIMS = (25, 50, 75)  # the 48x48 recipe notebook's walk dimensions (latent 100)
SAVEDMODEL_DIR = 'savedmodel'

# One latent stream per kind of output, so changing --num does not change the
# interpolation pairs, and the pairs of the slerp and circle GIFs are the same.
_GRID_STREAM, _PAIR_STREAM, _WALK_STREAM = 11, 12, 13


class GenerationError(ValueError):
  """The request cannot be served as asked; the message says why."""


@dataclasses.dataclass(frozen=True)
class Options:
  """What to draw; generate.py fills it from its flags."""
  seed: int = 0
  num: int = 64                   # images in the sample grid
  grid_cols: int = 0              # 0: a square-ish grid
  truncation: Optional[float] = None
  interpolation: str = 'slerp'    # or 'linear'
  num_interpolations: int = 4     # pairs side by side in each GIF
  frames: int = 48
  fps: float = 12.0
  dims: Tuple[int, ...] = DEFAULT_WALK_DIMS
  range: float = 3.0              # walks sweep [-range, range]
  walk_steps: int = 9             # images in each walk's PNG strip
  batch_size: int = 64            # latents per generator call


# --------------------------------------------------------------------------
# Latent math. Latents are (..., D) arrays; a path adds a leading frame axis.


def _frames_axis(t, z):
  """t (T,) reshaped to broadcast against z (..., D) with a leading T axis."""
  t = np.asarray(t, np.float64)
  return t.reshape(t.shape + (1,) * np.ndim(z))


def lerp(z1: np.ndarray, z2: np.ndarray, t) -> np.ndarray:
  """Linear interpolation z(t) = (1 - t) z1 + t z2.

  Args:
    z1, z2: latents of the same shape (..., D).
    t: 1-D array of positions; 0 gives z1, 1 gives z2.

  Returns:
    float64 array (len(t), ..., D).
  """
  z1, z2 = np.asarray(z1, np.float64), np.asarray(z2, np.float64)
  t = _frames_axis(t, z1)
  return (1 - t) * z1 + t * z2


def slerp(z1: np.ndarray, z2: np.ndarray, t) -> np.ndarray:
  """Spherical interpolation along the great circle from z1 to z2.

  w = arccos(<z1/|z1|, z2/|z2|>),
  z(t) = sin((1 - t) w) / sin w * z1 + sin(t w) / sin w * z2.
  Pairs with sin w ~ 0 (parallel or opposite latents, where the formula is
  0/0) fall back to `lerp`. Equal-norm endpoints keep that norm all along,
  which is why slerp suits Gaussian latents: a linear path cuts through the
  low-norm middle of the distribution that G rarely saw in training.

  Args:
    z1, z2: latents of the same shape (..., D).
    t: 1-D array of positions; 0 gives z1, 1 gives z2.

  Returns:
    float64 array (len(t), ..., D).
  """
  z1, z2 = np.asarray(z1, np.float64), np.asarray(z2, np.float64)
  n1 = np.linalg.norm(z1, axis=-1, keepdims=True)
  n2 = np.linalg.norm(z2, axis=-1, keepdims=True)
  cos = np.sum(z1 * z2, axis=-1, keepdims=True) / np.maximum(n1 * n2, 1e-12)
  w = np.arccos(np.clip(cos, -1.0, 1.0))
  sin_w = np.sin(w)
  degenerate = sin_w < 1e-6
  safe = np.where(degenerate, 1.0, sin_w)
  t_ = _frames_axis(t, z1)
  spherical = (np.sin((1 - t_) * w) * z1 + np.sin(t_ * w) * z2) / safe
  return np.where(degenerate, lerp(z1, z2, t), spherical)


def circle_angles(frames: int) -> np.ndarray:
  """frames angles evenly over [0, 2 pi), the end excluded so a loop closes."""
  return np.arange(frames) * (2 * np.pi / frames)


def circle(z1: np.ndarray, z2: np.ndarray, theta) -> np.ndarray:
  """A closed loop through z1: z(th) = cos th * z1 + sin th * z2'.

  z2' is the part of z2 orthogonal to z1, rescaled to |z1|, so |z(th)| = |z1|
  for every th and z(th + 2 pi) = z(th): a GIF over `circle_angles` loops
  without a jump.

  Args:
    z1, z2: latents of the same shape (..., D); z2 not parallel to z1.
    theta: 1-D array of angles in radians.

  Returns:
    float64 array (len(theta), ..., D).
  """
  z1, z2 = np.asarray(z1, np.float64), np.asarray(z2, np.float64)
  sq1 = np.sum(z1 * z1, axis=-1, keepdims=True)
  ortho = z2 - np.sum(z1 * z2, axis=-1, keepdims=True) / sq1 * z1
  n_ortho = np.linalg.norm(ortho, axis=-1, keepdims=True)
  if np.any(n_ortho < 1e-9 * np.sqrt(sq1)):
    raise GenerationError('circle: z2 is parallel to z1, so there is no plane '
                          'to turn in; draw another pair.')
  ortho *= np.sqrt(sq1) / n_ortho
  th = _frames_axis(theta, z1)
  return np.cos(th) * z1 + np.sin(th) * ortho


def walk(z: np.ndarray, dim: int, values) -> np.ndarray:
  """Copies of z (D,) with dimension `dim` set to each of `values`.

  Returns:
    float64 array (len(values), D); only column `dim` differs between rows.
  """
  z = np.asarray(z, np.float64)
  check_dims([dim], z.shape[-1])
  path = np.repeat(z[None], len(values), axis=0)
  path[:, dim] = values
  return path


def check_dims(dims: Sequence[int], latent_dim: int) -> None:
  """Raises GenerationError unless every dim is in [0, latent_dim)."""
  bad = [d for d in dims if not 0 <= d < latent_dim]
  if bad:
    raise GenerationError(
        f'Latent dimension(s) {bad} out of range: this run has latent_dim='
        f'{latent_dim}, so --dims must be in 0..{latent_dim - 1}.')


def default_dims(latent_dim: int) -> Tuple[int, ...]:
  """The 48x48 recipe's 25, 50, 75 when they fit, else the latent's quarter points."""
  if latent_dim > max(DEFAULT_WALK_DIMS):
    return DEFAULT_WALK_DIMS
  return tuple(sorted({latent_dim * k // 4 for k in (1, 2, 3)}))


def sample_latents(config: Config, n: int, seed: int, stream: int,
                   truncation: Optional[float] = None) -> np.ndarray:
  """n float32 latents from the run's distribution, optionally truncated.

  Truncation trades variety for quality. Normal latents: every component with
  |z| > truncation is redrawn until none is (a truncated normal). Uniform
  latents: U(-1, 1) is scaled by min(truncation, 1), which gives U(-t, t),
  exactly the distribution redrawing would give, in one draw.
  """
  if truncation is not None and truncation <= 0:
    raise GenerationError(f'--truncation must be positive, got {truncation}.')
  rng = np.random.default_rng([seed, stream])
  shape = (n, config.latent_dim)
  if config.latent_dist == 'uniform':
    z = rng.uniform(-1.0, 1.0, shape)
    if truncation is not None:
      z *= min(truncation, 1.0)
  else:
    z = rng.standard_normal(shape)
    if truncation is not None:
      out = np.abs(z) > truncation
      while out.any():
        z[out] = rng.standard_normal(int(out.sum()))
        out = np.abs(z) > truncation
  return z.astype(np.float32)


# --------------------------------------------------------------------------
# Loading.


def generator_key(config: Config, use_ema: bool = True) -> str:
  """The checkpoint key of the G to sample: the EMA copy when asked and kept."""
  return 'ema_generator' if use_ema and config.ema_decay > 0 else 'generator'


def _unrestorable(prefix: str, key: str, run_dir: str,
                  detail: str) -> RunDirError:
  return RunDirError(
      f'Checkpoint {prefix} cannot be restored into the {key} described by '
      f'{os.path.join(run_dir, rundir.CONFIG_FILE)}: {detail}. The '
      'checkpoint files may be truncated or partial, from an older facegan '
      'or from another run than this config.json; pass another checkpoint '
      'prefix or retrain.')


def load_generator(path: str, use_ema: bool = True
                   ) -> Tuple[Config, str, keras.Model]:
  """Rebuilds a run's generator from config.json and restores its weights.

  facegan's one loader (generate.py, metrics.evaluation). Two checks make
  sure no weight of G is left at its random initialisation: the checkpoint's
  variable list must hold every variable of this G with its shape (which
  gives a precise message), and the restore must then bind every one (which
  also catches a file whose list is intact but whose values cannot be read).

  Args:
    path: a run directory, its checkpoints/ folder or a checkpoint prefix.
    use_ema: restore the EMA copy of G when the run has one (ema_decay > 0);
      False restores the raw G.

  Returns:
    (config, run directory, generator).

  Raises:
    RunDirError: no checkpoint or an incomplete one, a missing or unreadable
      config.json, or a checkpoint that is corrupt or does not hold every
      weight of this G.
  """
  run_dir, prefix = rundir.find_checkpoint(path)
  config = rundir.load_config(run_dir)
  key = generator_key(config, use_ema)
  generator = Generator(config, name=key)
  generator(tf.zeros((1, config.latent_dim)))  # variables exist before restore
  try:
    stored = dict(tf.train.list_variables(prefix))
  except (ValueError, tf.errors.OpError) as e:
    raise _unrestorable(prefix, key, run_dir, rundir.first_line(e, 300)) from e
  # The checkpoint holds each model as model_state's dict of its variables
  # (keyed by position in checkpoints written before the layer-path keys).
  state = model_state(generator, positional=uses_positional_keys(stored))
  wanted = {f'{key}/{name}/.ATTRIBUTES/VARIABLE_VALUE': tuple(v.shape)
            for name, v in state.items()}
  missing = [k for k in wanted if k not in stored]
  mismatched = [k for k in wanted
                if k in stored and tuple(stored[k]) != wanted[k]]
  if missing or mismatched:
    raw_only = (key == 'ema_generator' and len(missing) == len(wanted) and
                any(k.startswith('generator/') for k in stored))
    raise _unrestorable(
        prefix, key, run_dir,
        f'{len(missing)} of its {len(wanted)} variables are missing and '
        f'{len(mismatched)} have another shape'
        + (' (the file holds only the raw G, which --no_ema loads)'
           if raw_only else ''))
  try:
    # expect_partial: D, the optimizers and the counters are in the file on
    # purpose. The assertion fails unless every variable of G was bound.
    tf.train.Checkpoint(**{key: state}).restore(
        prefix).expect_partial().assert_existing_objects_matched()
  except (AssertionError, ValueError, LookupError, tf.errors.OpError) as e:
    raise _unrestorable(prefix, key, run_dir, rundir.first_line(e, 300)) from e
  return config, run_dir, generator


# --------------------------------------------------------------------------
# Rendering and files.


def render(generator: keras.Model, z: np.ndarray,
           batch_size: int = 64) -> np.ndarray:
  """uint8 images (N, H, W, 3) from latents (N, D), G in inference mode.

  All frames of a GIF go through here at once, in batches of `batch_size`.
  """
  z = np.asarray(z, np.float32)
  out = [from_float(generator(tf.constant(z[i:i + batch_size]),
                              training=False)).numpy()
         for i in range(0, len(z), batch_size)]
  return np.concatenate(out)


def _grid_frames(generator, path: np.ndarray, batch_size: int):
  """A path (T, N, D) -> T frames, each the N images tiled in a grid."""
  t, n, d = path.shape
  images = render(generator, path.reshape(t * n, d), batch_size)
  images = images.reshape((t, n) + images.shape[1:])
  return [img.make_grid(frame) for frame in images]


def _pairs(config: Config, opts: Options):
  z = sample_latents(config, 2 * opts.num_interpolations, opts.seed,
                     _PAIR_STREAM, opts.truncation)
  return z[0::2], z[1::2]


def write_grid(generator, config: Config, out_dir: str, opts: Options) -> str:
  """grid.png: opts.num samples in opts.grid_cols columns."""
  z = sample_latents(config, opts.num, opts.seed, _GRID_STREAM, opts.truncation)
  path = os.path.join(out_dir, 'grid.png')
  img.save_png(path, img.make_grid(render(generator, z, opts.batch_size),
                                   opts.grid_cols))
  return path


def write_interpolation(generator, config: Config, out_dir: str,
                        opts: Options) -> str:
  """interpolation_<slerp|linear>.gif: pairs z1 -> z2 in opts.frames frames.

  The first frame is exactly G(z1) and the last exactly G(z2).
  """
  z1, z2 = _pairs(config, opts)
  fn = {'slerp': slerp, 'linear': lerp}.get(opts.interpolation)
  if fn is None:
    raise GenerationError(f'Unknown interpolation {opts.interpolation!r}; '
                          'use slerp or linear.')
  path = fn(z1, z2, np.linspace(0.0, 1.0, opts.frames))
  out = os.path.join(out_dir, f'interpolation_{opts.interpolation}.gif')
  img.save_gif(out, _grid_frames(generator, path, opts.batch_size), opts.fps)
  return out


def write_circle(generator, config: Config, out_dir: str, opts: Options) -> str:
  """circle.gif: the loop through each pair's z1 (same pairs as interpolation)."""
  z1, z2 = _pairs(config, opts)
  path = circle(z1, z2, circle_angles(opts.frames))
  out = os.path.join(out_dir, 'circle.gif')
  img.save_gif(out, _grid_frames(generator, path, opts.batch_size), opts.fps)
  return out


def write_walks(generator, config: Config, out_dir: str,
                opts: Options) -> List[str]:
  """walk_dimNNN.gif and walk_dimNNN.png for each of opts.dims.

  One base latent, shared by every dimension so the walks are comparable; the
  GIF sweeps the dimension from -range to +range in opts.frames frames, the
  PNG strip in opts.walk_steps steps.
  """
  check_dims(opts.dims, config.latent_dim)
  z = sample_latents(config, 1, opts.seed, _WALK_STREAM, opts.truncation)[0]
  r = opts.range
  paths = []
  for d in opts.dims:
    frames = render(generator, walk(z, d, np.linspace(-r, r, opts.frames)),
                    opts.batch_size)
    strip = render(generator, walk(z, d, np.linspace(-r, r, opts.walk_steps)),
                   opts.batch_size)
    base = os.path.join(out_dir, f'walk_dim{d:03d}')
    img.save_gif(base + '.gif', list(frames), opts.fps)
    img.save_png(base + '.png', img.make_grid(strip, cols=opts.walk_steps))
    paths += [base + '.gif', base + '.png']
  return paths


def write_progress(run_dir: str, out_dir: str) -> str:
  """progress.gif from the run's samples/epoch_*.png, labelled by epoch.

  Useful for runs stopped before the end, which have no progress.gif yet.
  """
  samples = os.path.join(run_dir, rundir.SAMPLES_DIR)
  out = os.path.join(out_dir, 'progress.gif')
  if not img.progress_gif(samples, out):
    raise GenerationError(f'No samples/epoch_*.png in {run_dir}: the run has '
                          'not finished an epoch yet.')
  return out


def export_savedmodel(generator, config: Config, out_dir: str) -> str:
  """Writes G as a SavedModel in out_dir/savedmodel/ and returns that path.

  The serving signature maps float32 latents "z" [None, latent_dim] to uint8
  images "images" [None, H, W, 3], G in inference mode:

    m = tf.saved_model.load(path)
    images = m.signatures['serving_default'](z=z)['images']   # or m.serve(z)

  It needs only TensorFlow to load, not this repository.
  """
  path = os.path.join(out_dir, SAVEDMODEL_DIR)
  # ExportArchive (what model.export uses) tracks Keras 3 variables for the
  # SavedModel; a custom endpoint lets the signature include the uint8 cast.
  def serve(z):
    return {'images': from_float(generator(z, training=False))}

  archive = keras.export.ExportArchive()
  archive.track(generator)
  archive.add_endpoint(
      name='serve', fn=serve,
      input_signature=[tf.TensorSpec([None, config.latent_dim], tf.float32,
                                     name='z')])
  archive.write_out(path, verbose=False)
  return path


def generate(modes: Sequence[str], generator, config: Config, run_dir: str,
             out_dir: str, opts: Options) -> List[str]:
  """Writes the outputs of each mode in `modes` into out_dir; returns paths.

  Raises:
    GenerationError: an invalid option, or no samples when 'progress' is the
      only mode (with others it is skipped with a note).
  """
  unknown = [m for m in modes if m not in MODES]
  if unknown:
    raise GenerationError(f'Unknown mode(s) {unknown}; choose from '
                          f'{", ".join(MODES)} or all.')
  if 'walk' in modes:
    check_dims(opts.dims, config.latent_dim)  # fail before any other work
  written = []
  for mode in modes:
    if mode == 'grid':
      written.append(write_grid(generator, config, out_dir, opts))
    elif mode == 'interpolate':
      written.append(write_interpolation(generator, config, out_dir, opts))
    elif mode == 'circle':
      written.append(write_circle(generator, config, out_dir, opts))
    elif mode == 'walk':
      written += write_walks(generator, config, out_dir, opts)
    elif mode == 'progress':
      if len(modes) > 1 and not img.sample_paths(
          os.path.join(run_dir, rundir.SAMPLES_DIR)):
        print('No samples/epoch_*.png yet: progress.gif skipped.')
        continue
      written.append(write_progress(run_dir, out_dir))
    else:
      written.append(export_savedmodel(generator, config, out_dir))
  return written
