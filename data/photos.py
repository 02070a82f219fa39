"""One user photo -> the run's input: checked, decoded, cropped and resized.

Used by project.py and the explorer's upload. A photo is refused with a
PhotoError that says why: too large a file, not an image, a pixel format with
no 8-bit reading, or a decompression bomb (a small file that decodes to an
enormous image). Given the run's config, a JPEG is decoded at a reduced scale
that still covers what the run needs, and other formats are capped at a size
sized to the run, so an upload never costs more memory than the run can use.
"""

import io
from typing import Optional
import warnings

import numpy as np
from PIL import Image, ImageOps

from configs.errors import FaceganError
from configs.presets import FRAME_WIDTH, Config
from data import pipeline

MAX_BYTES = 20 * 1024 * 1024
# Far above any photo (a 50-megapixel camera), far below a memory problem.
MAX_PIXELS = 64_000_000
# The least pixel cap a run gets: a 2,000 x 2,000 image, 12 MB decoded.
MIN_RUN_PIXELS = 4_000_000


class PhotoError(FaceganError, ValueError):
  """The photo cannot be used; the message says why."""


def needed_side(config: Config) -> int:
  """Twice the photo side the run's crop and resize use at full resolution.

  A photo this wide and high keeps every output pixel from at least 2x2
  source pixels, so the antialiased resize loses nothing by a reduced
  decode down to it.
  """
  side = max(config.image_height, config.image_width)
  if config.crop > 0:  # the crop is a fraction of the photo's width
    side = side * FRAME_WIDTH / config.crop
  return int(2 * side + 1)


def run_pixel_cap(config: Config) -> int:
  """The most pixels a photo for this run may decode to (see decode)."""
  return max(MIN_RUN_PIXELS, 100 * needed_side(config) ** 2)


def _to_rgb(image: Image.Image, name: str) -> np.ndarray:
  """uint8 RGB of any 8- or 16-bit PIL image."""
  if image.mode in ('I;16', 'I;16L', 'I;16B'):
    # 16-bit grey: PIL's convert would clip every value above 255 to white.
    grey = np.asarray(image, np.uint32)
    grey = ((grey * 255 + 32767) // 65535).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)
  if image.mode in ('I', 'F') or image.mode.startswith('I;'):
    raise PhotoError(
      f'{name} is a {image.mode!r} image (32-bit integer, '
      'float or signed pixels), which has no standard 8-bit '
      'reading: save it as an 8- or 16-bit image.'
    )
  return np.asarray(image.convert('RGB'))


def decode(data: bytes, name: str = 'the photo', config: Optional[Config] = None) -> np.ndarray:
  """uint8 RGB (H, W, 3) from the bytes of a JPEG, PNG, WebP... file.

  EXIF rotation is applied, so a phone photo stands upright. 16-bit grey
  images are scaled to 8 bits.

  Args:
    data: the file's bytes.
    name: how messages name the photo.
    config: the run the photo is for. Given, a JPEG is decoded at the
      smallest of 1/8, 1/4, 1/2 or full scale that covers needed_side(config),
      and any image over run_pixel_cap(config) after that is refused.
      Without it, the cap is MAX_PIXELS.

  Raises:
    PhotoError: over MAX_BYTES, not a readable image, over the pixel cap, or
      a pixel format with no 8-bit reading.
  """
  if len(data) > MAX_BYTES:
    raise PhotoError(
      f'{name} is {len(data) / 2**20:.1f} MB, over the '
      f'{MAX_BYTES // 2**20} MB limit: use a smaller file.'
    )
  cap = run_pixel_cap(config) if config else MAX_PIXELS
  try:
    with warnings.catch_warnings():
      # PIL warns on huge images (and raises at twice its limit); the size
      # check below refuses them with a message instead.
      warnings.simplefilter('ignore', Image.DecompressionBombWarning)
      with Image.open(io.BytesIO(data)) as image:
        if config:
          side = needed_side(config)  # square: EXIF may turn the photo
          image.draft('RGB', (side, side))  # no-op for formats but JPEG
        if image.width * image.height > cap:
          limit = (
            f'the {cap / 10**6:.0f} megapixel limit for this run (it '
            f'uses about {needed_side(config) // 2} pixels across)'
            if config
            else f'the {cap // 10**6} megapixel limit (a decompression bomb?)'
          )
          raise PhotoError(
            f'{name} is {image.width}x{image.height} pixels, over {limit}: use a smaller image.'
          )
        image.load()
        return _to_rgb(ImageOps.exif_transpose(image), name)
  except PhotoError:
    raise
  except Image.DecompressionBombError as e:
    raise PhotoError(
      f'{name} decodes to too many pixels (a decompression bomb?): use a smaller image.'
    ) from e
  except (OSError, SyntaxError, ValueError) as e:  # UnidentifiedImageError too
    raise PhotoError(f'{name} is not an image PIL can read (JPEG, PNG, WebP, BMP...).') from e


def read(path: str, config: Optional[Config] = None) -> np.ndarray:
  """decode() of the file at `path`, with the size checked before reading."""
  try:
    with open(path, 'rb') as f:
      data = f.read(MAX_BYTES + 1)
  except OSError as e:
    raise PhotoError(f'Cannot read {path!r} ({e.strerror}).') from e
  return decode(data, path, config)


def prepare(image: np.ndarray, config: Config) -> np.ndarray:
  """uint8 (H, W, 3) at the run's size: the data pipeline's crop and resize.

  The crop is in pixels of CelebA's 178-wide aligned frame, scaled to the
  photo's width: a photo framed like CelebA's aligned faces (eyes a little
  above the middle, the face filling the central square) projects best.
  """
  return pipeline.crop_and_resize(image, config).numpy()
