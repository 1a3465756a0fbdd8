"""The pipeline: one module per DVC stage (``python -m stages.<name>``), the ``faceparse`` CLI, and ``core``."""
