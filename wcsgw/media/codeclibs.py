"""Which audio codecs this machine can transcode, found without building a codec.

Why its own module: the gateway asks at every start (the codec plan, the ``[codecs]`` checks),
and answering by building one codec of each kind imported every codec module, numpy and
opuslib into a gateway that may only ever relay (+11 MiB of idle RSS, issue 19).  A codec is
available when the native library its module loads can be loaded; G.711 is tables, always
there.  The codec modules name the same libraries (:func:`~wcsgw.media.audiocodec.load_library`);
``tests/test_start_imports.py`` checks that this table and building the codecs agree.
"""

from __future__ import annotations

import ctypes
import functools

__all__ = ["LIBRARIES", "available"]

#: codec key (as :func:`wcsgw.media.audiocodec.make_codec` knows it) -> the shared library its
#: codec needs, None when it needs none; in make_codec's order
LIBRARIES: dict[str, str | None] = {
    "pcmu": None,
    "pcma": None,
    "g729": "libbcg729.so.0",
    "speex": "libspeex.so.1",
    "opus": "libopus.so.0",
    "g722": "libspandsp.so.2",
}


def _loads(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


@functools.lru_cache(maxsize=1)
def available() -> tuple[str, ...]:
    """Codec keys whose native library loads on this machine.  Found once per process:
    libraries do not come and go under a running gateway."""
    return tuple(key for key, soname in LIBRARIES.items() if soname is None or _loads(soname))
