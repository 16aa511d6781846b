"""Animerec: real-time anime character recognition.

The public API for embedding lives in :mod:`animerec.api`.
"""

__version__ = "0.1.0"
