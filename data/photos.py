"""One user photo -> the run's input: checked, decoded, cropped and resized.

Used by project.py and the explorer's upload. A photo is refused with a
PhotoError that says why: too large a file, not an image, or a
decompression bomb (a small file that decodes to an enormous image).
"""

import io
import warnings

import numpy as np
from PIL import Image, ImageOps

from configs.presets import Config
from data import pipeline

MAX_BYTES = 20 * 1024 * 1024
# Far above any photo (a 50-megapixel camera), far below a memory problem.
MAX_PIXELS = 64_000_000


class PhotoError(ValueError):
  """The photo cannot be used; the message says why."""


def decode(data: bytes, name: str = 'the photo') -> np.ndarray:
  """uint8 RGB (H, W, 3) from the bytes of a JPEG, PNG, WebP... file.

  EXIF rotation is applied, so a phone photo stands upright.

  Raises:
    PhotoError: over MAX_BYTES, not a readable image, or over MAX_PIXELS.
  """
  if len(data) > MAX_BYTES:
    raise PhotoError(f'{name} is {len(data) / 2**20:.1f} MB, over the '
                     f'{MAX_BYTES // 2**20} MB limit: use a smaller file.')
  try:
    with warnings.catch_warnings():
      # PIL warns on huge images (and raises at twice its limit); the size
      # check below refuses them with a message instead.
      warnings.simplefilter('ignore', Image.DecompressionBombWarning)
      with Image.open(io.BytesIO(data)) as image:
        if image.width * image.height > MAX_PIXELS:
          raise PhotoError(
              f'{name} is {image.width}x{image.height} pixels, over the '
              f'{MAX_PIXELS // 10**6} megapixel limit (a decompression '
              'bomb?): use a smaller image.')
        image.load()
        image = ImageOps.exif_transpose(image)
        return np.asarray(image.convert('RGB'))
  except PhotoError:
    raise
  except Image.DecompressionBombError as e:
    raise PhotoError(f'{name} decodes to too many pixels (a decompression '
                     'bomb?): use a smaller image.') from e
  except (OSError, SyntaxError, ValueError) as e:  # UnidentifiedImageError too
    raise PhotoError(f'{name} is not an image PIL can read (JPEG, PNG, WebP, '
                     'BMP...).') from e


def read(path: str) -> np.ndarray:
  """decode() of the file at `path`, with the size checked before reading."""
  try:
    with open(path, 'rb') as f:
      data = f.read(MAX_BYTES + 1)
  except OSError as e:
    raise PhotoError(f'Cannot read {path!r} ({e.strerror}).') from e
  return decode(data, path)


def prepare(image: np.ndarray, config: Config) -> np.ndarray:
  """uint8 (H, W, 3) at the run's size: the data pipeline's crop and resize.

  The crop is in pixels of CelebA's 178-wide aligned frame, scaled to the
  photo's width: a photo framed like CelebA's aligned faces (eyes a little
  above the middle, the face filling the central square) projects best.
  """
  return pipeline.crop_and_resize(image, config).numpy()
