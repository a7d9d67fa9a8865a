"""livedenoise clients: the `frames/1` wire format, stream and control clients, movie replay, the CLI.

Light on purpose: only numpy, pyzmq and httpx (tifffile lazily, for TIFF movies).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("livedenoise")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
