"""Seccomp filters from the OCI `linux.seccomp` object: compiled once to BPF, loaded raw.

Responsibility: `compile_filter(spec, cache_dir)` returns a `Filter` holding the classic-BPF
program of the profile, built while the host file system is still visible (before pivot_root);
`Filter.load()` installs it in the calling process, as late as possible before execve, with
prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER) — what libseccomp's `seccomp_load` does with the
attributes we use (no TSYNC, no LOG, no SSB flag, no no_new_privs), without libseccomp: one call
through `linux.libc` on arguments built with the filter (in the parent, before fork), so the
container's init pays no ctypes set-up.

Programs are built with libseccomp.so.2 through ctypes (a context rule by rule, then
`seccomp_export_bpf`), as a binary tree over syscall numbers where libseccomp offers it
(SCMP_FLTATR_CTL_OPTIMIZE 2, libseccomp >= 2.5; a linear list otherwise). The tree is longer
(Docker's profile: ~1250 instructions against ~1000) but a syscall passes ~10 tests instead of
up to ~330, and that counts at load too: the kernel runs the program for every syscall number
of every architecture to learn which it may always allow (its seccomp action cache). Loading
Docker's profile took 1.6 ms here as a list, 0.55 ms as a tree (`bench_seccomp.py`).

Programs are cached under a key: the SHA-256 of the canonical JSON of the spec, the
identity of the libseccomp files the dynamic linker would pick (path, inode, size, mtime), the
machine, the kernel release and the pointer size. The cache lives in this process (a bounded
dict, so a long-lived engine compiles each profile once) and, when `cache_dir` is given, on disk
as `<cache_dir>/<key>.bpf`: a header line (format, key, length, SHA-256 of the program) and the
raw program, written to a temporary file and renamed. A file that is not ours (owner, mode, a
symlink), has a wrong header, length or digest is ignored and rewritten, never loaded. A hit
does not load libseccomp.

Spec invariants (as runc behaves): unknown syscall names and architectures are skipped (negative
numbers other than __NR_SCMP_ERROR are libseccomp's pseudo-syscalls for names that exist only on
another architecture of the filter, e.g. mmap2 on x86, and are kept); rules whose action equals
the default action are skipped (libseccomp rejects them); libseccomp's own no_new_privs side
effect is disabled, so NoNewPrivs is exactly `process.noNewPrivileges`; ERRNO actions default to
EPERM unless `errnoRet`/`defaultErrnoRet` says otherwise. When the default action refuses (not
ALLOW, LOG or TRACE), a stub before the program answers ENOSYS for native-architecture syscall
numbers above the highest native number of a name in the profile that libseccomp knows (runc's
stub: libc then falls back from syscalls newer than the profile or libseccomp, e.g. mseal,
instead of failing with EPERM); x32 numbers on x86_64 and other architectures are left alone.
"""

from __future__ import annotations

import errno
import os
import struct
import sys

from dockyard.errors import InvalidArgument, Unavailable

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (startup time)
if TYPE_CHECKING:
    from typing import Any

_ACT_ALLOW = 0x7FFF0000
_ACTIONS: dict[str, int] = {
    "SCMP_ACT_KILL": 0x00000000,
    "SCMP_ACT_KILL_THREAD": 0x00000000,
    "SCMP_ACT_KILL_PROCESS": 0x80000000,
    "SCMP_ACT_TRAP": 0x00030000,
    "SCMP_ACT_ERRNO": 0x00050000,
    "SCMP_ACT_TRACE": 0x7FF00000,
    "SCMP_ACT_LOG": 0x7FFC0000,
    "SCMP_ACT_ALLOW": _ACT_ALLOW,
}
_PERMISSIVE = frozenset({"SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE"})
_OPS = {
    "SCMP_CMP_NE": 1,
    "SCMP_CMP_LT": 2,
    "SCMP_CMP_LE": 3,
    "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5,
    "SCMP_CMP_GT": 6,
    "SCMP_CMP_MASKED_EQ": 7,
}
_FLTATR_CTL_NNP = 3
_FLTATR_CTL_OPTIMIZE, _OPTIMIZE_BINARY_TREE = 8, 2
_NR_SCMP_ERROR = -1  # __NR_SCMP_ERROR: the only "unknown syscall" answer
_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 22, 2
_BPF_MAXINSNS = 4096
_INSN = struct.Struct("=HBBI")  # struct sock_filter: code, jt, jf, k (host byte order)
_AUDIT_ARCH_X86_64 = 0xC000003E
_X32_SYSCALL_BIT = 0x40000000

