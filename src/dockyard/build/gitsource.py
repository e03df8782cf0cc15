"""`ADD <git ref> <dest>`: recognising git sources, resolving refs, checking them out (L4).

`parse_git_ref(src)` says whether an ADD source is a git repository, with BuildKit's rules
(`gitutil.ParseGitRef`): a URL with scheme `git://` or `ssh://`; `http(s)://` only when its path
ends in `.git`; or the scp-like `user@host:path`. A `#ref[:subdir]` fragment names a branch, tag
or commit and a directory inside the repository; other schemes are not git.

`GitSources` (one per build) runs the host's `git`: `commit(ref)` resolves the fragment with
`git ls-remote` (a full commit hash is taken as is) — the step's cache key, so a moved branch
rebuilds and an unmoved one is a cache hit; `checkout(ref, keep_git_dir)` fetches exactly that
commit (shallow) into a private work dir and returns the directory to copy (the subdir, when
named). Without `--keep-git-dir` every `.git` entry is removed. Files are made deterministic:
regular files 0644 or 0755 (by their executable bit), directories 0755, every mtime the commit
time, so two checkouts of one commit give the same layer.

Invariants: git never reads the host's global or system config and never prompts (no terminal,
`BatchMode` ssh); a checkout never escapes its work dir (subdirs are resolved inside it); a ref
that resolves to another commit than the one in the cache key fails the step instead of adding
different files under that key.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from dockyard.errors import FailedPrecondition, NotFound

_SCHEME = re.compile(r"^([a-zA-Z0-9]+)://")
_SCP = re.compile(r"^([a-zA-Z0-9-_]+)@([a-zA-Z0-9-.]+):(.*?)(?:#(.*))?$")
_HASH = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
_TIMEOUT = 600


@dataclass(frozen=True)
class GitRef:
    remote: str  # the URL without its fragment
    ref: str = ""  # branch, tag, full ref name or commit; "" for the remote's HEAD
    subdir: str = ""


def parse_git_ref(src: str) -> GitRef | None:
    """The git reference `src` names, or None when it is not a git source."""
    m = _SCHEME.match(src)
    if m:
        scheme = m.group(1).lower()
        if scheme not in ("http", "https", "git", "ssh"):
            return None
        remote, _, fragment = src.partition("#")
        if scheme in ("http", "https") and not urlsplit(remote).path.endswith(".git"):
            return None
        return _with_fragment(remote, fragment)
    m = _SCP.match(src)
    if m:
        return _with_fragment(src.partition("#")[0], m.group(4) or "")
    return None


def _with_fragment(remote: str, fragment: str) -> GitRef:
    ref, _, subdir = fragment.partition(":")
    return GitRef(remote, ref, subdir.strip("/"))


def git_env(ssh_sock: str | None = None) -> dict[str, str]:
    """The environment git runs in: no host config, no prompts, an optional ssh agent."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "SSH_"))}
    env.update(
        GIT_TERMINAL_PROMPT="0",
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_SSH_COMMAND="ssh -o BatchMode=yes",
        LC_ALL="C",
    )
    if ssh_sock:
        env["SSH_AUTH_SOCK"] = ssh_sock
    return env


def _git(args: list[str], env: dict[str, str], what: str, cwd: str | None = None) -> str:
    try:
        p = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT,
        )
    except FileNotFoundError:
        raise FailedPrecondition("ADD of a git repository needs git installed") from None
    except subprocess.TimeoutExpired:
        raise FailedPrecondition(f"{what}: git timed out after {_TIMEOUT}s") from None
    if p.returncode != 0:
        detail = (p.stderr.strip().splitlines() or [f"exit code {p.returncode}"])[-1]
        raise NotFound(f"{what}: {detail}")
    return p.stdout


def pick_ref(listing: str, ref: str) -> tuple[str, str] | None:
    """(commit, full ref name) for `ref` in `git ls-remote` output: an exact full name, else
    a branch, else a tag (peeled to its commit)."""
    found: dict[str, str] = {}
    for line in listing.splitlines():
        sha, _, name = line.partition("\t")
        if sha and name:
            found[name] = sha
    if not ref:
        return (found["HEAD"], "HEAD") if "HEAD" in found else None
    for name in (ref, f"refs/heads/{ref}", f"refs/tags/{ref}"):
        if name in found and (ref.startswith("refs/") or name != ref):
            return found.get(name + "^{}", found[name]), name
    return None


