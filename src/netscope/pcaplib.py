"""Where the bundled libpcap is: the shared object inside the cypcap wheel.

Two modules call libpcap through ctypes (the libpcap capture backend, and the BPF compiler
run off the GIL); both load this one file, so no system libpcap package is ever needed.
"""

from __future__ import annotations

from pathlib import Path

from netscope.errors import CaptureError


def bundled_library_path() -> Path:
    """The libpcap shared object shipped inside the cypcap wheel.

    Raises CaptureError when it is not there: the point of bundling it is not to depend on
    a system libpcap package, so there is no fallback to one.
    """
    try:
        import cypcap
    except ImportError:  # pragma: no cover - declared dependency
        raise CaptureError("the libpcap backend needs the cypcap package") from None
    libs = Path(cypcap.__file__).resolve().parent.parent / "cypcap.libs"
    found = sorted(libs.glob("libpcap*.so*"))
    if not found:
        raise CaptureError(f"no bundled libpcap found in {libs}")
    return found[0]
