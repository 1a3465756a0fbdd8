"""Photo-level work for the faceparse CLI and the benchmark: edits driven by the parser's soft class masks."""
