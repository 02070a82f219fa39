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

# --- train step (stateless TF, folded with (config.seed, step)) -----------
Z_D = 0             # latents of the D step's fakes
LABELS = 1          # smoothed real labels
NOISE_REAL = 2      # instance noise on D's real input
NOISE_FAKE = 3      # instance noise on D's fake input in the D step
Z_G = 10            # + 2 * (G step index): latents of each G step
NOISE_G = 11        # + 2 * (G step index): instance noise in each G step
# Augmentation: each draw adds its number (< 10): 0-6 the transforms, 7 the
# x-flip, 8 which images each transform reaches (augment_p).
AUG_REAL = 100
AUG_FAKE = 110
AUG_G = 120         # + 10 * (G step index)

# --- latent batches (numpy, seeded with [seed, stream]) --------------------
FIXED_LATENT = 1    # the run's fixed sample-grid batch (fixed_latent.npy)
EVALUATION = 2      # latents of every metric's generated images
GRID = 11           # generate.py grid.png
PAIRS = 12          # generate.py interpolation and circle pairs
WALK = 13           # generate.py latent-walk base vector
PROJECTION = 14     # starting latents of a photo's projection
