"""One module per paper: mofa, multilevel, tddfa, dualnet, neuface, motion_prior.

Each method builds on the shared layers (model, cameras, raster, losses, metrics) and
is imported as ``facelab.methods.<name>``.
"""
