"""Enrolled characters: their embeddings, tied to one model, in one JSON file.

A gallery lets the recogniser name characters the model never trained on, with no retraining:
each enrolled character is a handful of embeddings from the model's `embedding` output. An
embedding means nothing to another network, so the file records the model id (the hash of the
weights) and is refused with any other model. It also records where each face came from and how
it was cut (`framing`), so that `animerec gallery migrate` can embed the same faces again with a
new model instead of asking for the enrolment to be redone.

The file is UTF-8 JSON (names in any script), written to a temporary name and renamed, so a
crash never leaves half a gallery. A file that cannot be read is an error, never a silent reset:
it may hold hours of someone's enrolment.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import tempfile
import unicodedata
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from animerec.errors import UsageError
from animerec.recognition.model_info import decode_array, encode_array
from animerec.records import UNKNOWN

FORMAT = "animerec-gallery"
VERSION = 1
CROP = "crop"  # framing: the whole image is the face
DETECTED = "detected"  # framing: the largest face the cascade found, cut with the report's crop
UNKNOWN_FRAMING = ""  # galleries written before framing was recorded, or a mix of both
GALLERY_ENV = "ANIMEREC_GALLERY"  # overrides the default path, e.g. for tests or a shared setup


class GalleryError(UsageError):
    """A gallery file that is corrupt, made for another model, or asked to do something it can't."""


def default_gallery_path() -> Path:
    """The one gallery every command uses unless --gallery says otherwise.

    $ANIMEREC_GALLERY if set; else %APPDATA%\\animerec\\gallery.json on Windows and
    $XDG_DATA_HOME/animerec/gallery.json (default ~/.local/share) elsewhere.
    """
    override = os.environ.get(GALLERY_ENV)
    if override:
        return Path(override).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "animerec" / "gallery.json"



def clean_name(name: str) -> str:
    """NFC, so the same name typed on two keyboards (composed or not) is one character."""
    cleaned = unicodedata.normalize("NFC", name).strip()
    if not cleaned:
        raise UsageError("the character name is empty")
    if cleaned.lower() == UNKNOWN:
        raise UsageError(f"{UNKNOWN!r} is reserved for faces nobody is recognised as")
    return cleaned

@dataclass(frozen=True, eq=False)
class Character:
    """One enrolled character: its name and the L2-normalised embeddings of its face crops."""

    name: str
    embeddings: NDArray[np.float32]  # (n, dim), raw model embeddings, read-only
    sources: tuple[str, ...] = ()  # the image each embedding came from (absolute paths since migration exists)
    framing: str = UNKNOWN_FRAMING  # how the faces were cut from the sources: CROP or DETECTED

    def __post_init__(self) -> None:
        if not self.name.strip() or self.name != self.name.strip():
            raise GalleryError(f"a character name must be non-empty without surrounding spaces, got {self.name!r}")
        embeddings = np.array(self.embeddings, np.float32, ndmin=2)
        embeddings.flags.writeable = False
        object.__setattr__(self, "embeddings", embeddings)

    @property
    def count(self) -> int:
        return len(self.embeddings)


