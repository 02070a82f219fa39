"""Every random stream id of facegan, in one table.

Two families draw from them, so no two kinds of randomness ever share
numbers, and adding a draw never shifts another:

- Per-step draws inside the train step (models.gan): a stateless seed is
  folded from (config.seed, step) and the stream id, so every step's
  latents, labels, noise and augmentation are reproducible without RNG
  state, and a resumed run draws exactly what an uninterrupted one would.
- Latent batches outside training (models.latents.sample_latents): numpy's
  generator seeded with [seed, stream].
"""

from typing import NamedTuple

# --- train step (stateless TF, folded with (config.seed, step)) -----------
Z_D = 0  # latents of the D step's fakes
LABELS = 1  # smoothed real labels
NOISE_REAL = 2  # instance noise on D's real input
NOISE_FAKE = 3  # instance noise on D's fake input in the D step
Z_G = 10  # + 2 * (G step index): latents of each G step
NOISE_G = 11  # + 2 * (G step index): instance noise in each G step
# Augmentation: each draw adds its number (< 10): 0-6 the transforms, 7 the
# x-flip, 8 which images each transform reaches (augment_p).
AUG_REAL = 100
AUG_FAKE = 110
AUG_G = 120  # + 10 * (G step index)


class View(NamedTuple):
  """The streams of one batch D sees: its augmentation, its instance noise."""

  augment: int
  noise: int


D_REAL = View(AUG_REAL, NOISE_REAL)
D_FAKE = View(AUG_FAKE, NOISE_FAKE)


def g_latent(index: int) -> int:
  """The latents' stream of G update `index` of a step."""
  return Z_G + 2 * index


def g_view(index: int) -> View:
  """The streams of the fakes D judges in G update `index` of a step."""
  return View(AUG_G + 10 * index, NOISE_G + 2 * index)


# --- latent batches (numpy, seeded with [seed, stream]) --------------------
FIXED_LATENT = 1  # the run's fixed sample-grid batch (fixed_latent.npy)
EVALUATION = 2  # latents of every metric's generated images
STANDING_STATS = 3  # latents of the EMA G's BatchNorm statistics (models.generator)
GRID = 11  # generate.py grid.png
PAIRS = 12  # generate.py interpolation and circle pairs
WALK = 13  # generate.py latent-walk base vector
PROJECTION = 14  # starting latents of a photo's projection
DIRECTIONS = 15  # latents the edit directions are fitted on (models.directions)
DIRECTION_BASES = 16  # generate.py's base faces of the direction strips
