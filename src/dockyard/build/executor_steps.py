"""The layer-making steps of the executor (layer L4): cache inputs, RUN, COPY/ADD, WORKDIR.

`inputs(builder, state, ins)` lists what a step reads besides its instruction text, for the
cache key: content checksums of context sources (`BuildContext.checksum`: bytes and layer
metadata, never mtimes), the key of a `--from` stage or the ID of a `--from` image, an ADD URL's
checksum, an ADD git source's resolved commit (`build.gitsource`), and the network mode of a
RUN. A RUN runs only for a platform this host can execute (`build.platforms.check_run`); its
`type=ssh` mounts bind the build's forwarded agents (`build.sshagent`). `run`, `copy` and
`workdir` execute a step on a mounted overlay (`Builder.mounted`) and hand the upper dir to
`Builder.commit`; a RUN's network (netns, endpoint, /etc/hosts and resolv.conf) comes from
`build.network` and goes with the step.

Invariants: every mount made here is made inside an `ExitStack` that unmounts it when the step
ends, failed or not; mount-point stubs a RUN `--mount` needed (dirs or files that did not exist
in the image) are removed from the upper dir before it becomes a layer, as BuildKit does.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import shutil
import stat
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dockyard.build import metadata as md
from dockyard.build import network as netmod
from dockyard.build import run as runmod
from dockyard.build.cache import State
from dockyard.build.chmod import parse_chmod
from dockyard.build.context import clean_source
from dockyard.build.dockerignore import Matcher, walk
from dockyard.build.gitsource import GitRef, parse_git_ref
from dockyard.build.gomatch import has_meta, match
from dockyard.build.model import Copy, Instruction, Run, Workdir
from dockyard.build.platforms import check_run
from dockyard.build.sshagent import auth_sock_env, ssh_binds
from dockyard.build.stages import find_stage
from dockyard.build.steps import Item, Owner, Rooted, copy_items, is_archive, scan_tree
from dockyard.errors import InvalidArgument, NotFound

if TYPE_CHECKING:
    from dockyard.build.executor import Builder, _Ctx


def _is_url(s: str) -> bool:
    return s.startswith(("http://", "https://"))


# -- cache inputs -------------------------------------------------------------------------


def inputs(b: Builder, state: State, ins: Instruction) -> list[str]:
    out: list[str] = []
    if isinstance(ins, Run):
        out.append("network=" + network_of(b, ins))
        for m in ins.mounts:
            if m.type != "bind":
                continue
            if m.from_:
                out.append(f"bind:{m.target}:{source_ref(b, m.from_)}")
            else:
                rels = b.context.resolve(m.source or ".")
                out.append(f"bind:{m.target}:{b.context.checksum(rels, None)}")
    elif isinstance(ins, Copy):
        if ins.from_:
            return [source_ref(b, ins.from_)]
        docs = {h.name for h in ins.heredocs}
        for src in ins.sources:
            if src in docs:
                continue
            git = parse_git_ref(src) if ins.add else None
            if git is not None:  # the resolved commit: a moved branch misses, else a hit
                out.append(f"{src}\0git:{b.git.commit(git)}")
                continue
            if _is_url(src):
                out.append(f"{src}\0{ins.checksum or _download(b, src, '')[1]}")
                continue
            rels = b.context.resolve(src)
            out.append(f"{src}\0{b.context.checksum(rels)}")
    return out


def network_of(b: Builder, ins: Run) -> str:
    from dockyard.build.network import step_mode

    return step_mode(b.opts.network, ins.network)


def _from_state(b: Builder, ref: str) -> State:
    assert b.plan is not None
    idx = find_stage(b.plan.stages, ref, len(b.plan.stages))
    if idx is not None and idx in b.states:
        return b.states[idx]
    return b.image_state(ref, b.plan.stages[b.plan.target].platform)


def source_ref(b: Builder, ref: str) -> str:
    st = _from_state(b, ref)
    return f"from:{st.key}:{st.top or ''}"


# -- RUN ----------------------------------------------------------------------------------


def _env(state: State, args: dict[str, str], home: str) -> list[str]:
    from dockyard.container.spec import DEFAULT_PATH

    env = md.env_map(state.config)
    merged = {k: v for k, v in args.items() if k not in env}
    merged.update(env)
    merged.setdefault("PATH", DEFAULT_PATH)
    merged.setdefault("HOME", home or "/root")
    return [f"{k}={v}" for k, v in merged.items()]


def run(b: Builder, state: State, ins: Run, ctx: _Ctx) -> None:
    from dockyard.container.spec import resolve_user

    check_run(ctx.stage.platform)
    ssh = ssh_binds(ins.mounts, b.ssh_sockets)
    d = b.step_dir()
    argv, script = runmod.run_args(ins, md.shell_of(state.config))
    with ExitStack() as es:
        rootfs, upper = es.enter_context(b.mounted(state, d))
        uid, gid, extra, home = resolve_user(rootfs, state.config.get("User") or "")
        cwd = state.config.get("WorkingDir") or "/"
        if not Rooted(rootfs).is_dir(cwd):
            Rooted(rootfs).mkdirs(cwd)  # a base image's WorkingDir may be missing
        mounts = _run_mounts(b, ins, d, es)
        mounts += [runmod.bind(sock, target, True) for sock, target in ssh]
        if script is not None:
            pipes = d / "pipes"
            pipes.mkdir()
            f = pipes / ins.heredocs[0].name
            f.write_text(script)
            f.chmod(0o755)
            mounts.append(runmod.bind(str(pipes), "/dev/pipes", True))
        cid = netmod.container_id()
        net = es.enter_context(netmod.step_network(b.engine, network_of(b, ins), cid, d))
        mounts = [*net.mounts, *mounts]
        stubs = _stubs(Rooted(rootfs), [m["destination"] for m in mounts])
        spec = runmod.build_spec(
            rootfs,
            argv,
            auth_sock_env(_env(state, dict(ctx.step.args), home), ssh),
            cwd,
            (uid, gid, extra),
            network=net.mode,
            mounts=mounts,
            cgroup=f"/dockyard/{cid}",
            netns=net.netns,
        )
        b.stats.containers += 1
        code = runmod.run_container(
            str(b.build_root / "runtime"),
            cid,
            d / "bundle",
            spec,
            lambda line: b.progress.log(ctx.vertex, line),
        )
        if code != 0:
            from dockyard.build.executor import BuildError

            raise BuildError(
                f'process "{runmod.display(argv)}" did not complete successfully: exit code: {code}'
            )
    _remove_stubs(upper, stubs)
    b.commit(state, upper, md.created_by(ins, state.config, argv))


def _run_mounts(b: Builder, ins: Run, d: Path, es: ExitStack) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, m in enumerate(ins.mounts):
        (d / f"m{i}").mkdir()
        target = posixpath.normpath(m.target) if m.target else ""
        if m.type == "bind":
            if m.from_:
                root = es.enter_context(b.mounted_ro(_from_state(b, m.from_), d / f"m{i}"))
                src = Rooted(root).resolve(clean_source(m.source or "."))
            else:
                b.context.resolve(m.source or ".")
                src = Rooted(b.context.root).resolve(clean_source(m.source or "."))
            if not os.path.lexists(src):
                raise NotFound(f"RUN --mount: source {m.source!r} not found")
            if not m.readonly:  # writes to an rw bind are discarded, as BuildKit does
                copy = d / f"rw{i}"
                if os.path.isdir(src):
                    shutil.copytree(src, copy, symlinks=True)
                else:
                    shutil.copy2(src, copy, follow_symlinks=False)
                src = str(copy)
            out.append(runmod.bind(src, target, m.readonly))
        elif m.type == "cache":
            out.append(runmod.bind(_cache_dir(b, m.id or target, m.mode, m.uid, m.gid),
                                   target, m.readonly))  # fmt: skip
        elif m.type == "tmpfs":
            out.append(runmod.tmpfs(target, m.size))
        elif m.type == "secret":
            sid = m.id or posixpath.basename(target)
            path = b.opts.secrets.get(sid)
            if path is None:
                if m.required:
                    raise NotFound(f"secret {sid} not found")
                continue
            out.append(runmod.bind(os.path.abspath(path), target or f"/run/secrets/{sid}", True))
        elif m.type != "ssh":  # ssh mounts: `sshagent.ssh_binds`
            raise InvalidArgument(f"RUN --mount=type={m.type} is not supported")
    return out


def _cache_dir(b: Builder, cache_id: str, mode: int | None, uid: int | None,
               gid: int | None) -> str:  # fmt: skip
    name = hashlib.sha256(cache_id.encode()).hexdigest()[:32]
    path = b.build_root / "cache-mounts" / name
    if not path.is_dir():  # made aside and renamed in: stages in other workers may race us
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{name}.{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(mode=0o755)
        os.chmod(tmp, mode if mode is not None else 0o755)
        os.chown(tmp, uid or 0, gid or 0)
        try:
            os.rename(tmp, path)  # replaces only an empty directory: another racer's
        except OSError:  # it is in use already (not empty): theirs stays
            shutil.rmtree(tmp, ignore_errors=True)
    return str(path)


@dataclass
class _Stubs:
    """Mount-point stubs a RUN's mounts will create (relative paths, deepest last) and the
    existing directories above them, with their (mode, uid, gid): overlay copies those up
    when a stub is made in them."""

    paths: list[str] = field(default_factory=list)
    parents: dict[str, tuple[int, int, int]] = field(default_factory=dict)


def _stubs(root: Rooted, targets: list[str]) -> _Stubs:
    out = _Stubs()
    for t in targets:
        real = root.resolve(t)
        rel = os.path.relpath(real, root.root)
        parts = rel.split("/")
        first = next(
            (i for i in range(1, len(parts) + 1)
             if not os.path.lexists(os.path.join(root.root, *parts[:i]))),
            0,
        )  # fmt: skip
        if not first:
            continue
        for i in range(first, len(parts) + 1):
            p = "/".join(parts[:i])
            if p not in out.paths:
                out.paths.append(p)
        for j in range(1, first):
            q = "/".join(parts[:j])
            qs = os.lstat(os.path.join(root.root, q))
            out.parents[q] = (qs.st_mode, qs.st_uid, qs.st_gid)
    return out


def _remove_stubs(upper: Path, stubs: _Stubs) -> None:
    """Remove the stubs, then the directories that are in the upper dir only because a stub
    was made in them (empty, not opaque, mode and owner unchanged): a RUN that changed
    nothing makes no layer."""
    for rel in reversed(stubs.paths):
        p = upper / rel
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(st.st_mode):
            if not any(os.scandir(p)):
                os.rmdir(p)
        elif stat.S_ISREG(st.st_mode) and st.st_size == 0:
            os.unlink(p)
    for rel in sorted(stubs.parents, key=lambda r: r.count("/"), reverse=True):
        p = upper / rel
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            continue
        if (
            stat.S_ISDIR(st.st_mode)
            and (st.st_mode, st.st_uid, st.st_gid) == stubs.parents[rel]
            and not _opaque(p)
            and not any(os.scandir(p))
        ):
            os.rmdir(p)


def _opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
    except OSError:
        return False


# -- COPY / ADD ---------------------------------------------------------------------------


def _owner(rootfs: Path, chown: str) -> tuple[int, int]:
    from dockyard.container.spec import resolve_user

    user, sep, _group = chown.partition(":")
    uid, gid, _, _ = resolve_user(rootfs, chown)
    if not sep and user.isdigit():
        gid = uid
    return uid, gid


def copy(b: Builder, state: State, ins: Copy, ctx: _Ctx) -> None:
    d = b.step_dir()
    workdir = state.config.get("WorkingDir") or "/"
    with ExitStack() as es:
        rootfs, upper = es.enter_context(b.mounted(state, d))
        owner: Owner = _owner(rootfs, ins.chown) if ins.chown else None
        if ins.from_:
            src_root = es.enter_context(b.mounted_ro(_from_state(b, ins.from_), d))
            items, wild = _stage_items(Rooted(src_root), ins)
        else:
            items, wild = _context_items(b, ins, d)
            owner = owner or (0, 0)
        copy_items(
            Rooted(rootfs, upper if rootfs != upper else None),
            items,
            ins.dest,
            workdir=workdir,
            owner=owner,
            chmod=parse_chmod(ins.chmod),
            force_dir=wild,
            parents=ins.parents,
        )
    b.commit(state, upper, md.created_by(ins, state.config))


def _excluded(ins: Copy) -> Matcher | None:
    return Matcher(list(ins.exclude)) if ins.exclude else None


def _context_items(b: Builder, ins: Copy, d: Path) -> tuple[list[Item], bool]:
    ctx = b.context
    docs = {h.name: h for h in ins.heredocs}
    excl = _excluded(ins)
    items: list[Item] = []
    wild = False
    for src in ins.sources:
        if src in docs:
            items.append(_heredoc_item(b, d, docs[src].name, docs[src].text))
            continue
        git = parse_git_ref(src) if ins.add else None
        if git is not None:
            items.append(_git_item(b, ins, git))
            continue
        if _is_url(src):
            path, _ = _download(b, src, ins.checksum)
            items.append(Item(path, _url_name(src), os.lstat(path)))
            continue
        wild = wild or has_meta(src)
        for rel in ctx.resolve(src):
            if excl is not None and excl.is_excluded(rel):
                continue
            host = Rooted(ctx.root).resolve(rel, follow_last=False)
            st = os.lstat(host)
            item = Item(host, rel if ins.parents else posixpath.basename(rel), st)
            if stat.S_ISDIR(st.st_mode):
                prefix = "" if rel == "." else rel + "/"
                for r, e in walk(host, ctx.matcher, prefix):
                    child = r[len(prefix) :]
                    if excl is not None and excl.is_excluded(child):
                        continue
                    item.children.append((child, e.path, e.stat(follow_symlinks=False)))
            elif ins.add and stat.S_ISREG(st.st_mode) and is_archive(host):
                item.tar = True
            items.append(item)
    return items, wild


def _git_item(b: Builder, ins: Copy, git: GitRef) -> Item:
    """The checked-out tree of a git source, copied as a directory's contents."""
    commit = b.git.commit(git)
    if ins.checksum and not commit.startswith(ins.checksum):
        raise InvalidArgument(f"ADD {git.remote}: commit {commit} does not match --checksum")
    top = str(b.git.checkout(git, ins.keep_git_dir))
    return Item(top, ".", os.lstat(top), scan_tree(top))