FORMAT = b"dockyard-seccomp-bpf/2"  # /2: binary-tree programs
MEMO_SIZE = 64
_memo: dict[str, Filter] = {}


def _lib() -> Any:
    """libseccomp through ctypes (imported here: a cached program needs neither)."""
    import ctypes

    class ArgCmp(ctypes.Structure):  # struct scmp_arg_cmp
        _fields_ = [
            ("arg", ctypes.c_uint),
            ("op", ctypes.c_int),
            ("datum_a", ctypes.c_uint64),
            ("datum_b", ctypes.c_uint64),
        ]

    try:
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    except OSError as e:
        raise Unavailable(f"seccomp requested but libseccomp.so.2 cannot be loaded: {e}") from e
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lib.seccomp_arch_native.restype = ctypes.c_uint32
    lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
    lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_syscall_resolve_name_arch.argtypes = [ctypes.c_uint32, ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(ArgCmp),
    ]
    lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.ArgCmp = ArgCmp  # type: ignore[attr-defined]  # the rules' argument type, with it
    return lib


def action_value(name: str, errno_ret: int | None, default_errno: int = errno.EPERM) -> int:
    """The libseccomp action code of an OCI action name."""
    try:
        base = _ACTIONS[name]
    except KeyError:
        raise InvalidArgument(f"unknown seccomp action {name!r}") from None
    if name == "SCMP_ACT_ERRNO":
        return base | ((errno_ret if errno_ret is not None else default_errno) & 0xFFFF)
    if name == "SCMP_ACT_TRACE":
        return base | ((errno_ret if errno_ret is not None else default_errno) & 0xFFFF)
    return base


class Filter:
    """A classic-BPF seccomp program (an array of struct sock_filter), ready to `load()`."""

    def __init__(self, program: bytes) -> None:
        if not program or len(program) % _INSN.size or len(program) > _BPF_MAXINSNS * _INSN.size:
            raise InvalidArgument(f"not a seccomp BPF program ({len(program)} bytes)")
        self.program = program
        self._fprog: Any = None

    def _prepared(self) -> Any:
        """struct sock_fprog {unsigned short len; struct sock_filter *filter;} over a copy of
        the program (sock_filter is 8 bytes: an array of uint64 holds it)."""
        if self._fprog is None:
            from dockyard.linux import libc

            insns = len(self.program) // _INSN.size
            array: Any = type("SockFilters", (libc.U64Array,), {"_length_": insns})
            buf = array.from_buffer_copy(self.program)
            self._fprog = (libc.U64x2(insns, libc.addressof(buf)), buf)
        return self._fprog

    def load(self) -> None:
        """Install the program in the calling thread (needs no_new_privs or CAP_SYS_ADMIN)."""
        from dockyard.linux import libc

        fprog = self._prepared()[0]
        ul = libc.c_ulong
        rc = libc.int_fn("prctl")(_PR_SET_SECCOMP, ul(_SECCOMP_MODE_FILTER), fprog, ul(0), ul(0))
        if rc != 0:
            err = libc.get_errno()
            raise OSError(err, f"seccomp filter load: {os.strerror(err)}")


def compile_filter(spec: dict[str, Any], cache_dir: str | None = None) -> Filter:
    """The filter described by an OCI `linux.seccomp` object, from the caches when present."""
    key = cache_key(spec)
    filt = _memo.get(key)
    if filt is None and cache_dir is not None:
        filt = read_cached(cache_dir, key)
    if filt is None:
        filt = Filter(build_program(spec))
        if cache_dir is not None:
            write_cached(cache_dir, key, filt.program)
    filt._prepared()  # the prctl arguments now, not in the container's init
    if key not in _memo:
        while len(_memo) >= MEMO_SIZE:  # the oldest goes; another thread may race us to it
            try:
                _memo.pop(next(iter(_memo)), None)
            except (RuntimeError, StopIteration):
                break
        _memo[key] = filt
    return filt


