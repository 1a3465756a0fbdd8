"""Face-parsing and inpainting networks, built by name through :mod:`stages.core.models.registry`."""
