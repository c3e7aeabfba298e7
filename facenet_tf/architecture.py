"""The names of Inception-ResNet-v1's blocks and where the network can be cut, without TensorFlow.

Kept apart from facenet_tf.model (which builds the Keras layers) so that a configuration
naming a block (`[finetune] trainable_from`) is checked before TensorFlow starts.
"""

from __future__ import annotations

BLOCK_COUNTS = {"Block35": 5, "Block17": 10, "Block8": 6}   # the 6th Block8 is the linear one
# Block family -> its first block: "Block8" means the whole Block8 family learns.
ALIASES = {"Block35": "Block35_1", "Block17": "Block17_1", "Block8": "Block8_1"}


def _cut_layers() -> dict[str, str | None]:
    """Scope name -> the layer whose output is the top's input (None: no frozen part), bottom to top."""
    cuts: dict[str, str | None] = {"all": None}
    previous = "Conv2d_4b_3x3_Activation"
    for block, reduction in (("Block35", "Mixed_6a"), ("Block17", "Mixed_7a"), ("Block8", None)):
        for i in range(1, BLOCK_COUNTS[block] + 1):
            cuts[f"{block}_{i}"] = previous
            previous = f"{block}_{i}_Activation" if (block, i) != ("Block8", BLOCK_COUNTS["Block8"]) else None
        if reduction:
            cuts[reduction] = previous
            previous = reduction
    cuts["bottleneck"] = "AvgPool"
    return cuts


CUT_LAYERS = _cut_layers()
TRAINABLE_FROM_CHOICES = tuple(CUT_LAYERS) + tuple(ALIASES)