# -- the cache ------------------------------------------------------------------------------


def cache_key(spec: dict[str, Any]) -> str:
    """Hex SHA-256 naming the program of `spec` on this machine and libseccomp."""
    uname = os.uname()
    parts = [
        FORMAT,
        canonical_json(spec).encode(),
        _lib_identity().encode(),
        f"{uname.machine} {uname.release} {struct.calcsize('P')}".encode(),
    ]
    return _sha256(b"\0".join(parts))


def canonical_json(obj: Any) -> str:
    """Compact JSON with sorted keys (ASCII), without importing `json` when `_json` exists."""
    try:
        import _json

        encode = _json.make_encoder(
            None, _not_json, _json.encode_basestring_ascii, None, ":", ",", True, False, True
        )
        return "".join(encode(obj, 0))
    except ImportError:  # pragma: no cover - non-CPython
        import json

        return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def _not_json(obj: object) -> Any:
    raise InvalidArgument(f"linux.seccomp holds a {type(obj).__name__}, not JSON data")


def _sha256(data: bytes) -> str:
    try:  # the C module alone: `hashlib` costs milliseconds of imports on a cold start
        from _sha256 import sha256  # type: ignore[import-not-found]
    except ImportError:  # pragma: no cover - Python >= 3.12 names it _sha2
        from hashlib import sha256
    return str(sha256(data).hexdigest())


def _lib_identity() -> str:
    """Path, inode, size and mtime of every libseccomp.so.2 the dynamic linker could pick."""
    multiarch = getattr(sys.implementation, "_multiarch", "")
    dirs = [d for d in os.environ.get("LD_LIBRARY_PATH", "").split(":") if d]
    for prefix in ("/usr/local/lib", "/lib", "/usr/lib", "/lib64", "/usr/lib64"):
        dirs += [f"{prefix}/{multiarch}", prefix] if multiarch else [prefix]
    seen = []
    for d in dirs:
        path = f"{d}/libseccomp.so.2"
        try:
            st = os.stat(path)  # the file the symlink names: an upgrade changes the inode
        except OSError:
            continue
        seen.append(f"{path}:{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}")
    return ";".join(seen)


