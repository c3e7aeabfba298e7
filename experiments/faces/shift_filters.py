"""The transformations behind the celebrity variants, one function per real-world condition.

Each takes the aligned uint8 [s, s, 3] crop (s = 160 for FaceNet) and an integer seed,
and returns a uint8 array of the same shape. Only `noise` draws random numbers; the
seed comes from the photo's path (experiments.faces.shifts.photo_seed), so a photo
always gets the same pixels and two photos never share one noise field. Every strength
is fixed once by what it stands for in the 160 px crop (see each constant), not by the
accuracy it leads to. Geometry of the crop: MTCNN's face box plus a 32 px margin in the
photo's own pixels, so in the 160 px crop the eyes lie near rows 55-70, the nose tip
near row 90, the mouth near rows 105-120 and the chin at the bottom edge.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter, ImageOps

# lowres: 12 px across the face keeps its outline and dark blobs for eyes and mouth,
# not their shape; one sampling cell is 160 / 12 = 13.3 px of the crop.
LOWRES_SIDE = 12

# blur: a Gaussian of standard deviation 4 px of the 160 px crop, the scale of the
# lowres cell (a 13.3 px box has a standard deviation of 13.3 / sqrt(12) = 3.85 px):
# detail is lost at the same scale as in `lowres`, by a lens out of focus instead of
# by sampling. An eye (about 25 x 10 px) becomes a blob without lids or iris.
BLUR_SIGMA_PX = 4.0

# jpeg: quality 10 with 4:2:0 chroma subsampling. libjpeg scales its standard
# quantisation tables by 5000 / 10 = 5x, so most 8 x 8 blocks (5% of the crop's side)
# keep little more than their mean and the first gradient: the look of a photo
# recompressed for a thumbnail or a slow connection.
JPEG_QUALITY = 10

# noise: zero-mean Gaussian noise of standard deviation 25 grey levels (about 10% of
# the range) per pixel and channel, the grain of a small sensor at high gain in dim
# light; the middle of the levels image-denoising work tests at (15, 25, 50).
NOISE_SIGMA = 25.0

# occlusion: a surgical mask. Rows from 55% of the crop's height to the bottom, full
# width (rows 88-159 of 160), filled with a mask's pale blue: it covers the nose tip,
# mouth and chin and leaves the eyes and brows visible.
OCCLUSION_TOP_FRACTION = 0.55
OCCLUSION_RGB = (180, 205, 225)

# cartoon: a cel-shaded drawing. A 5 px median filter (twice) wipes out texture finer
# than about 5 px (pores, stubble, hair strands) and keeps the outlines of eyes and
# mouth; the colours are cut to CARTOON_COLORS flat tones (median cut, no dither);
# a dark line is drawn where the smoothed grey image steps by at least
# CARTOON_EDGE_STEP grey levels (FIND_EDGES answers 3 x the step on its bright side).
CARTOON_MEDIAN_PX = 5
CARTOON_COLORS = 8
CARTOON_EDGE_STEP = 24


def _image(crop: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(crop, dtype=np.uint8))


def lowres(crop: np.ndarray, seed: int) -> np.ndarray:
    """A face seen from far away or by a poor camera: box-averaged to 12 x 12 px, scaled back bilinearly."""
    size = crop.shape[0]
    small = _image(crop).resize((LOWRES_SIDE, LOWRES_SIDE), Image.Resampling.BOX)
    return np.asarray(small.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)


def blur(crop: np.ndarray, seed: int) -> np.ndarray:
    """A face out of focus (or moving): Gaussian blur of standard deviation BLUR_SIGMA_PX."""
    return np.asarray(_image(crop).filter(ImageFilter.GaussianBlur(BLUR_SIGMA_PX)), dtype=np.uint8)


def gray(crop: np.ndarray, seed: int) -> np.ndarray:
    """A black-and-white photo or a night-mode security camera: ITU-R 601 luma in all three channels."""
    luma = np.asarray(_image(crop).convert("L"), dtype=np.uint8)
    return np.repeat(luma[:, :, None], 3, axis=2)


def jpeg(crop: np.ndarray, seed: int) -> np.ndarray:
    """A photo recompressed hard for a thumbnail or a slow link: JPEG quality JPEG_QUALITY, decoded again."""
    buffer = io.BytesIO()
    _image(crop).save(buffer, format="JPEG", quality=JPEG_QUALITY, subsampling="4:2:0")
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert("RGB"), dtype=np.uint8)


def noise(crop: np.ndarray, seed: int) -> np.ndarray:
    """A dim-light photo at high sensor gain: Gaussian pixel noise of NOISE_SIGMA grey levels, clipped to [0, 255]."""
    rng = np.random.default_rng(seed)
    noisy = crop.astype(np.float64) + rng.normal(0.0, NOISE_SIGMA, size=crop.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def occlusion_rows(size: int) -> slice:
    """The rows the occlusion covers in a size x size crop (all columns)."""
    return slice(int(round(OCCLUSION_TOP_FRACTION * size)), size)


def occlusion(crop: np.ndarray, seed: int) -> np.ndarray:
    """A face behind a surgical mask: the lower 45% of the crop filled with OCCLUSION_RGB."""
    out = np.array(crop, dtype=np.uint8, copy=True)
    out[occlusion_rows(crop.shape[0])] = OCCLUSION_RGB
    return out


def cartoon(crop: np.ndarray, seed: int) -> np.ndarray:
    """A drawing or animation of the person: smoothed flat colours with dark outlines."""
    smooth = _image(crop)
    for _ in range(2):
        smooth = smooth.filter(ImageFilter.MedianFilter(CARTOON_MEDIAN_PX))
    flat = smooth.quantize(colors=CARTOON_COLORS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    out = np.array(flat.convert("RGB"), dtype=np.uint8)
    edges = np.array(ImageOps.grayscale(smooth).filter(ImageFilter.FIND_EDGES), dtype=np.int32)
    # Pillow's 3 x 3 filter copies the outer ring unfiltered; it is no edge (else a black frame).
    edges[[0, -1], :] = 0
    edges[:, [0, -1]] = 0
    out[edges >= 3 * CARTOON_EDGE_STEP] = 0
    return out
