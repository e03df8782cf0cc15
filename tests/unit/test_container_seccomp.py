"""The default seccomp profile (Docker's policy) and Docker-format profile files, as data."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from dockyard.container import seccomp
from dockyard.container.seccomp import (
    convert_profile,
    default_profile,
    from_security_opts,
    load_profile,
    parse_kernel,
    seccomp_option,
)
from dockyard.container.spec import DEFAULT_CAPS
from dockyard.errors import InvalidArgument

AMD64 = {"arch": "amd64", "kernel": (6, 1, 0)}
CLONE_NS = 0x7E020000  # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET


def unconditional(profile: dict[str, Any]) -> set[str]:
    """Names allowed whatever their arguments."""
    return {
        n
        for r in profile["syscalls"]
        if r["action"] == "SCMP_ACT_ALLOW" and not r.get("args")
        for n in r["names"]
    }


def rules_for(profile: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [r for r in profile["syscalls"] if name in r["names"]]


# ---- the default profile ---------------------------------------------------------------------


def test_default_is_an_allowlist_answering_eperm() -> None:
    p = default_profile(DEFAULT_CAPS, **AMD64)
    assert p["defaultAction"] == "SCMP_ACT_ERRNO" and p["defaultErrnoRet"] == 1
    assert p["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    allowed = unconditional(p)
    for name in ("read", "write", "openat", "execve", "exit_group", "futex", "mmap", "clone3"):
        assert name in allowed or rules_for(p, name), name
    for name in ("getpid", "wait4", "rt_sigaction", "newfstatat", "getdents64", "arch_prctl"):
        assert name in allowed, name


@pytest.mark.parametrize(
    "name",
    ["mount", "umount2", "unshare", "setns", "keyctl", "add_key", "request_key", "reboot",
     "init_module", "finit_module", "delete_module", "kexec_load", "bpf", "swapon", "pivot_root",
     "open_by_handle_at", "clock_settime", "settimeofday", "acct", "userfaultfd", "sethostname",
     "syslog", "perf_event_open", "kcmp", "iopl", "vhangup", "mbind", "lookup_dcookie",
     "fsopen", "move_mount", "quotactl", "lsm_set_self_attr", "modify_ldt_is_not_a_syscall"],
)  # fmt: skip
def test_default_denies_what_docker_denies(name: str) -> None:
    p = default_profile(DEFAULT_CAPS, **AMD64)
    assert rules_for(p, name) == []


def test_argument_conditions() -> None:
    p = default_profile(DEFAULT_CAPS, **AMD64)
    socket = rules_for(p, "socket")
    assert socket == [
        {
            "names": ["socket"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": 40, "valueTwo": 0, "op": "SCMP_CMP_NE"}],
        }
    ]
    personas = sorted(r["args"][0]["value"] for r in rules_for(p, "personality"))
    assert personas == [0, 8, 0x20000, 0x20008, 0xFFFFFFFF]
    assert all(r["args"][0]["op"] == "SCMP_CMP_EQ" for r in rules_for(p, "personality"))
    (clone,) = rules_for(p, "clone")
    assert clone["args"] == [
        {"index": 0, "value": CLONE_NS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}
    ]
    (clone3,) = rules_for(p, "clone3")
    assert clone3["action"] == "SCMP_ACT_ERRNO" and clone3["errnoRet"] == 38  # ENOSYS


def test_cap_sys_admin_opens_mounts_and_namespaces() -> None:
    p = default_profile([*DEFAULT_CAPS, "CAP_SYS_ADMIN"], **AMD64)
    allowed = unconditional(p)
    for name in ("mount", "umount2", "setns", "unshare", "sethostname", "clone", "clone3",
                 "fsopen", "bpf", "perf_event_open", "lsm_set_self_attr", "quotactl"):  # fmt: skip
        assert name in allowed, name
    assert all(not r.get("args") for r in rules_for(p, "clone"))
    assert all(r["action"] == "SCMP_ACT_ALLOW" for r in rules_for(p, "clone3"))


@pytest.mark.parametrize(
    ("cap", "names"),
    [
        ("CAP_SYS_PTRACE", ["ptrace", "kcmp", "pidfd_getfd", "process_madvise"]),
        ("CAP_SYS_MODULE", ["init_module", "finit_module", "delete_module"]),
        ("CAP_SYS_BOOT", ["reboot"]),
        ("CAP_SYS_TIME", ["settimeofday", "stime", "clock_settime"]),
        ("CAP_SYS_NICE", ["mbind", "get_mempolicy", "set_mempolicy"]),
        ("CAP_SYS_RAWIO", ["iopl", "ioperm"]),
        ("CAP_SYS_PACCT", ["acct"]),
        ("CAP_SYS_TTY_CONFIG", ["vhangup"]),
        ("CAP_SYSLOG", ["syslog"]),
        ("CAP_BPF", ["bpf"]),
        ("CAP_PERFMON", ["perf_event_open"]),
        ("CAP_DAC_READ_SEARCH", ["open_by_handle_at"]),
    ],
)
def test_capability_includes(cap: str, names: list[str]) -> None:
    without = default_profile(DEFAULT_CAPS, **AMD64)
    with_cap = default_profile([*DEFAULT_CAPS, cap], **AMD64)
    for name in names:
        assert name in unconditional(with_cap), name
        if name != "ptrace":  # allowed to everyone on kernels >= 4.8
            assert name not in unconditional(without), name
    assert "mount" not in unconditional(with_cap)


def test_chroot_follows_cap_sys_chroot() -> None:
    assert "chroot" in unconditional(default_profile(DEFAULT_CAPS, **AMD64))
    caps = [c for c in DEFAULT_CAPS if c != "CAP_SYS_CHROOT"]
    assert "chroot" not in unconditional(default_profile(caps, **AMD64))


def test_capability_names_are_normalised() -> None:
    assert default_profile(["sys_admin"], **AMD64) == default_profile(["CAP_SYS_ADMIN"], **AMD64)


def test_ptrace_needs_kernel_4_8_without_the_capability() -> None:
    old = default_profile(DEFAULT_CAPS, arch="amd64", kernel=(4, 4, 0))
    new = default_profile(DEFAULT_CAPS, arch="amd64", kernel=(4, 8, 0))
    assert "ptrace" not in unconditional(old) and "ptrace" in unconditional(new)
    assert "process_vm_readv" in unconditional(new)


def test_architectures() -> None:
    arm = default_profile(DEFAULT_CAPS, arch="arm64", kernel=(6, 1, 0))
    assert arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert {"cacheflush", "set_tls", "arm_fadvise64_64"} <= unconditional(arm)
    assert "arch_prctl" not in unconditional(arm) and "modify_ldt" not in unconditional(arm)
    s390 = default_profile(DEFAULT_CAPS, arch="s390x", kernel=(6, 1, 0))
    assert s390["architectures"] == ["SCMP_ARCH_S390X", "SCMP_ARCH_S390"]
    (clone,) = rules_for(s390, "clone")
    assert clone["args"][0]["index"] == 1  # s390 passes the flags second
    riscv = default_profile(DEFAULT_CAPS, arch="riscv64", kernel=(6, 1, 0))
    assert riscv["architectures"] == ["SCMP_ARCH_RISCV64"]
    assert "riscv_flush_icache" in unconditional(riscv)
    ppc = default_profile(DEFAULT_CAPS, arch="ppc64le", kernel=(6, 1, 0))
    assert "architectures" not in ppc and "sync_file_range2" in unconditional(ppc)


def test_default_is_cached_fast_and_a_fresh_copy() -> None:
    seccomp._default_cached.cache_clear()
    first = []
    for _ in range(5):
        seccomp._default_cached.cache_clear()
        t = time.perf_counter()
        default_profile(DEFAULT_CAPS)
        first.append(time.perf_counter() - t)
    assert min(first) < 0.002
    p = default_profile(DEFAULT_CAPS)
    p["syscalls"][0]["names"].append("kexec_load")
    p["syscalls"].clear()
    p["architectures"].clear()
    t = time.perf_counter()
    for _ in range(100):
        q = default_profile(DEFAULT_CAPS)
    assert (time.perf_counter() - t) / 100 < 0.002
    assert q["architectures"] and "kexec_load" not in unconditional(q)
    assert json.loads(json.dumps(q)) == q  # plain JSON data


def test_parse_kernel() -> None:
    assert parse_kernel("6.18.44-fc-v657") == (6, 18, 44)
    assert parse_kernel("4.8") == (4, 8, 0)
    assert parse_kernel("5.10.0+") == (5, 10, 0)
    with pytest.raises(InvalidArgument):
        parse_kernel("four")


def test_default_profile_compiles_with_libseccomp() -> None:
    from dockyard.errors import Unavailable
    from dockyard.linux.seccomp import compile_filter

    for caps in (DEFAULT_CAPS, (*DEFAULT_CAPS, "CAP_SYS_ADMIN", "CAP_SYS_PTRACE")):
        try:
            compile_filter(default_profile(caps))
        except Unavailable as e:
            pytest.skip(str(e))


# ---- Docker-format profiles ------------------------------------------------------------------

DOCKER_PROFILE: dict[str, Any] = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": 1,
    "archMap": [
        {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
        {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
    ],
    "syscalls": [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
        {"name": "getpid", "action": "SCMP_ACT_ALLOW", "comment": "old style"},
        {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["both"], "action": "SCMP_ACT_ALLOW",
         "includes": {"caps": ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]}},
        {"names": ["not_admin"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
         "excludes": {"caps": ["CAP_SYS_ADMIN", "CAP_BPF"]}},
        {"names": ["x86only"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64"]}},
        {"names": ["not_arm"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["arm64"]}},
        {"names": ["newkernel"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "5.6"}},
        {"names": ["oldkernel"], "action": "SCMP_ACT_LOG", "excludes": {"minKernel": "5.6"}},
        {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
    ],
}  # fmt: skip


def names_of(p: dict[str, Any] | None) -> list[str]:
    assert p is not None
    return [n for r in p["syscalls"] for n in r["names"]]


def test_docker_profile_resolution_amd64() -> None:
    p = load_profile(json.dumps(DOCKER_PROFILE), DEFAULT_CAPS, **AMD64)
    assert p is not None
    assert p["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]
    assert p["defaultAction"] == "SCMP_ACT_ERRNO" and p["defaultErrnoRet"] == 1
    assert names_of(p) == [
        "read", "write", "getpid", "not_admin", "x86only", "not_arm", "newkernel", "socket",
    ]  # fmt: skip
    assert rules_for(p, "not_admin")[0]["errnoRet"] == 38
    assert rules_for(p, "socket")[0]["args"] == [
        {"index": 0, "value": 1, "valueTwo": 0, "op": "SCMP_CMP_EQ"}
    ]
    assert "comment" not in json.dumps(p) and "includes" not in json.dumps(p)


def test_docker_profile_resolution_caps_arch_kernel() -> None:
    text = json.dumps(DOCKER_PROFILE)
    admin = load_profile(text, ["SYS_ADMIN"], arch="arm64", kernel=(5, 4, 0))
    assert admin is not None and admin["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert names_of(admin) == ["read", "write", "getpid", "mount", "oldkernel", "socket"]
    both = load_profile(text, ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"], **AMD64)
    assert "both" in names_of(both) and "not_admin" not in names_of(both)
    other = load_profile(text, [], arch="ppc64le", kernel=(6, 1, 0))
    assert other is not None and "architectures" not in other


def test_load_profile_from_file_and_keywords(tmp_path: Path) -> None:
    f = tmp_path / "profile.json"
    f.write_text(json.dumps(DOCKER_PROFILE))
    assert load_profile(str(f), DEFAULT_CAPS, **AMD64) == load_profile(
        "  " + json.dumps(DOCKER_PROFILE), DEFAULT_CAPS, **AMD64
    )
    assert load_profile("unconfined", DEFAULT_CAPS) is None
    assert load_profile("builtin", DEFAULT_CAPS, **AMD64) == default_profile(DEFAULT_CAPS, **AMD64)
    assert load_profile("{}", DEFAULT_CAPS) is None  # nothing to enforce: Docker turns it off


def test_oci_profile_round_trips() -> None:
    """An OCI seccomp object is a Docker profile without includes: it loads unchanged."""
    p = default_profile(DEFAULT_CAPS, **AMD64)
    assert load_profile(json.dumps(p), DEFAULT_CAPS, **AMD64) == p
    extra = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
             "flags": ["SECCOMP_FILTER_FLAG_LOG"], "listenerPath": "/run/l.sock",
             "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}  # fmt: skip
    assert load_profile(json.dumps(extra), [], **AMD64) == extra


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("{not json", "decoding seccomp profile failed"),
        ({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
          "archMap": DOCKER_PROFILE["archMap"]}, "use either 'architectures' or 'archMap'"),
        ({"defaultAction": "SCMP_ACT_ERRNO",
          "syscalls": [{"name": "a", "names": ["b"], "action": "SCMP_ACT_ALLOW"}]},
         "use either 'name' or 'names'"),
        ({"defaultAction": "SCMP_ACT_NOPE"}, "unknown action 'SCMP_ACT_NOPE'"),
        ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["a"]}]},
         "unknown action '' in syscalls[0]"),
        ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["a"],
          "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "op": "SCMP_CMP_WAT"}]}]},
         "unknown operator 'SCMP_CMP_WAT'"),
        ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["a"],
          "action": "SCMP_ACT_ALLOW", "args": [{"index": 6, "op": "SCMP_CMP_EQ"}]}]},
         "index 6"),
        ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["a"],
          "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]}]},
         "'value' must be"),
        ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": "read"}, "'syscalls' must be a list"),
        ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["a"],
          "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "new"}}]},
         "invalid kernel version"),
    ],
)  # fmt: skip
def test_bad_profiles_are_invalid_arguments(doc: Any, message: str) -> None:
    text = doc if isinstance(doc, str) else json.dumps(doc)
    with pytest.raises(InvalidArgument, match=re.escape(message)):
        load_profile(text, DEFAULT_CAPS, **AMD64)


def test_a_profile_is_an_object() -> None:
    with pytest.raises(InvalidArgument, match="expected a JSON object"):
        convert_profile([1], DEFAULT_CAPS, **AMD64)


def test_missing_file_is_an_invalid_argument(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match=r"opening seccomp profile \(.*nope.json\) failed"):
        load_profile(str(tmp_path / "nope.json"), DEFAULT_CAPS)


# ---- --security-opt --------------------------------------------------------------------------


def test_seccomp_option_parsing() -> None:
    assert seccomp_option(None) is None
    assert seccomp_option(["apparmor=unconfined", "no-new-privileges"]) is None
    assert seccomp_option(["seccomp=unconfined"]) == "unconfined"
    assert seccomp_option(["seccomp:/etc/p.json"]) == "/etc/p.json"  # legacy separator
    assert seccomp_option(["seccomp=/a:b.json", "seccomp=builtin"]) == "builtin"  # last wins
    assert seccomp_option(['seccomp={"a": 1}']) == '{"a": 1}'


def test_from_security_opts(tmp_path: Path) -> None:
    caps = list(DEFAULT_CAPS)
    assert from_security_opts([], caps) == default_profile(caps)
    assert from_security_opts(["seccomp=unconfined"], caps) is None
    assert from_security_opts(None, caps, privileged=True) is None
    assert from_security_opts(["seccomp=builtin"], caps) == default_profile(caps)
    f = tmp_path / "p.json"
    f.write_text(json.dumps(DOCKER_PROFILE))
    loaded = from_security_opts([f"seccomp={f}"], caps)
    assert loaded is not None and "read" in names_of(loaded)
    assert from_security_opts([f"seccomp={f.read_text()}"], caps) == loaded
