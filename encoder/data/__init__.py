"""encoder.data: the bottom layer. Pose sequences and their readers, preprocessing (eqs. 1-3), virtual
cameras, the demo corpus, the dataset cache and the atomic-write helper.

Import the submodule you need (``encoder.data.sequence``, ``encoder.data.readers``, ...): this
``__init__`` imports nothing, so reading a pose file never loads torch.
"""
