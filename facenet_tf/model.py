"""Inception-ResNet-v1 (FaceNet 20170512-110547) in Keras 3, one small builder per block.

Layer names are exactly those of keras-facenet's facenet_keras.h5
(`Conv2d_1a_3x3`, `Block35_1_Branch_0_Conv2d_1x1`, `Bottleneck_BatchNorm`, ...), so
the weights load by name. Constants come from davidsandberg/facenet's
`inception_resnet_v1.py` as converted by keras-facenet: BatchNorm momentum 0.995,
epsilon 0.001 and no scale (gamma) parameter; residual scales 0.17 / 0.10 / 0.20
and 1.0 for the last Block8, which also has no ReLU.

The train-phase switch is Keras' `training` argument: `model(x, training=True)`
puts every BatchNorm in batch-statistics mode (updating its moving averages) and
Dropout on; `training=False` uses the moving statistics and no dropout. It has no
influence on whether gradients flow, so fine-tuning with the phase off works.
"""

from __future__ import annotations

from typing import Mapping

import keras
from keras import layers, ops

from facenet_tf.architecture import BLOCK_COUNTS

BN_MOMENTUM = 0.995   # as in the TF model (moving = 0.995 * moving + 0.005 * batch)
BN_EPSILON = 0.001    # as in the TF model
DEFAULT_INPUT_SIZE = 160
DEFAULT_EMBEDDING_SIZE = 128
DEFAULT_DROPOUT_RATE = 0.2   # davidsandberg's keep_probability 0.8
# Residual scales of davidsandberg's inception_resnet_v1; the h5's Lambda layers
# carry the same numbers, and `load_facenet` passes those read from the file.
DEFAULT_RESIDUAL_SCALES = {"Block35": 0.17, "Block17": 0.10, "Block8": 0.20, "Block8_last": 1.0}


@keras.saving.register_keras_serializable(package="facenet_tf")
class ScaleSum(layers.Layer):
    """`shortcut + scale * residual`: the h5's Lambda layers, which Keras 3 cannot load."""

    def __init__(self, scale: float, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)

    def call(self, inputs):
        shortcut, residual = inputs
        return shortcut + self.scale * residual

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


@keras.saving.register_keras_serializable(package="facenet_tf")
class L2Normalize(layers.Layer):
    """Rows scaled to unit length (as tf.nn.l2_normalize, epsilon 1e-10 on the squared norm)."""

    def call(self, inputs):
        squared = ops.sum(ops.square(inputs), axis=-1, keepdims=True)
        return inputs * ops.rsqrt(ops.maximum(squared, 1e-10))


def conv_bn(x, filters: int, kernel, name: str, strides: int = 1, padding: str = "same",
            activation: bool = True):
    """Conv2D without bias, BatchNorm without scale, optional ReLU; names `<name>_BatchNorm`, `<name>_Activation`."""
    x = layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False, name=name)(x)
    x = layers.BatchNormalization(axis=-1, momentum=BN_MOMENTUM, epsilon=BN_EPSILON, scale=False,
                                  name=f"{name}_BatchNorm")(x)
    if activation:
        x = layers.Activation("relu", name=f"{name}_Activation")(x)
    return x


def _residual(x, branches, prefix: str, scale: float, activation: bool):
    mixed = layers.Concatenate(axis=-1, name=f"{prefix}_Concatenate")(branches)
    up = layers.Conv2D(x.shape[-1], 1, padding="same", use_bias=True, name=f"{prefix}_Conv2d_1x1")(mixed)
    x = ScaleSum(scale, name=f"{prefix}_ScaleSum")([x, up])
    if activation:
        x = layers.Activation("relu", name=f"{prefix}_Activation")(x)
    return x


