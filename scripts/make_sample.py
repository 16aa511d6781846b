"""Make the bundled sample clip animerec/samples/demo.mp4 from the bundled sample faces.

    .venv/bin/python scripts/make_sample.py
"""

from __future__ import annotations

import cv2

from animerec.benchmarks.synthetic import SyntheticScene
from animerec.paths import SAMPLE_FACES_DIR, SAMPLE_VIDEO

NAMES = ("gura", "ina", "kiara", "mumei")


def main() -> None:
    faces = [(name, cv2.imread(str(SAMPLE_FACES_DIR / f"{name}.jpg"))) for name in NAMES]
    scene = SyntheticScene(faces, width=1280, height=720, fps=24, frame_count=144, seed=7, face_height=0.26)
    scene.write(SAMPLE_VIDEO, audio=True)
    print(f"wrote {SAMPLE_VIDEO} ({SAMPLE_VIDEO.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