@dataclass(frozen=True)
class Gallery:
    """The enrolled characters of one model. Changing one returns a new Gallery."""

    model_id: str
    characters: tuple[Character, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.characters)

    def __len__(self) -> int:
        return len(self.characters)

    def get(self, name: str) -> Character | None:
        return next((c for c in self.characters if c.name == name), None)

    def check_can_enrol(self, name: str, append: bool) -> None:
        """An existing name is refused unless `append`: enrolling twice by mistake would mix faces."""
        existing = self.get(name)
        if existing is not None and not append:
            raise GalleryError(f"{name!r} is already enrolled ({existing.count} faces); pass --append to add faces")

    def enrol(self, character: Character, append: bool = False) -> Gallery:
        """Add a character; an existing name is refused unless `append`, which adds to its faces."""
        self.check_can_enrol(character.name, append)
        existing = self.get(character.name)
        if existing is None:
            return replace(self, characters=(*self.characters, character))
        if existing.embeddings.shape[1] != character.embeddings.shape[1]:
            raise GalleryError(f"{character.name!r}: embedding sizes differ ({existing.embeddings.shape[1]} vs "
                               f"{character.embeddings.shape[1]})")
        merged = Character(
            character.name,
            np.concatenate([existing.embeddings, character.embeddings]),
            existing.sources + character.sources,
            existing.framing if existing.framing == character.framing else UNKNOWN_FRAMING,
        )
        return replace(self, characters=tuple(merged if c.name == character.name else c for c in self.characters))

    def remove(self, name: str) -> Gallery:
        if self.get(name) is None:
            known = ", ".join(self.names) or "none"
            raise GalleryError(f"no character named {name!r} in the gallery (enrolled: {known})")
        return replace(self, characters=tuple(c for c in self.characters if c.name != name))

    def check_model(self, model_id: str, path: Path | str = "the gallery") -> None:
        """Refuse embeddings made by another network: they would match at random."""
        if self.model_id != model_id:
            command = "animerec gallery migrate"
            if isinstance(path, Path) and path != default_gallery_path():  # an explicit --gallery: name it
                command += f" --gallery {shlex.quote(str(path))}"
            raise GalleryError(
                f"{path} was enrolled with model {self.model_id or '(no id)'}, but this model is "
                f"{model_id or '(no id)'}: embeddings of different models cannot be compared. `{command}` "
                "embeds its faces again from their source images with this model, or pass --gallery with another file"
            )

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "model_id": self.model_id,
            "characters": [
                {
                    "name": c.name,
                    "count": c.count,
                    "dim": int(c.embeddings.shape[1]),
                    "embeddings": encode_array(c.embeddings),
                    "sources": list(c.sources),
                    "framing": c.framing,
                }
                for c in self.characters
            ],
        }

    @classmethod
    def from_json(cls, data: Any) -> Gallery:
        """Raises KeyError, TypeError or ValueError on anything but a gallery of this format."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"not an {FORMAT} file")
        if data.get("version") != VERSION:
            raise ValueError(f"unsupported gallery version {data.get('version')!r}")
        characters = []
        for entry in data["characters"]:
            shape = (int(entry["count"]), int(entry["dim"]))
            sources = tuple(str(s) for s in entry.get("sources", ()))
            framing = str(entry.get("framing", UNKNOWN_FRAMING))
            if framing not in (CROP, DETECTED, UNKNOWN_FRAMING):
                raise ValueError(f"unknown framing {framing!r}")
            embeddings = decode_array(entry["embeddings"], shape)
            characters.append(Character(str(entry["name"]), embeddings, sources, framing))
        gallery = cls(str(data["model_id"]), tuple(characters))
        if len(set(gallery.names)) != len(gallery.names):
            raise ValueError("a name appears twice")
        return gallery


def load_gallery(path: Path) -> Gallery:
    """Read a gallery file; any problem is a GalleryError naming the file (never a silent reset)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise GalleryError(f"gallery not found: {path}") from error
    except (OSError, UnicodeDecodeError) as error:
        raise GalleryError(f"cannot read gallery {path}: {error}") from error
    try:
        return Gallery.from_json(json.loads(text))
    except (KeyError, TypeError, ValueError, GalleryError) as error:
        raise GalleryError(
            f"gallery {path} is corrupt ({error}); it was left untouched: fix or remove it, or pass --gallery"
        ) from error


def save_gallery(gallery: Gallery, path: Path) -> None:
    """Write to a temporary file beside `path`, then rename: the file is always whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(gallery.to_json(), handle, ensure_ascii=False, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def open_gallery(path: Path | None, model_id: str) -> Gallery | None:
    """The gallery a recogniser should use: `path` when given (it must exist and match the model),
    else the default gallery when it exists. A default gallery of another model is skipped with a
    warning, so updating the model does not stop every command; an explicit one is an error."""
    if path is not None:
        gallery = load_gallery(path)
        gallery.check_model(model_id, path)
        return gallery
    default = default_gallery_path()
    if not default.is_file():
        return None
    gallery = load_gallery(default)
    try:
        gallery.check_model(model_id, default)
    except GalleryError as error:
        print(f"animerec: warning: ignoring the default gallery: {error}", file=sys.stderr)
        return None
    return gallery
