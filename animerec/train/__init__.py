"""Training (needs the `train` extra: TensorFlow). Nothing here is imported at run time; only
identities.py, the identity manifest, which needs no TensorFlow, is read by calibration and the
naming benchmarks too."""

# Named here, not in archs.py, so the command line can list them without importing Keras.
ARCH_NAMES = ("anime", "cosface", "identity", "identity-arcface", "seed")
DEFAULT_ARCH = "anime"
