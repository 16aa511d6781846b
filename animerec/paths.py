"""Where the bundled files live, found from any working directory."""

from __future__ import annotations

from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent / "models"
CASCADE_PATH = MODELS_DIR / "lbpcascade_animeface.xml"
CASCADE_SHA256 = "9376d30ac38db6bda2a68b88b3b76bbd7e6aa33af47f7f5c76bc88ca75f1ce30"
DEFAULT_MODEL_PATH = MODELS_DIR / "default.onnx"
FACEBOXES_PATH = MODELS_DIR / "faceboxes_anime_tuned.onnx"  # the learned face detector; see DETECTOR_CARD.md
# The vendored FaceBoxes weights as published, ported: the fine-tuning's pseudo-labeller, and the
# file the parity fixture checks.
PRETRAINED_FACEBOXES_PATH = MODELS_DIR / "faceboxes_anime.onnx"
SAMPLES_DIR = Path(__file__).resolve().parent / "samples"
SAMPLE_FACES_DIR = SAMPLES_DIR / "faces"  # eight face crops with their sources in SOURCES.md
SAMPLE_VIDEO = SAMPLES_DIR / "demo.mp4"
# The overlay colours: served to the OBS page from the static folder, read by the burnt-in overlay.
OVERLAY_PALETTE = Path(__file__).resolve().parent / "server" / "static" / "palette.json"
