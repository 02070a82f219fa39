"""What generate.py and project.py write: sample grids, GIFs, latent walks,
SavedModel and TFLite exports, projections and their nearest training images.

Each `write_*` function turns latents (models/latents.py) into files with a
generator in inference mode; `generate` runs the modes asked for. Nothing
here reads flags.
"""

import dataclasses
import os
from typing import List, Optional, Sequence, Tuple

import numpy as np

from common import files
from configs import definitions
from configs.errors import FaceganError
from configs.presets import Config
from models import directions as edit_directions
from models import export
from models import latents
from models import streams
from models.latents import circle, circle_angles, lerp, render, slerp, walk
from pictures import images as img

MODES = definitions.GENERATE_MODES
ALL_MODES = definitions.PICTURE_MODES  # what --mode=all writes


class GenerationError(FaceganError, ValueError):
  """The request cannot be served as asked; the message says why."""


@dataclasses.dataclass(frozen=True)
class Options:
  """What to draw; generate.py fills it from its flags."""

  seed: int = 0
  num: int = 64  # images in the sample grid
  grid_cols: int = 0  # 0: a square-ish grid
  truncation: Optional[float] = None
  interpolation: str = 'slerp'  # or 'linear'
  num_interpolations: int = 4  # pairs side by side in each GIF
  frames: int = 48
  fps: float = 12.0
  dims: Tuple[int, ...] = latents.DEFAULT_WALK_DIMS
  range: float = 3.0  # walks sweep [-range, range]
  walk_steps: int = 9  # images in each walk's PNG strip
  batch_size: int = 64  # latents per generator call
  num_directions: int = 10  # edit directions drawn by 'directions'
  direction_bases: int = 4  # base faces in each direction's strip


def _grid_frames(generator, path: np.ndarray, batch_size: int):
  """A path (T, N, D) -> T frames, each the N images tiled in a grid."""
  t, n, d = path.shape
  images = render(generator, path.reshape(t * n, d), batch_size)
  images = images.reshape((t, n) + images.shape[1:])
  return [img.make_grid(frame) for frame in images]


def _pairs(config: Config, opts: Options):
  z = latents.sample_latents(
    config, 2 * opts.num_interpolations, opts.seed, streams.PAIRS, opts.truncation
  )
  return z[0::2], z[1::2]


def write_grid(generator, config: Config, out_dir: str, opts: Options) -> str:
  """grid.png: opts.num samples in opts.grid_cols columns."""
  z = latents.sample_latents(config, opts.num, opts.seed, streams.GRID, opts.truncation)
  path = os.path.join(out_dir, 'grid.png')
  img.save_png(path, img.make_grid(render(generator, z, opts.batch_size), opts.grid_cols))
  return path


def write_interpolation(generator, config: Config, out_dir: str, opts: Options) -> str:
  """interpolation_<slerp|linear>.gif: pairs z1 -> z2 in opts.frames frames.

  The first frame is exactly G(z1) and the last exactly G(z2).
  """
  z1, z2 = _pairs(config, opts)
  fn = {'slerp': slerp, 'linear': lerp}.get(opts.interpolation)
  if fn is None:
    raise GenerationError(f'Unknown interpolation {opts.interpolation!r}; use slerp or linear.')
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


def write_walks(generator, config: Config, out_dir: str, opts: Options) -> List[str]:
  """walk_dimNNN.gif and walk_dimNNN.png for each of opts.dims.

  One base latent, shared by every dimension so the walks are comparable; the
  GIF sweeps the dimension from -range to +range in opts.frames frames, the
  PNG strip in opts.walk_steps steps.
  """
  latents.check_dims(opts.dims, config.latent_dim)
  z = latents.sample_latents(config, 1, opts.seed, streams.WALK, opts.truncation)[0]
  r = opts.range
  paths = []
  for d in opts.dims:
    frames = render(generator, walk(z, d, np.linspace(-r, r, opts.frames)), opts.batch_size)
    strip = render(generator, walk(z, d, np.linspace(-r, r, opts.walk_steps)), opts.batch_size)
    base = os.path.join(out_dir, f'walk_dim{d:03d}')
    img.save_gif(base + '.gif', list(frames), opts.fps)
    img.save_png(base + '.png', img.make_grid(strip, cols=opts.walk_steps))
    paths += [base + '.gif', base + '.png']
  return paths


