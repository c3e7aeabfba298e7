"""Memory-augmented k-shot learning: the Kaiser et al. (2017) memory (with optional write
policies), a store-all 1-NN baseline, fixed-size baselines (FIFO, class-balanced
reservoir, class means), a Keras layer around them, and a map from user labels to dense ids.
Each memory has a batched twin (`batched(memory, repeats)`) holding many independent states,
so an experiment advances all its repeats with one call.

TensorFlow only; imports nothing from facenet_tf or experiments.
"""

from memory_module.base import Usage
from memory_module.baseline import StoreAllNearestNeighbour
from memory_module.batched_memory import BatchedKaiserMemory
from memory_module.batched_stores import BatchedClassMeans, BatchedFifo, BatchedReservoir, BatchedStoreAll, batched
from memory_module.fixed_baselines import ClassBalancedReservoir, ClassMeans, FifoBuffer
from memory_module.labels import UNKNOWN_LABEL, LabelMap
from memory_module.layer import MemoryLayer
from memory_module.memory import KaiserMemory
from memory_module.readout import LookupResult
from memory_module.state_file import FORMAT_VERSION

__all__ = [
    "UNKNOWN_LABEL",
    "LabelMap",
    "KaiserMemory",
    "StoreAllNearestNeighbour",
    "FifoBuffer",
    "ClassBalancedReservoir",
    "ClassMeans",
    "MemoryLayer",
    "LookupResult",
    "Usage",
    "FORMAT_VERSION",
    "BatchedKaiserMemory",
    "BatchedStoreAll",
    "BatchedFifo",
    "BatchedClassMeans",
    "BatchedReservoir",
    "batched",
]
