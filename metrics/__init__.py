"""Sample-quality metrics: SWD (swd.py), FID and KID (fid.py on features from
inception.py), precision/recall/density/coverage (coverage.py), nearest
training images (nearest.py), and scoring two image sets or a generator
during training (evaluation.py), and scoring a run directory (run_eval.py)."""
