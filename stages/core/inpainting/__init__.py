"""The mask inpainter: training, evaluation against Telea / Navier-Stokes, and face identity (dlib descriptor)."""
