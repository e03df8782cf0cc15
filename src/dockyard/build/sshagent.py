"""SSH agent forwarding for `build --ssh` and `RUN --mount=type=ssh` (layer L4).

`parse_ssh(values)` reads the `--ssh` flags as BuildKit does: `ID[=PATH[,PATH...]]`, where a
PATH is an agent socket or private key files, and no PATH means `$SSH_AUTH_SOCK`.
`forwarded(specs)` is a context manager yielding ID → agent socket for the build: a socket is
used as it is; key files are loaded into an `ssh-agent` of the build's own (started on a
private socket, killed when the build ends). `ssh_binds(mounts, sockets)` gives the (socket,
target) bind mounts of one RUN's `type=ssh` mounts: the target defaults to
`/run/buildkit/ssh_agent.N` (N counts the RUN's ssh mounts), a mount whose ID was not forwarded
is skipped, or fails the step when `required=true`. The RUN gets `SSH_AUTH_SOCK` set to the
first target unless its environment already sets it (`auth_sock_env`).

Invariants: an agent started here is stopped and its socket directory removed when the build
ends, failed or not; key files are only read by `ssh-add`, never by this process; a missing
required agent is an error naming the mount's ID and the flag that provides it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator

from dockyard.build.flags import Mount
from dockyard.errors import FailedPrecondition, InvalidArgument

DEFAULT_TARGET = "/run/buildkit/ssh_agent.{}"


def parse_ssh(values: list[str]) -> dict[str, list[str]]:
    """`--ssh` flags → ID → paths (empty: `$SSH_AUTH_SOCK`)."""
    out: dict[str, list[str]] = {}
    for v in values:
        sid, eq, rest = v.partition("=")
        if not sid or (eq and not rest):
            raise InvalidArgument(f"invalid --ssh {v!r}: expected ID[=SOCKET|KEY[,KEY...]]")
        if sid in out:
            raise InvalidArgument(f"--ssh: duplicate ID {sid!r}")
        out[sid] = [os.path.expanduser(p) for p in rest.split(",")] if rest else []
    return out


def _is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


@contextlib.contextmanager
def forwarded(specs: dict[str, list[str]]) -> Iterator[dict[str, str]]:
    """ID → agent socket for the build's duration (agents for key files started here)."""
    socks: dict[str, str] = {}
    with contextlib.ExitStack() as es:
        for sid, paths in specs.items():
            if not paths:
                sock = os.environ.get("SSH_AUTH_SOCK", "")
                if not sock:
                    raise InvalidArgument(
                        f"--ssh {sid}: SSH_AUTH_SOCK is not set; start an ssh-agent or give "
                        f"--ssh {sid}=SOCKET|KEY"
                    )
                paths = [sock]
            if len(paths) == 1 and _is_socket(paths[0]):
                socks[sid] = os.path.abspath(paths[0])
                continue
            for p in paths:
                if not os.path.isfile(p):
                    raise InvalidArgument(f"--ssh {sid}: {p} is neither an agent socket nor a key")
            socks[sid] = es.enter_context(_agent(sid, paths))
        yield socks


@contextlib.contextmanager
def _agent(sid: str, keys: list[str]) -> Iterator[str]:
    """An `ssh-agent` holding `keys`, on a private socket; stopped on exit."""
    d = tempfile.mkdtemp(prefix="dockyard-ssh-")
    sock = os.path.join(d, "agent")
    try:
        proc = subprocess.Popen(
            ["ssh-agent", "-D", "-a", sock],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        shutil.rmtree(d, ignore_errors=True)
        raise FailedPrecondition(
            f"--ssh {sid}: keys need ssh-agent, which is not installed"
        ) from None
    try:
        deadline = time.monotonic() + 10
        while not _is_socket(sock):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise FailedPrecondition(f"--ssh {sid}: ssh-agent did not start")
            time.sleep(0.01)
        env = {**os.environ, "SSH_AUTH_SOCK": sock, "SSH_ASKPASS_REQUIRE": "never"}
        env.pop("DISPLAY", None)
        p = subprocess.run(["ssh-add", *keys], env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=30)  # fmt: skip
        if p.returncode != 0:
            detail = p.stderr.strip().splitlines()[-1:] or ["ssh-add failed"]
            raise InvalidArgument(f"--ssh {sid}: cannot load {', '.join(keys)}: {detail[0]}")
        yield sock
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(d, ignore_errors=True)


def ssh_binds(mounts: tuple[Mount, ...], sockets: dict[str, str]) -> list[tuple[str, str]]:
    """(host socket, target) for each `type=ssh` mount of a RUN whose agent was forwarded."""
    out: list[tuple[str, str]] = []
    n = 0
    for m in mounts:
        if m.type != "ssh":
            continue
        target = m.target or DEFAULT_TARGET.format(n)
        n += 1
        sid = m.id or "default"
        sock = sockets.get(sid)
        if sock is None:
            if m.required:
                raise FailedPrecondition(
                    f"RUN --mount=type=ssh,id={sid} is required, but no SSH agent or key "
                    f"{sid!r} was forwarded: build with --ssh {sid}[=SOCKET|KEY]"
                )
            continue
        out.append((sock, target))
    return out


def auth_sock_env(env: list[str], binds: list[tuple[str, str]]) -> list[str]:
    """`env` with SSH_AUTH_SOCK pointing at the first ssh mount, unless already set."""
    if not binds or any(e.startswith("SSH_AUTH_SOCK=") for e in env):
        return env
    return [*env, f"SSH_AUTH_SOCK={binds[0][1]}"]