def block35(x, index: int, scale: float):
    """35x35 residual block (17x17 at 160 px input): three branches of 32 channels."""
    p = f"Block35_{index}"
    b0 = conv_bn(x, 32, 1, f"{p}_Branch_0_Conv2d_1x1")
    b1 = conv_bn(x, 32, 1, f"{p}_Branch_1_Conv2d_0a_1x1")
    b1 = conv_bn(b1, 32, 3, f"{p}_Branch_1_Conv2d_0b_3x3")
    b2 = conv_bn(x, 32, 1, f"{p}_Branch_2_Conv2d_0a_1x1")
    b2 = conv_bn(b2, 32, 3, f"{p}_Branch_2_Conv2d_0b_3x3")
    b2 = conv_bn(b2, 32, 3, f"{p}_Branch_2_Conv2d_0c_3x3")
    return _residual(x, [b0, b1, b2], p, scale, activation=True)


def block17(x, index: int, scale: float):
    """17x17 residual block (8x8 at 160 px): a 1x1 branch and a factorised 7x7 branch."""
    p = f"Block17_{index}"
    b0 = conv_bn(x, 128, 1, f"{p}_Branch_0_Conv2d_1x1")
    b1 = conv_bn(x, 128, 1, f"{p}_Branch_1_Conv2d_0a_1x1")
    b1 = conv_bn(b1, 128, (1, 7), f"{p}_Branch_1_Conv2d_0b_1x7")
    b1 = conv_bn(b1, 128, (7, 1), f"{p}_Branch_1_Conv2d_0c_7x1")
    return _residual(x, [b0, b1], p, scale, activation=True)


def block8(x, index: int, scale: float, activation: bool = True):
    """8x8 residual block (3x3 at 160 px): a 1x1 branch and a factorised 3x3 branch."""
    p = f"Block8_{index}"
    b0 = conv_bn(x, 192, 1, f"{p}_Branch_0_Conv2d_1x1")
    b1 = conv_bn(x, 192, 1, f"{p}_Branch_1_Conv2d_0a_1x1")
    b1 = conv_bn(b1, 192, (1, 3), f"{p}_Branch_1_Conv2d_0b_1x3")
    b1 = conv_bn(b1, 192, (3, 1), f"{p}_Branch_1_Conv2d_0c_3x1")
    return _residual(x, [b0, b1], p, scale, activation=activation)


def mixed_6a(x):
    """Reduction 35 -> 17: strided 3x3, a 1x1-3x3-3x3 stack, and max pooling."""
    b0 = conv_bn(x, 384, 3, "Mixed_6a_Branch_0_Conv2d_1a_3x3", strides=2, padding="valid")
    b1 = conv_bn(x, 192, 1, "Mixed_6a_Branch_1_Conv2d_0a_1x1")
    b1 = conv_bn(b1, 192, 3, "Mixed_6a_Branch_1_Conv2d_0b_3x3")
    b1 = conv_bn(b1, 256, 3, "Mixed_6a_Branch_1_Conv2d_1a_3x3", strides=2, padding="valid")
    b2 = layers.MaxPooling2D(3, strides=2, padding="valid", name="Mixed_6a_Branch_2_MaxPool_1a_3x3")(x)
    return layers.Concatenate(axis=-1, name="Mixed_6a")([b0, b1, b2])


def mixed_7a(x):
    """Reduction 17 -> 8: three strided conv branches and max pooling."""
    b0 = conv_bn(x, 256, 1, "Mixed_7a_Branch_0_Conv2d_0a_1x1")
    b0 = conv_bn(b0, 384, 3, "Mixed_7a_Branch_0_Conv2d_1a_3x3", strides=2, padding="valid")
    b1 = conv_bn(x, 256, 1, "Mixed_7a_Branch_1_Conv2d_0a_1x1")
    b1 = conv_bn(b1, 256, 3, "Mixed_7a_Branch_1_Conv2d_1a_3x3", strides=2, padding="valid")
    b2 = conv_bn(x, 256, 1, "Mixed_7a_Branch_2_Conv2d_0a_1x1")
    b2 = conv_bn(b2, 256, 3, "Mixed_7a_Branch_2_Conv2d_0b_3x3")
    b2 = conv_bn(b2, 256, 3, "Mixed_7a_Branch_2_Conv2d_1a_3x3", strides=2, padding="valid")
    b3 = layers.MaxPooling2D(3, strides=2, padding="valid", name="Mixed_7a_Branch_3_MaxPool_1a_3x3")(x)
    return layers.Concatenate(axis=-1, name="Mixed_7a")([b0, b1, b2, b3])