class GitSources:
    """The git sources of one build: resolved commits and checkouts, each done once."""

    def __init__(self, work_dir: Callable[[], Path], ssh_sock: Callable[[], str | None]) -> None:
        self._work_dir = work_dir
        self._ssh_sock = ssh_sock
        self._commits: dict[GitRef, tuple[str, str]] = {}
        self._checkouts: dict[tuple[str, bool], Path] = {}

    def _env(self) -> dict[str, str]:
        return git_env(self._ssh_sock())

    def resolve(self, g: GitRef) -> tuple[str, str]:
        """(commit, full ref name or "") of `g`'s ref, by `git ls-remote`."""
        if g in self._commits:
            return self._commits[g]
        if _HASH.match(g.ref.lower()):
            out = (g.ref.lower(), "")
        else:
            what = f"failed to resolve {g.remote}#{g.ref or 'HEAD'}"
            pats = [g.ref, g.ref + "^{}"] if g.ref else ["HEAD"]  # with the peeled tags
            listing = _git(["ls-remote", g.remote, *pats], self._env(), what)
            picked = pick_ref(listing, g.ref)
            if picked is None:
                raise NotFound(f"{what}: no branch or tag {g.ref or 'HEAD'!r} in the repository")
            out = picked
        self._commits[g] = out
        return out

    def commit(self, g: GitRef) -> str:
        return self.resolve(g)[0]

    def checkout(self, g: GitRef, keep_git_dir: bool) -> Path:
        """The directory to copy for `g` (its subdir, if named), checked out at its commit."""
        commit, name = self.resolve(g)
        key = (commit + "\0" + g.remote, keep_git_dir)
        top = self._checkouts.get(key)
        if top is None:
            top = self._work_dir() / "git"
            _fetch(g.remote, commit, name, top, self._env())
            _normalize(top, commit, keep_git_dir, self._env())
            self._checkouts[key] = top
        if not g.subdir:
            return top
        sub = _inside(top, g.subdir)
        if not sub.is_dir():
            raise NotFound(f"{g.remote}#{g.ref}:{g.subdir}: no directory {g.subdir!r} at {commit}")
        return sub


def _fetch(remote: str, commit: str, name: str, top: Path, env: dict[str, str]) -> None:
    what = f"failed to fetch {remote} at {commit}"
    top.mkdir()
    d = str(top)
    _git(["init", "-q", d], env, what)
    _git(["remote", "add", "origin", remote], env, what, d)
    want = name if name and name != "HEAD" else commit
    try:
        _git(["fetch", "-q", "--depth=1", "--no-tags", "origin", want], env, what, d)
    except NotFound:
        if want != commit:
            raise
        # servers that refuse a bare commit: everything, then the commit from it
        _git(["fetch", "-q", "--no-tags", "origin", "+refs/*:refs/remotes/origin/all/*"],
             env, what, d)  # fmt: skip
    got = _git(["rev-parse", "--verify", "-q", (want if want == commit else "FETCH_HEAD")
                + "^{commit}"], env, what, d).strip()  # fmt: skip
    if got != commit:
        raise FailedPrecondition(
            f"{remote}: {name} moved to {got} while the build used {commit}; build again"
        )
    _git(["-c", "advice.detachedHead=false", "checkout", "-q", "--detach", commit], env, what, d)
    if (top / ".gitmodules").exists():
        _git(["submodule", "update", "-q", "--init", "--recursive", "--depth=1"], env, what, d)


def _normalize(top: Path, commit: str, keep_git_dir: bool, env: dict[str, str]) -> None:
    when = int(_git(["log", "-1", "--format=%ct", commit], env, "git log", str(top)).strip())
    for dirpath, dirnames, filenames in os.walk(top, topdown=True):
        if not keep_git_dir:
            p = os.path.join(dirpath, ".git")
            if ".git" in dirnames:
                dirnames.remove(".git")
                shutil.rmtree(p)
            elif ".git" in filenames:  # a submodule's pointer to its git dir
                filenames.remove(".git")
                os.unlink(p)
        elif ".git" in dirnames:
            dirnames.remove(".git")  # kept as git wrote it
        for name in filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if not os.path.islink(p):
                os.chmod(p, 0o755 if st.st_mode & 0o111 else 0o644)
            os.utime(p, (when, when), follow_symlinks=False)
    for dirpath, _, _ in os.walk(top):
        if keep_git_dir and "/.git/" in dirpath[len(str(top)) :] + "/":
            continue
        os.chmod(dirpath, 0o755)
        os.utime(dirpath, (when, when))


def _inside(top: Path, rel: str) -> Path:
    """`rel` under `top`, symlinks resolved without leaving it."""
    from dockyard.build.steps import Rooted

    return Path(Rooted(top).resolve(rel))
