"""Photo-level work for the faceparse CLI and the benchmark: faces, alignment, parsing, paste-back and edits."""
