"""The papers' methods, one package each: ``mofa``, ``multilevel``, ``tddfa``, ``dualnet``,
``neuface`` and ``motion_prior`` (HuMoR-Face, NeuFace Sec. 5.1: a prior over face motion, which
works on NeuFace's annotations rather than on images).

Each method is an adapter onto facelab's one image-formation core: a layout that turns the
paper's parameter vector into ``(facelab.FaceParams, camera)`` (MoFA's
``CodeLayout.to_face``, 3DDFA_V2's ``ParamLayout.to_face``, NeuFace's
``NeuFaceLayout.to_face``), its losses beside it, and its
training and evaluation scripts; :func:`facelab.form` and :func:`facelab.render` do the image
formation. Import them as ``facelab.methods.<name>``; nothing below this layer imports them
(``tests/test_architecture.py`` checks it).
"""
