"""Calling libc and the Python C API without the `ctypes` package (layer L1, x86_64/LP64).

Why: `import ctypes` costs ~3 ms (it builds every C type, checks sizes with `struct`), paid on
every `dockyard-runtime run`; the few calls `kernel.RealKernel` makes need only CPython's
`_ctypes` extension, which this module uses directly: one handle on the running program (libc
and the interpreter are both in it), two function-pointer classes (C `int` and `long` results,
errno captured as `ctypes.CDLL(None, use_errno=True)` does) and fixed-size integer arrays.

Argument conversions are `_ctypes`' own: a Python int is passed as a C `int`, so wider values
must be wrapped in `c_long`/`c_ulong`; bytes are `const char *`, None is NULL, an array is a
pointer to its first element.

Invariants: functions are looked up once per name and cached; after `load()` (done before
fork/pivot_root) nothing here opens a file, so calls work inside a container's new root; no
function here raises on a failing call — callers check the result and read `get_errno()`.
"""

from __future__ import annotations

import _ctypes

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (startup time)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

if TYPE_CHECKING:
    _Simple = _ctypes._SimpleCData[int]
else:
    _Simple = _ctypes._SimpleCData  # not subscriptable at run time

get_errno: Callable[[], int] = _ctypes.get_errno
addressof: Callable[[Any], int] = _ctypes.addressof


class c_int(_Simple):
    _type_ = "i"


class c_long(_Simple):
    _type_ = "l"


class c_ulong(_Simple):
    _type_ = "L"


class c_uint32(_Simple):
    _type_ = "I"


class c_uint64(_Simple):
    _type_ = "Q"


class U32x2(_ctypes.Array[c_uint32]):
    """Two uint32 (a `__user_cap_header_struct`)."""

    _type_ = c_uint32
    _length_ = 2


class U32x6(_ctypes.Array[c_uint32]):
    """Six uint32 (two `__user_cap_data_struct`s: effective, permitted, inheritable each)."""

    _type_ = c_uint32
    _length_ = 6


class U64x2(_ctypes.Array[c_uint64]):
    """Two uint64 (a `struct rlimit`)."""

    _type_ = c_uint64
    _length_ = 2


class U64Array(_ctypes.Array[c_uint64]):
    """uint64 arrays of a length known at run time: subclass with `_length_` set."""

    _type_ = c_uint64
    _length_ = 0


class U64x11(_ctypes.Array[c_uint64]):
    """Eleven uint64 (a `struct clone_args`, CLONE_ARGS_SIZE_VER2 = 88 bytes)."""

    _type_ = c_uint64
    _length_ = 11


class c_ubyte(_Simple):
    _type_ = "B"


class Bytes40(_ctypes.Array[c_ubyte]):
    """Forty bytes (a `struct ifreq`: a 16-byte name and a 24-byte union)."""

    _type_ = c_ubyte
    _length_ = 40


class _IntFn(_ctypes.CFuncPtr):
    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = c_int


class _LongFn(_ctypes.CFuncPtr):
    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = c_long


class _PyApiFn(_ctypes.CFuncPtr):
    """A void function of the Python C API (called with the GIL held, as `ctypes.PyDLL`)."""

    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_PYTHONAPI
    _restype_ = None


class _Program:
    """The running program (dlopen(NULL)): libc and the interpreter's symbols."""

    _handle: int = 0


_program = _Program()
_cache: dict[str, Any] = {}


def load() -> None:
    """Open the handle (once). Called before fork so children need not."""
    if not _program._handle:
        _program._handle = _ctypes.dlopen(None, 0)  # type: ignore[arg-type]  # NULL: ourselves


def _fn(name: str, kind: Any) -> Any:
    fn = _cache.get(name)
    if fn is None:
        load()
        fn = _cache[name] = kind((name, _program))
    return fn


def int_fn(name: str) -> Callable[..., int]:
    """libc function `name` returning a C int."""
    fn: Callable[..., int] = _fn(name, _IntFn)
    return fn


def long_fn(name: str) -> Callable[..., int]:
    """libc function `name` returning a C long (`syscall`)."""
    fn: Callable[..., int] = _fn(name, _LongFn)
    return fn


def pyapi(name: str) -> Callable[[], None]:
    """void `name`(void) of the Python C API (PyOS_BeforeFork and friends)."""
    fn: Callable[[], None] = _fn(name, _PyApiFn)
    return fn
