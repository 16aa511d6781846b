"""What travels inside an ONNX model's metadata, so a model and its labels never drift apart."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

PREFIX = "animerec."
COLOR_ORDER = "RGB"
SCALING = "0..1"
PROBS_OUTPUT = "probs"
EMBEDDING_OUTPUT = "embedding"


@dataclass(frozen=True)
class ModelInfo:
    labels: tuple[str, ...]
    input_size: int
    arch: str
    model_id: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    color_order: str = COLOR_ORDER
    scaling: str = SCALING

    def to_metadata(self) -> dict[str, str]:
        return {
            PREFIX + "labels": json.dumps(list(self.labels), ensure_ascii=False),
            PREFIX + "input_size": str(self.input_size),
            PREFIX + "arch": self.arch,
            PREFIX + "model_id": self.model_id,
            PREFIX + "metrics": json.dumps(self.metrics),
            PREFIX + "color_order": self.color_order,
            PREFIX + "scaling": self.scaling,
        }

    @classmethod
    def from_metadata(cls, metadata: dict[str, str]) -> ModelInfo:
        """Raises KeyError or ValueError when the metadata is missing or malformed."""
        info = cls(
            labels=tuple(json.loads(metadata[PREFIX + "labels"])),
            input_size=int(metadata[PREFIX + "input_size"]),
            arch=metadata[PREFIX + "arch"],
            model_id=metadata.get(PREFIX + "model_id", ""),
            metrics=json.loads(metadata.get(PREFIX + "metrics", "{}")),
            color_order=metadata.get(PREFIX + "color_order", COLOR_ORDER),
            scaling=metadata.get(PREFIX + "scaling", SCALING),
        )
        if (info.color_order, info.scaling) != (COLOR_ORDER, SCALING):
            raise ValueError(f"unsupported input convention {info.color_order} {info.scaling}")
        if not info.labels or info.input_size < 8:
            raise ValueError("labels or input size missing")
        return info
