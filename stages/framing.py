"""DVC stage `framing`: measure where the training faces' landmarks sit; write ``models/framing.json``.

Reads params ``framing`` and ``data/cache/``. The ``faceparse`` command aligns every face of a user's photo to
this framing before parsing it, so the parser sees faces framed as in training.
"""
from __future__ import annotations

import logging
from pathlib import Path

from stages.core.inference.training_framing import FramingParams, training_framing

CACHE_DIR = Path("data/cache")
OUT = Path("models/framing.json")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    framing = training_framing(CACHE_DIR, FramingParams.load())
    framing.save(OUT)
    logging.info("framing of %d training faces at %d px: %s", framing.faces, framing.size, framing.spread)


if __name__ == "__main__":
    main()