def _stage_items(root: Rooted, ins: Copy) -> tuple[list[Item], bool]:
    excl = _excluded(ins)
    items: list[Item] = []
    wild = False
    for src in ins.sources:
        path = clean_source(src)
        parent, _, last = path.rpartition("/")
        if has_meta(last):
            wild = True
            pdir = root.resolve(parent)
            listing = os.listdir(pdir) if os.path.isdir(pdir) else []
            names = sorted(n for n in listing if match(last, n))
            hosts = [root.resolve(f"{parent}/{n}" if parent else n) for n in names]
        else:
            hosts = [root.resolve(path)]
        hosts = [h for h in hosts if os.path.lexists(h)]
        if not hosts:
            raise NotFound(f'"{src}": not found')
        for host in hosts:
            st = os.lstat(host)
            item = Item(host, posixpath.basename(host), st)
            if stat.S_ISDIR(st.st_mode):
                item.children = [
                    c for c in scan_tree(host) if excl is None or not excl.is_excluded(c[0])
                ]
            items.append(item)
    return items, wild


def _heredoc_item(b: Builder, d: Path, name: str, text: str) -> Item:
    docs = d / "heredocs"
    docs.mkdir(exist_ok=True)
    path = docs / name
    path.write_text(text)
    path.chmod(0o644)
    t = b.opts.source_date_epoch
    if t is not None:
        os.utime(path, (t, t))
    return Item(str(path), name, os.lstat(path))