def read_cached(cache_dir: str, key: str) -> Filter | None:
    """The cached program named `key`, or None if absent or not exactly what we wrote."""
    try:
        fd = os.open(os.path.join(cache_dir, f"{key}.bpf"), os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid() or st.st_mode & 0o022 or st.st_size > 65536:
            return None
        data = os.read(fd, st.st_size + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    header, sep, program = data.partition(b"\n")
    fields = header.split(b" ")
    if (
        not sep
        or len(fields) != 4
        or fields[0] != FORMAT
        or fields[1] != key.encode()
        or fields[2] != b"%d" % len(program)
        or fields[3] != _sha256(program).encode()
    ):
        return None
    try:
        return Filter(program)
    except InvalidArgument:
        return None


def write_cached(cache_dir: str, key: str, program: bytes) -> None:
    """Store `program` as `<cache_dir>/<key>.bpf` atomically; a cache that cannot be
    written is not an error (the next container compiles again)."""
    header = b" ".join([FORMAT, key.encode(), b"%d" % len(program), _sha256(program).encode()])
    path = os.path.join(cache_dir, f"{key}.bpf")
    tmp = os.path.join(cache_dir, f".{key}.{os.getpid()}.tmp")
    try:
        os.makedirs(cache_dir, mode=0o700, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, header + b"\n" + program)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except OSError:
        try:  # noqa: SIM105 - contextlib stays off this path
            os.unlink(tmp)
        except OSError:
            pass


# -- building with libseccomp ---------------------------------------------------------------


def build_program(spec: dict[str, Any]) -> bytes:
    """Compile `spec` with libseccomp and return the exported BPF program (ENOSYS stub first)."""
    lib = _lib()
    default_errno = spec.get("defaultErrnoRet", errno.EPERM)
    default_name = spec.get("defaultAction", "SCMP_ACT_ALLOW")
    default = action_value(default_name, None, default_errno)
    ctx = lib.seccomp_init(default)
    if not ctx:
        raise InvalidArgument("seccomp_init failed: bad defaultAction")
    try:
        lib.seccomp_attr_set(ctx, _FLTATR_CTL_NNP, 0)
        lib.seccomp_attr_set(ctx, _FLTATR_CTL_OPTIMIZE, _OPTIMIZE_BINARY_TREE)  # < 2.5: linear
        for arch in spec.get("architectures") or []:
            token = lib.seccomp_arch_resolve_name(arch.removeprefix("SCMP_ARCH_").lower().encode())
            if token:
                lib.seccomp_arch_add(ctx, token)  # -EEXIST for the native arch is fine
        native = lib.seccomp_arch_native()
        highest = -1
        for rule in spec.get("syscalls") or []:
            action = action_value(rule["action"], rule.get("errnoRet"), default_errno)
            for name in rule.get("names") or []:
                nr = lib.seccomp_syscall_resolve_name(name.encode())
                if nr == _NR_SCMP_ERROR:  # unknown; other negatives are pseudo-syscalls
                    continue
                highest = max(highest, lib.seccomp_syscall_resolve_name_arch(native, name.encode()))
                if action != default:
                    _add_rule(lib, ctx, action, nr, rule.get("args") or [], name)
        program = _export(lib, ctx)
    finally:
        lib.seccomp_release(ctx)
    if default_name in _PERMISSIVE or highest < 0:
        return program
    return enosys_stub(native, highest) + program


def _add_rule(
    lib: Any, ctx: int, action: int, nr: int, args: list[dict[str, Any]], name: str
) -> None:
    indices = [a["index"] for a in args]
    groups = [args] if len(set(indices)) == len(indices) else [[a] for a in args]
    for group in groups:
        arr = (lib.ArgCmp * max(len(group), 1))()
        for i, a in enumerate(group):
            op = _OPS.get(a["op"])
            if op is None:
                raise InvalidArgument(f"unknown seccomp operator {a['op']!r} for {name}")
            arr[i] = lib.ArgCmp(a["index"], op, a.get("value", 0), a.get("valueTwo", 0))
        rc = lib.seccomp_rule_add_array(ctx, action, nr, len(group), arr)
        if rc < 0:
            raise InvalidArgument(f"seccomp rule for {name}: {errno.errorcode.get(-rc, rc)}")


def _export(lib: Any, ctx: int) -> bytes:
    fd = os.memfd_create("dockyard-seccomp", os.MFD_CLOEXEC)
    try:
        rc = lib.seccomp_export_bpf(ctx, fd)
        if rc < 0:
            raise InvalidArgument(f"seccomp_export_bpf: {errno.errorcode.get(-rc, rc)}")
        size = os.lseek(fd, 0, os.SEEK_END)
        return os.pread(fd, size, 0)
    finally:
        os.close(fd)


# -- the ENOSYS stub ------------------------------------------------------------------------

_LD_W_ABS, _JEQ_K, _JGT_K, _JSET_K, _RET_K = 0x20, 0x15, 0x25, 0x45, 0x06
_OFF_NR, _OFF_ARCH = 0, 4  # struct seccomp_data: int nr; __u32 arch; ...
_RET_ENOSYS = _ACTIONS["SCMP_ACT_ERRNO"] | errno.ENOSYS


def enosys_stub(arch: int, highest: int) -> bytes:
    """BPF answering ENOSYS for syscalls of `arch` numbered above `highest`, falling through
    to the program that follows otherwise (BPF jumps are relative, so prepending is safe).
    On x86_64 x32 calls (nr | 0x40000000) are left to the program."""
    x32 = arch == _AUDIT_ARCH_X86_64
    rest = 4 if x32 else 3  # instructions between the arch test and the program
    insns = [
        (_LD_W_ABS, 0, 0, _OFF_ARCH),
        (_JEQ_K, 0, rest, arch),
        (_LD_W_ABS, 0, 0, _OFF_NR),
    ]
    if x32:
        insns.append((_JSET_K, 2, 0, _X32_SYSCALL_BIT))
    insns += [(_JGT_K, 0, 1, highest), (_RET_K, 0, 0, _RET_ENOSYS)]
    return b"".join(_INSN.pack(*i) for i in insns)
