"""encoder: pose sequence -> style embedding. Layers, each importing only the ones before it:

``encoder.data`` (sequences, readers, preprocessing, cameras, dataset cache) -> ``encoder.models``
(PoseStyle-Net, the baselines, the registry, the losses) -> ``encoder.checkpoint`` and
``encoder.inference`` (safetensors checkpoints, ``StyleEncoder``) -> ``encoder.training`` and
``encoder.evaluation`` (independent of each other). The contract is in pyproject.toml
``[tool.importlinter]``; this ``__init__`` imports nothing.
"""
