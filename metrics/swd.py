"""Sliced Wasserstein distance on Laplacian-pyramid patches (Karras et al. 2017).

Matches NVIDIA's reference, progressive_growing_of_gans/metrics/
sliced_wasserstein.py (commit 2504c3f), in every detail that changes the value:

- Pyramid: the 5x5 binomial filter [1 4 6 4 1]^T [1 4 6 4 1] / 256 with
  mirror borders (reflection about the edge pixel, cv2's default), down =
  filter then keep even pixels, up = zero-insert then filter x4 (cv2.pyrDown
  / cv2.pyrUp); Laplacian level l = gauss_l - up(gauss_{l+1}), the last level
  is the coarsest Gaussian. Levels from full size down to >= 16 px.
- Descriptors: 128 random 7x7x3 patches per image and level, centres drawn so
  the patch lies inside the level.
- Normalisation: each SET of descriptors (real, fake) is normalised per
  colour channel by its OWN mean and std over all its descriptors and pixels
  (the reference calls finalize_descriptors on each set separately).
- Distance: 4 repeats x 128 random unit directions (512 projections, the
  paper's count), mean over descriptors and directions of |sorted(A.d) -
  sorted(B.d)|, averaged over repeats; reported x1e3 per level and averaged.

Odd and non-square sizes (157x128), which the reference cannot handle: down
keeps ceil(n/2) pixels (as cv2.pyrDown); up zero-inserts the coarse pixels
at the even positions of the finer level's own size, so an odd level ends on
a real sample and mirror padding stays symmetric (for even sizes this is
exactly the reference). Levels continue while the shorter side of the next
level is >= 16 (the reference uses the height of square images): 48 -> 48,
24; 64 -> 64, 32, 16; 157x128 -> 157x128, 79x64, 40x32, 20x16.

Because of the per-set normalisation and the pyramid's linearity, SWD is
unchanged by any affine map of pixel values (uint8 or [-1, 1] give the same
number) and is blind to a global per-channel shift or contrast change.
"""

from typing import Dict, List, Tuple

import numpy as np

MIN_LEVEL_SIZE = 16
PATCH_SIZE = 7
PATCHES_PER_IMAGE = 128
DIR_REPEATS = 4
DIRS_PER_REPEAT = 128
# Images per chunk of pyramid work: bounds memory for large sets.
_CHUNK = 256

_TAPS = np.float32([1, 4, 6, 4, 1]) / 16  # outer product = the 5x5 / 256 filter


def _blur(x: np.ndarray) -> np.ndarray:
  """Separable 5x5 binomial filter over axes 1, 2 of NHWC, mirror borders."""
  for axis in (1, 2):
    pad = [(0, 0)] * 4
    pad[axis] = (2, 2)
    # numpy 'reflect' (d c b | a b c d) is scipy.ndimage's 'mirror'.
    p = np.pad(x, pad, mode='reflect')
    n = x.shape[axis]
    x = sum(t * np.take(p, np.arange(k, k + n), axis=axis) for k, t in enumerate(_TAPS))
  return x


def pyr_down(x: np.ndarray) -> np.ndarray:
  """(N, h, w, C) -> (N, ceil(h/2), ceil(w/2), C), as cv2.pyrDown."""
  return _blur(x)[:, ::2, ::2]


