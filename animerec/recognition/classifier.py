"""The character classifier on ONNX Runtime: CUDA when it really loads, CPU otherwise, always said."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from animerec.errors import ModelError
from animerec.recognition.crop import to_model_input
from animerec.recognition.model_info import EMBEDDING_OUTPUT, PROBS_OUTPUT, ModelInfo

log = logging.getLogger(__name__)

# Batches are padded up to one of these sizes, so each shape is seen (and warmed up) once:
# cuDNN's algorithm search and ONNX Runtime's allocators are slow on every new shape.
BATCH_SIZES = (1, 4, 8, 16, 32)
CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"


@dataclass(frozen=True)
class Scores:
    """Classifier output for n crops."""

    probs: NDArray[np.float32]  # (n, classes), rows sum to 1
    embeddings: NDArray[np.float32]  # (n, dim), L2-normalised


class Classifier(Protocol):
    labels: tuple[str, ...]
    provider: str

    def classify(self, crops: list[NDArray[np.uint8]]) -> Scores:
        """Score BGR uint8 face crops of any size."""
        ...


def padded_size(n: int) -> int:
    return next((size for size in BATCH_SIZES if size >= n), BATCH_SIZES[-1])


class OnnxClassifier:
    """One ONNX Runtime session, built once, warmed up at every padded batch size."""

    def __init__(self, path: str | Path, device: str = "auto", warmup: bool = True) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"model file not found: {self.path}")
        ort.set_default_logger_severity(3)  # its provider-fallback errors are ours to report
        options = ort.SessionOptions()
        options.log_severity_level = 3
        wanted = execution_providers(device, ort.get_available_providers())
        try:
            with quiet_stderr(enabled=CUDA in str(wanted)):
                self._session = ort.InferenceSession(str(self.path), options, providers=wanted)
            metadata = self._session.get_modelmeta().custom_metadata_map
            self.info = ModelInfo.from_metadata(metadata)
        except (KeyError, ValueError) as error:
            raise ModelError(f"{self.path} is not an Animerec model ({error})") from error
        except Exception as error:  # onnxruntime raises its own exception types for bad files
            raise ModelError(f"cannot load model {self.path}: {error}") from error
        outputs = {o.name for o in self._session.get_outputs()}
        if PROBS_OUTPUT not in outputs:
            raise ModelError(f"{self.path} has no '{PROBS_OUTPUT}' output")
        self._outputs = [PROBS_OUTPUT] + ([EMBEDDING_OUTPUT] if EMBEDDING_OUTPUT in outputs else [])
        self._input = self._session.get_inputs()[0].name
        self.provider = self._session.get_providers()[0]
        self._cuda_failed = CUDA in str(wanted) and self.provider != CUDA
        if device == "cuda" and self.provider != CUDA:
            raise ModelError("--device cuda: the CUDA execution provider did not load")
        self.labels = self.info.labels
        if warmup:
            for size in BATCH_SIZES:
                self._run(np.zeros((size, self.input_size, self.input_size, 3), np.float32))

    @property
    def input_size(self) -> int:
        return self.info.input_size

    @property
    def model_id(self) -> str:
        return self.info.model_id

    def describe_provider(self) -> str:
        """One line for standard error, saying where inference really runs."""
        return f"animerec: classifier {self.path.name} on {where_it_runs(self.provider, self._cuda_failed)}"

    def classify(self, crops: list[NDArray[np.uint8]]) -> Scores:
        if not crops:
            return Scores(np.zeros((0, len(self.labels)), np.float32), np.zeros((0, 0), np.float32))
        batch = to_model_input(crops, self.input_size)
        probs, embeddings = [], []
        for start in range(0, len(batch), BATCH_SIZES[-1]):
            chunk = batch[start : start + BATCH_SIZES[-1]]
            n = len(chunk)
            padded = np.zeros((padded_size(n), *chunk.shape[1:]), np.float32)
            padded[:n] = chunk
            p, e = self._run(padded)
            probs.append(p[:n])
            embeddings.append(e[:n])
        return Scores(np.concatenate(probs), np.concatenate(embeddings))

    def _run(self, batch: NDArray[np.float32]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        results = self._session.run(self._outputs, {self._input: batch})
        probs = np.asarray(results[0], np.float32)
        embeddings = np.asarray(results[1], np.float32) if len(results) > 1 else np.zeros((len(batch), 0), np.float32)
        return probs, embeddings


def execution_providers(device: str, available: list[str]) -> list[str | tuple[str, dict[str, str]]]:
    """ONNX Runtime's providers for `device` (auto, cpu or cuda), in order of preference. The
    learned detector chooses its providers here too."""
    if device not in ("auto", "cpu", "cuda"):
        raise ModelError(f"device must be auto, cpu or cuda, got {device!r}")
    if device == "cpu" or CUDA not in available:
        return [CPU]
    # Heuristic search: the exhaustive one makes every new input shape slow the first time.
    return [(CUDA, {"cudnn_conv_algo_search": "HEURISTIC"}), CPU]


def where_it_runs(provider: str, cuda_failed: bool) -> str:
    """The provider in use, in words, for the start-up line."""
    if provider == CUDA:
        return "CUDA (CUDAExecutionProvider)"
    if cuda_failed:
        return "CPU (CUDA is listed but did not load: no usable GPU or CUDA libraries)"
    return "CPU (CPUExecutionProvider)"


@contextmanager
def quiet_stderr(enabled: bool) -> Iterator[None]:
    """Silence file descriptor 2 while ONNX Runtime tries CUDA: when the CUDA libraries are
    missing it prints a red error straight to the descriptor (not through its logger) and then
    falls back to CPU, which we detect and announce ourselves."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def announce(classifier: Classifier) -> None:
    describe = getattr(classifier, "describe_provider", None)
    line = describe() if describe else f"animerec: classifier on {classifier.provider}"
    print(line, file=sys.stderr)
