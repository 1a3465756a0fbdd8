"""The library the stages and the CLI share; it never imports a stage module."""
