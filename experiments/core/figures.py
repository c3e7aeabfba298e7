"""What every figure of the project shares: fonts for any script, class names on axes, saving.

Every figure is drawn inside `figure_style()`, with a font fallback list, so class names
in any script an installed font covers are drawn instead of empty boxes, and saved with
`save_figure`, which writes PNG and SVG atomically with no date, so the same run gives
the same bytes. Class names are shown in full: on the ticks when they are few and short,
otherwise the ticks carry numbers and a key under the panels gives each number's name.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.resources
import io
import warnings
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib import font_manager, ft2font

from kshot_io import write_bytes_atomic

# Class names go on the ticks only while they fit a panel; past either limit the ticks
# carry numbers and a key lists the names. Past MAX_KEY_CLASSES a key would be a page of
# its own, so the panels show the matrix alone.
MAX_TICK_NAMES = 20
MAX_TICK_NAME_CHARS = 24
MAX_KEY_CLASSES = 120

# DejaVu Sans (bundled with matplotlib) covers Latin, Greek and Cyrillic; the rest are
# tried in order for glyphs it lacks, when installed. The optional extra `cjk`
# (pip install 'kshot-memory[cjk]') ships Noto Sans CJK for Chinese, Japanese and Korean.
FONT_FALLBACKS = (
    "DejaVu Sans",
    "Noto Sans CJK JP",
    "Noto Sans CJK SC",
    "Noto Sans CJK TC",
    "Noto Sans CJK KR",
    "Noto Sans",
    "Noto Sans Arabic",
    "Noto Sans Hebrew",
    "Noto Sans Devanagari",
    "Noto Sans Thai",
    "IPAexGothic",
    "Droid Sans Fallback",
    "WenQuanYi Zen Hei",
)
FONT_PACKAGES = ("noto_cjk_sans_jp_regular",)  # PyPI packages that only carry a font file


@functools.cache
def font_families() -> tuple[str, ...]:
    """The installed families of FONT_FALLBACKS, registering fonts shipped as packages first."""
    for package in FONT_PACKAGES:
        try:
            files = list(importlib.resources.files(package).iterdir())
        except ModuleNotFoundError:
            continue
        for entry in files:
            if entry.name.lower().endswith((".otf", ".ttf", ".ttc")):
                font_manager.fontManager.addfont(str(entry))
    installed = {entry.name for entry in font_manager.fontManager.ttflist}
    return tuple(name for name in FONT_FALLBACKS if name in installed) or ("DejaVu Sans",)


@functools.cache
def _covered_codepoints() -> frozenset[int]:
    covered: set[int] = set()
    for family in font_families():
        path = font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
        covered.update(ft2font.FT2Font(path).get_charmap())
    return frozenset(covered)


def names_without_font(names) -> list[str]:
    """The names holding a character that no installed fallback font can draw."""
    covered = _covered_codepoints()
    return [name for name in names if any(ord(ch) not in covered and not ch.isspace() for ch in name)]


@contextlib.contextmanager
def figure_style(class_names=()):
    """Font fallback list for every text created (and drawn) inside; one warning for names no font covers.

    Matplotlib would warn once per missing glyph; one line naming the classes and the fix
    is more useful, so its glyph warnings are silenced here.
    """
    missing = names_without_font(class_names)
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        warnings.warn(
            f"{len(missing)} class name(s) use characters no installed font has ({shown}); they are drawn as boxes. "
            "Install a font for that script (for Chinese, Japanese, Korean: pip install 'kshot-memory[cjk]').",
            stacklevel=3,
        )
    with matplotlib.rc_context({"font.family": list(font_families()), "svg.hashsalt": "kshot-memory"}):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font")
            yield


def save_figure(fig, stem: Path, formats: tuple[str, ...] = ("png", "svg")) -> list[Path]:
    """Write `stem`.png and `stem`.svg (or just `formats`) atomically; returns the paths.

    The SVG carries no date and fixed element ids, so the same run gives the same bytes.
    A figure full of photos is better as PNG alone: its SVG embeds every thumbnail again.
    """
    stem = Path(stem)
    paths = []
    with figure_style():
        for fmt in formats:
            buffer = io.BytesIO()
            metadata = {"Date": None} if fmt == "svg" else {}
            fig.savefig(buffer, format=fmt, dpi=120, bbox_inches="tight", metadata=metadata)
            path = stem.with_suffix(f".{fmt}")
            write_bytes_atomic(path, buffer.getvalue())
            paths.append(path)
    return paths


def class_tick_labels(class_names: list[str]) -> tuple[list[str] | None, list[str]]:
    """(tick labels, key): the full names when they fit on ticks (empty key), else numbers
    1..C on the ticks and the key, the full names in class order.

    Tick labels are None when there are too many classes to label at all.
    """
    names = [str(name) for name in class_names]
    if len(names) <= MAX_TICK_NAMES and max((len(name) for name in names), default=0) <= MAX_TICK_NAME_CHARS:
        return names, []
    if len(names) > MAX_KEY_CLASSES:
        return None, []
    return [str(i + 1) for i in range(len(names))], names


def set_class_ticks(ax, labels: list[str] | None, centres, numbered: bool, show_x: bool = True, show_y: bool = True) -> None:
    if labels is None:
        ax.set_xticks([])
        ax.set_yticks([])
        return
    # Numbers can be thinned to every n-th without losing a name (the key has them all);
    # names are only ever shown all together.
    step = max(1, int(np.ceil(len(labels) / 25))) if numbered else 1
    chosen = np.arange(0, len(labels), step)
    positions = np.asarray(centres)[chosen]
    shown = [labels[i] for i in chosen]
    fontsize = 8 if len(labels) <= 10 else 6 if len(labels) <= 40 else 5
    ax.set_xticks(positions, shown if show_x else [], rotation=90, fontsize=fontsize)
    ax.set_yticks(positions, shown if show_y else [], fontsize=fontsize)


KEY_FONTSIZE = 7
KEY_LINE_INCHES = KEY_FONTSIZE * 1.5 / 72  # one key line, room for CJK glyphs' height
KEY_CHAR_INCHES = KEY_FONTSIZE * 0.62 / 72  # a generous average glyph width
KEY_NUMBER_INCHES = 0.3  # the numbers' column inside each key column


def key_layout(key: list[str], width_inches: float) -> tuple[int, float]:
    """(columns, height in inches) of a key of these names in a figure this wide."""
    if not key:
        return 0, 0.0
    column_inches = KEY_NUMBER_INCHES + max(len(name) for name in key) * KEY_CHAR_INCHES + 0.2
    columns = max(1, min(len(key), int(width_inches // column_inches)))
    rows = int(np.ceil(len(key) / columns))
    return columns, rows * KEY_LINE_INCHES + 0.35


def draw_key(ax, key: list[str], columns: int) -> None:
    """Number i+1 and the full name key[i], in `columns` columns read down then across.

    Every number and every name is its own text at a fixed line pitch: multi-line texts
    space their lines by the glyphs they hold (a CJK or accented line is taller), which
    would slide names away from their numbers, and a right-to-left name could reorder a
    number sharing its line.
    """
    ax.axis("off")
    rows = int(np.ceil(len(key) / columns))
    number_width = KEY_NUMBER_INCHES / ax.get_figure().get_figwidth()
    pitch = KEY_LINE_INCHES * 72
    for index, name in enumerate(key):
        column, row = divmod(index, rows)
        x = column / columns
        placed = {"xycoords": "axes fraction", "textcoords": "offset points", "va": "top", "fontsize": KEY_FONTSIZE}
        ax.annotate(str(index + 1), (x + number_width * 0.8, 1.0), xytext=(0, -row * pitch), ha="right", **placed)
        ax.annotate(name, (x + number_width, 1.0), xytext=(0, -row * pitch), ha="left", **placed)
    ax.set_title("classes (number on the axes: full name)", fontsize=8, loc="left")