def write_directions(
  generator, config: Config, run_dir: str, out_dir: str, opts: Options
) -> List[str]:
  """directions.png and direction_NN.png: the run's edit directions.

  The directions (models.directions, GANSpace) are cached in the run
  directory. direction_NN.png moves opts.direction_bases faces, one per
  row, from -range to +range along direction NN in opts.walk_steps steps
  (the middle column is the face itself); directions.png shows every
  direction on the first face, one per row.
  """
  found = edit_directions.cached_directions(run_dir, generator, config, opts.num_directions)
  z = latents.sample_latents(
    config, opts.direction_bases, opts.seed, streams.DIRECTION_BASES, opts.truncation
  )
  steps = np.linspace(-opts.range, opts.range, opts.walk_steps)
  paths, overview = [], []
  for k, (u, share) in enumerate(zip(found.vectors, found.variance)):
    path = z[:, None, :] + steps[None, :, None] * u  # (bases, steps, D)
    strips = render(generator, path.reshape(-1, z.shape[1]), opts.batch_size)
    overview.append(strips[: opts.walk_steps])
    paths.append(os.path.join(out_dir, f'direction_{k:02d}.png'))
    grid = img.make_grid(strips, cols=opts.walk_steps)
    img.save_png(paths[-1], img.label(grid, f'direction {k}: {100 * share:.1f}% of the variance'))
  paths.append(os.path.join(out_dir, 'directions.png'))
  img.save_png(paths[-1], img.make_grid(np.concatenate(overview), cols=opts.walk_steps))
  return paths


def write_progress(run_dir: str, out_dir: str) -> str:
  """progress.gif from the run's samples/epoch_*.png, labelled by epoch.

  Useful for runs stopped before the end, which have no progress.gif yet.
  """
  samples = os.path.join(run_dir, img.SAMPLES_DIR)
  out = os.path.join(out_dir, 'progress.gif')
  if not img.progress_gif(samples, out):
    raise GenerationError(
      f'No samples/epoch_*.png in {run_dir}: the run has not finished an epoch yet.'
    )
  return out


def write_projection(
  projection, target: np.ndarray, out_dir: str, name: str, fps: float = 12.0
) -> List[str]:
  """<name>_z.npy, <name>_reconstruction.png (photo | G(z)), <name>_projection.gif.

  Args:
    projection: a models.projection.Projection.
    target: uint8 (H, W, 3), the photo as the run sees it.
    name: the stem of the three files.
  """
  base = os.path.join(out_dir, name)
  z_path = base + '_z.npy'
  files.write_whole(z_path, lambda p: np.save(p, projection.z))
  pair = img.make_grid(np.stack([target, projection.image]), cols=2)
  img.save_png(
    base + '_reconstruction.png', img.label(pair, f'photo | G(z), rmse {projection.rms:.1f}')
  )
  frames = [
    img.label(img.make_grid(np.stack([target, frame]), cols=2), f'step {step}')
    for frame, step in zip(projection.frames, projection.frame_steps)
  ]
  frames += [frames[-1]] * int(fps)  # hold the result for a second
  img.save_gif(base + '_projection.gif', frames, fps)
  return [z_path, base + '_reconstruction.png', base + '_projection.gif']


def write_nearest(
  reconstruction: np.ndarray, neighbours: np.ndarray, distances: Sequence[float], path: str
) -> str:
  """G(z) then its nearest training images in a row, labelled with distances.

  A reconstruction that is a near copy of a training image (distance close
  to 0) is a sign that G memorised it.
  """
  row = img.make_grid(np.concatenate([reconstruction[None], neighbours]), cols=len(neighbours) + 1)
  text = 'G(z) | nearest train, rms: ' + ', '.join(f'{d:.0f}' for d in distances)
  img.save_png(path, img.label(row, text))
  return path


def generate(
  modes: Sequence[str],
  generator,
  config: Config,
  run_dir: str,
  out_dir: str,
  opts: Options,
  step: int = 0,
) -> List[str]:
  """Writes the outputs of each mode in `modes` into out_dir; returns paths.

  `step` is the training step of G's weights, recorded by 'weights'.

  Raises:
    GenerationError: an invalid option, or no samples when 'progress' is the
      only mode (with others it is skipped with a note).
  """
  unknown = [m for m in modes if m not in MODES]
  if unknown:
    raise GenerationError(f'Unknown mode(s) {unknown}; choose from {", ".join(MODES)} or all.')
  if 'walk' in modes:
    latents.check_dims(opts.dims, config.latent_dim)  # fail before any other work
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
    elif mode == 'directions':
      written += write_directions(generator, config, run_dir, out_dir, opts)
    elif mode == 'progress':
      if len(modes) > 1 and not img.sample_paths(os.path.join(run_dir, img.SAMPLES_DIR)):
        print('No samples/epoch_*.png yet: progress.gif skipped.')
        continue
      written.append(write_progress(run_dir, out_dir))
    elif mode == 'savedmodel':
      written.append(export.export_savedmodel(generator, config, out_dir))
    elif mode == 'weights':
      written += export.export_weights(generator, config, out_dir, step)
    else:
      written.append(export.export_tflite(generator, config, out_dir))
  return written
