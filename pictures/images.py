"""Sample grids and GIFs: the pictures a run produces."""

import glob
import os
import re
from typing import List, Sequence

import imageio.v3 as iio
import numpy as np
from PIL import Image, ImageDraw

from common.files import write_whole

SAMPLES_DIR = 'samples'  # a run's per-epoch grids, in a run directory
PAD = 2
PAD_VALUE = 32  # dark grey between tiles


def make_grid(images: np.ndarray, cols: int = 0) -> np.ndarray:
  """Tiles uint8 images (N, H, W, 3) into one (rows*(H+2)+2, ...) picture.

  Args:
    images: uint8 array (N, H, W, 3).
    cols: tiles per row; 0 picks ceil(sqrt(N)).
  """
  n, h, w, ch = images.shape
  cols = cols or int(np.ceil(np.sqrt(n)))
  rows = int(np.ceil(n / cols))
  grid = np.full((rows * (h + PAD) + PAD, cols * (w + PAD) + PAD, ch), PAD_VALUE, np.uint8)
  for k in range(n):
    r, c = divmod(k, cols)
    y, x = PAD + r * (h + PAD), PAD + c * (w + PAD)
    grid[y : y + h, x : x + w] = images[k]
  return grid


def save_png(path: str, image: np.ndarray) -> None:
  """Writes a uint8 HxWx3 array as PNG (no timestamps: same pixels, same bytes)."""
  write_whole(path, lambda p: Image.fromarray(image).save(p, format='PNG'))


def save_gif(path: str, frames: Sequence[np.ndarray], fps: float = 10.0, loop: bool = True) -> None:
  """Writes uint8 frames as an animated GIF at `fps` frames per second."""
  write_whole(
    path,
    lambda p: iio.imwrite(
      p, np.stack(frames), extension='.gif', duration=int(round(1000 / fps)), loop=0 if loop else 1
    ),
  )


def label(image: np.ndarray, text: str) -> np.ndarray:
  """The image with a caption strip above it (PIL's built-in font)."""
  strip = 14
  canvas = Image.new('RGB', (image.shape[1], image.shape[0] + strip), (0, 0, 0))
  canvas.paste(Image.fromarray(image), (0, strip))
  ImageDraw.Draw(canvas).text((3, 1), text, fill=(255, 255, 255))
  return np.asarray(canvas)


def sample_paths(samples_dir: str) -> List[str]:
  """samples/epoch_XXXX.png files in epoch order."""
  paths = glob.glob(os.path.join(samples_dir, 'epoch_*.png'))
  return sorted(paths, key=lambda p: int(re.findall(r'\d+', os.path.basename(p))[0]))


def progress_gif(samples_dir: str, path: str, fps: float = 4.0) -> int:
  """Assembles the per-epoch grids into a labelled GIF; returns frame count.

  The last frame is held for a second so the final result can be seen.
  """
  paths = sample_paths(samples_dir)
  if not paths:
    return 0
  frames = []
  for p in paths:
    epoch = int(re.findall(r'\d+', os.path.basename(p))[0])
    frames.append(label(np.asarray(Image.open(p).convert('RGB')), f'epoch {epoch}'))
  frames += [frames[-1]] * int(fps)
  save_gif(path, frames, fps=fps)
  return len(paths)
