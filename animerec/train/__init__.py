"""Training (needs the `train` extra: TensorFlow). Nothing here is imported at run time."""

# Named here, not in archs.py, so the command line can list them without importing Keras.
ARCH_NAMES = ("anime", "cosface", "identity", "identity-arcface", "seed")
DEFAULT_ARCH = "anime"