def pyr_up(x: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
  """Coarse (N, ceil(h/2), ceil(w/2), C) -> (N, h, w, C), as cv2.pyrUp."""
  up = np.zeros((x.shape[0], size[0], size[1], x.shape[3]), np.float32)
  up[:, ::2, ::2] = x
  return _blur(up) * 4  # x4: three of every four pixels are zeros


def level_sizes(height: int, width: int) -> List[Tuple[int, int]]:
  """(h, w) of each pyramid level: halve (ceil) while the short side >= 16."""
  sizes = [(height, width)]
  while min(-(-sizes[-1][0] // 2), -(-sizes[-1][1] // 2)) >= MIN_LEVEL_SIZE:
    sizes.append((-(-sizes[-1][0] // 2), -(-sizes[-1][1] // 2)))
  return sizes


def laplacian_pyramid(images: np.ndarray, num_levels: int) -> List[np.ndarray]:
  """float32 Laplacian levels of NHWC `images`, finest first, coarsest last."""
  pyramid = [np.asarray(images, np.float32)]
  for _ in range(1, num_levels):
    pyramid.append(pyr_down(pyramid[-1]))
    pyramid[-2] = pyramid[-2] - pyr_up(pyramid[-1], pyramid[-2].shape[1:3])
  return pyramid


def _patches(level: np.ndarray, centres: np.ndarray) -> np.ndarray:
  """(N, h, w, C) level, (N, P, 2) centres -> (N * P, 7, 7, C) patches."""
  n, p = centres.shape[:2]
  offsets = np.arange(PATCH_SIZE) - PATCH_SIZE // 2
  img = np.repeat(np.arange(n), p)[:, None, None]
  ys = centres[..., 0].reshape(-1)[:, None, None] + offsets[None, :, None]
  xs = centres[..., 1].reshape(-1)[:, None, None] + offsets[None, None, :]
  return level[img, ys, xs]


def descriptors(
  images: np.ndarray, rng: np.random.Generator, patches_per_image: int = PATCHES_PER_IMAGE
) -> List[np.ndarray]:
  """Raw 7x7xC patch descriptors of every pyramid level of NHWC `images`.

  Returns one (N * patches_per_image, 7, 7, C) float32 array per level.
  """
  n, h, w = images.shape[:3]
  sizes = level_sizes(h, w)
  half = PATCH_SIZE // 2
  # Centres in [half, size - half), as np.random.randint(H, S - H) in the
  # reference; drawn up front so the result does not depend on _CHUNK.
  centres = [
    np.stack(
      [
        rng.integers(half, lh - half, (n, patches_per_image)),
        rng.integers(half, lw - half, (n, patches_per_image)),
      ],
      axis=-1,
    )
    for lh, lw in sizes
  ]
  out = [[] for _ in sizes]
  for start in range(0, n, _CHUNK):
    pyramid = laplacian_pyramid(images[start : start + _CHUNK], len(sizes))
    for lod, level in enumerate(pyramid):
      out[lod].append(_patches(level, centres[lod][start : start + _CHUNK]))
  return [np.concatenate(d) for d in out]


def normalize(desc: np.ndarray) -> np.ndarray:
  """(M, 7, 7, C) -> (M, 49 C): zero mean, unit std per channel over the set.

  The mean and std are accumulated in float64: float32 sums over the
  ~10^6 values of a level drift by percents when the colours are offset
  (a colour-shifted set), which biased SWD by up to 85% at the coarsest level.
  """
  flat = desc.reshape(-1, desc.shape[-1]).astype(np.float64)
  mean, std = flat.mean(axis=0), flat.std(axis=0)
  desc = ((desc - mean) / std).astype(np.float32)
  return desc.reshape(desc.shape[0], -1)


def sliced_wasserstein(
  a: np.ndarray,
  b: np.ndarray,
  rng: np.random.Generator,
  dir_repeats: int = DIR_REPEATS,
  dirs_per_repeat: int = DIRS_PER_REPEAT,
) -> float:
  """SWD between equal-sized point sets a, b of shape (M, D).

  SWD = mean_dirs mean_i |sort(a d)_i - sort(b d)_i|, d uniform on the unit
  sphere: the 1-D Wasserstein-1 distance of the projections, averaged.
  """
  if a.ndim != 2 or a.shape != b.shape:
    raise ValueError(f'Need two (M, D) sets of the same shape, got {a.shape} and {b.shape}.')
  results = []
  for _ in range(dir_repeats):
    dirs = rng.standard_normal((a.shape[1], dirs_per_repeat))
    dirs = (dirs / np.linalg.norm(dirs, axis=0, keepdims=True)).astype(np.float32)
    # Transposed so each direction's projections are contiguous to sort.
    proj_a = np.sort((a @ dirs).T, axis=1)
    proj_b = np.sort((b @ dirs).T, axis=1)
    results.append(np.mean(np.abs(proj_a - proj_b)))
  return float(np.mean(results))


def swd(
  images_a: np.ndarray,
  images_b: np.ndarray,
  seed: int = 0,
  patches_per_image: int = PATCHES_PER_IMAGE,
  dir_repeats: int = DIR_REPEATS,
  dirs_per_repeat: int = DIRS_PER_REPEAT,
) -> Dict[str, float]:
  """SWD x1e3 per pyramid level and their average, between two image sets.

  Args:
    images_a, images_b: (N, H, W, C) arrays, same shape, any affine pixel
      range (uint8 or [-1, 1]); H, W >= 16.
    seed: seeds patch positions and projection directions.
    patches_per_image, dir_repeats, dirs_per_repeat: reference defaults.

  Returns:
    {'<h>x<w>': SWD x1e3 of that level, ..., 'avg': mean over levels}.
  """
  if images_a.shape != images_b.shape or images_a.ndim != 4:
    raise ValueError(
      f'Need two (N, H, W, C) sets of the same shape, got {images_a.shape} and {images_b.shape}.'
    )
  if min(images_a.shape[1:3]) < MIN_LEVEL_SIZE:
    raise ValueError(
      f'Images must be at least {MIN_LEVEL_SIZE} px a side, got {images_a.shape[1:3]}.'
    )
  rng_a, rng_b, rng_dirs = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
  desc_a = descriptors(images_a, rng_a, patches_per_image)
  desc_b = descriptors(images_b, rng_b, patches_per_image)
  out = {}
  for (h, w), da, db in zip(level_sizes(*images_a.shape[1:3]), desc_a, desc_b):
    out[f'{h}x{w}'] = 1e3 * sliced_wasserstein(
      normalize(da), normalize(db), rng_dirs, dir_repeats, dirs_per_repeat
    )
  out['avg'] = float(np.mean(list(out.values())))
  return out
