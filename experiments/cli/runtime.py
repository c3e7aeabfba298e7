"""The process around a command: one-line warnings, and TensorFlow's native start-up lines kept off stderr.

TensorFlow is the slowest and noisiest thing `kshot` loads. Its Python logging is
turned down before it loads (TF_CPP_MIN_LOG_LEVEL), and what its C++ libraries write
straight to file descriptor 2 is filtered out of the stream, so a user sees the
command's own messages and nothing else.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading
import warnings

# TensorFlow's native start-up lines (absl's pre-init notice, the oneDNN and CPU-feature
# notices). They are written by C++ straight to file descriptor 2 whenever one of its
# libraries loads, before and regardless of TF_CPP_MIN_LOG_LEVEL, so they can only be
# removed from the stream itself.
NATIVE_NOISE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\)|[IW]\d{4} [\d:. ]+\d+ \S+\.cc:\d+\]"
    rb"|To enable the following instructions: .* rebuild TensorFlow)"
)


def quiet_runtime() -> None:
    """Give Python warnings one line each (no source line), and keep TF's own logging at errors."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.formatwarning = lambda message, category, *rest, **kw: f"kshot: warning: {message}\n"
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def filter_native_stderr() -> None:
    """Route file descriptor 2 through a thread that drops NATIVE_NOISE lines and passes the rest.

    Writes are forwarded as they arrive (progress bars stay live); a native log line is
    one write, so it arrives whole. At exit the pipe is closed and drained.
    """
    real = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump() -> None:
        with os.fdopen(read_end, "rb", buffering=0) as source:
            while chunk := source.read(65536):
                kept = b"".join(line for line in chunk.splitlines(keepends=True) if not NATIVE_NOISE.match(line))
                if kept:
                    os.write(real, kept)

    thread = threading.Thread(target=pump, name="kshot-stderr", daemon=True)
    thread.start()

    def drain() -> None:
        sys.stderr.flush()
        os.dup2(real, 2)  # the pipe's last writer closes: the pump reads to the end and stops
        thread.join(timeout=2)

    atexit.register(drain)