def stem(x):
    x = conv_bn(x, 32, 3, "Conv2d_1a_3x3", strides=2, padding="valid")
    x = conv_bn(x, 32, 3, "Conv2d_2a_3x3", padding="valid")
    x = conv_bn(x, 64, 3, "Conv2d_2b_3x3")
    x = layers.MaxPooling2D(3, strides=2, padding="valid", name="MaxPool_3a_3x3")(x)
    x = conv_bn(x, 80, 1, "Conv2d_3b_1x1", padding="valid")
    x = conv_bn(x, 192, 3, "Conv2d_4a_3x3", padding="valid")
    return conv_bn(x, 256, 3, "Conv2d_4b_3x3", strides=2, padding="valid")


def residual_scale_names() -> list[str]:
    """Names of the 21 ScaleSum layers, in order (`Block35_1_ScaleSum`, ...)."""
    return [f"{block}_{i}_ScaleSum" for block, n in BLOCK_COUNTS.items() for i in range(1, n + 1)]


def _default_scale(layer_name: str) -> float:
    block, index = layer_name.split("_")[:2]
    if block == "Block8" and int(index) == BLOCK_COUNTS["Block8"]:
        return DEFAULT_RESIDUAL_SCALES["Block8_last"]
    return DEFAULT_RESIDUAL_SCALES[block]


def build_inception_resnet_v1(input_size: int = DEFAULT_INPUT_SIZE,
                              embedding_size: int = DEFAULT_EMBEDDING_SIZE,
                              dropout_rate: float = DEFAULT_DROPOUT_RATE,
                              residual_scales: Mapping[str, float] | None = None,
                              name: str = "inception_resnet_v1") -> keras.Model:
    """Build the untrained network: [B, input_size, input_size, 3] -> unit-norm [B, embedding_size].

    `residual_scales` maps ScaleSum layer names to scales; missing names take the
    documented defaults. Use `facenet_tf.load_facenet` for the pretrained model.
    """
    if input_size < 75:
        raise ValueError(f"input_size must be >= 75 (the stem and two reductions need it), got {input_size}")
    if embedding_size < 1:
        raise ValueError(f"embedding_size must be >= 1, got {embedding_size}")
    if not 0.0 <= dropout_rate < 1.0:
        raise ValueError(f"dropout_rate must be in [0, 1), got {dropout_rate}")
    known = set(residual_scale_names())
    scales = dict(residual_scales or {})
    unknown = sorted(set(scales) - known)
    if unknown:
        raise ValueError(f"residual_scales names unknown layers {unknown}; expected names like 'Block35_1_ScaleSum'")
    scale_of = {n: float(scales.get(n, _default_scale(n))) for n in known}

    inputs = keras.Input((input_size, input_size, 3), name="input_1")
    x = stem(inputs)
    for i in range(1, BLOCK_COUNTS["Block35"] + 1):
        x = block35(x, i, scale_of[f"Block35_{i}_ScaleSum"])
    x = mixed_6a(x)
    for i in range(1, BLOCK_COUNTS["Block17"] + 1):
        x = block17(x, i, scale_of[f"Block17_{i}_ScaleSum"])
    x = mixed_7a(x)
    last = BLOCK_COUNTS["Block8"]
    for i in range(1, last + 1):
        x = block8(x, i, scale_of[f"Block8_{i}_ScaleSum"], activation=i < last)
    x = layers.GlobalAveragePooling2D(name="AvgPool")(x)
    x = layers.Dropout(dropout_rate, name="Dropout")(x)
    x = layers.Dense(embedding_size, use_bias=False, name="Bottleneck")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, scale=False,
                                  name="Bottleneck_BatchNorm")(x)
    outputs = L2Normalize(name="L2Normalize")(x)
    return keras.Model(inputs, outputs, name=name)
