"""MaskTheFace-style masks: landmarks, mask shapes, fitting by homography, and masking the cache."""