def _url_name(url: str) -> str:
    from urllib.parse import urlparse

    return posixpath.basename(urlparse(url).path) or "download"


def _download(b: Builder, url: str, checksum: str) -> tuple[str, str]:
    """Fetch an ADD URL once per build into the work dir: (path, sha256 digest)."""
    import urllib.request

    cached = b.downloads.get(url)
    if cached is not None:
        return cached
    d = b.step_dir()
    path = d / _url_name(url)
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=30) as r, open(path, "wb") as f:
            while chunk := r.read(1 << 20):
                h.update(chunk)
                f.write(chunk)
    except OSError as e:
        raise NotFound(f"ADD {url}: download failed: {e}") from None
    digest = "sha256:" + h.hexdigest()
    if checksum and checksum != digest:
        raise InvalidArgument(f"ADD {url}: digest mismatch: expected {checksum}, got {digest}")
    os.chmod(path, 0o600)
    b.downloads[url] = (str(path), digest)
    return str(path), digest


# -- WORKDIR ------------------------------------------------------------------------------


def workdir(b: Builder, state: State, ins: Workdir, ctx: _Ctx) -> None:
    from dockyard.container.spec import resolve_user

    path = md.workdir_of(state.config, ins.path)
    state.config["WorkingDir"] = path
    d = b.step_dir()
    with b.mounted(state, d) as (rootfs, upper):
        root = Rooted(rootfs)
        if not root.is_dir(path):
            owner = None
            if state.config.get("User"):
                uid, gid, _, _ = resolve_user(rootfs, state.config["User"])
                owner = (uid, gid)
            root.mkdirs(path, owner)
    b.commit(state, upper, f"WORKDIR {path}")
