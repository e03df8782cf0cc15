"""The kernel seam (layer L1): the only package that calls the Linux kernel through ctypes.

`kernel.Kernel` is the protocol the runtime programs against; `kernel.RealKernel` implements it
with libc, `fake.FakeKernel` records calls for unit tests. Beside it: `caps` (capability names and
sets), `mountopts` (OCI mount options to mount(2) flags, pure), `seccomp` (libseccomp filters),
`pty` (pseudo-terminals and fd passing), `cgroups/` (cgroup v1/v2, written separately).
Importing this package imports nothing.
"""
