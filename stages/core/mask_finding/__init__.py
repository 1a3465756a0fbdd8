"""The mask finder: training it on the masks stage output and scoring it."""
