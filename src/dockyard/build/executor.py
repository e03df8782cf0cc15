"""The build executor (layer L4): a `BuildPlan` becomes an image, step by step, with a cache.

`Builder(engine, context, options, progress).build(dockerfile_text)` plans the Dockerfile,
walks the needed stages in order and, per step, derives the cache key (`cache.step_key`); a hit
restores the state the step produced, a miss executes it:
- RUN: an overlay of the state's snapshots plus a fresh upper dir, a container on it
  (`build.run`), then the upper dir becomes the layer;
- COPY/ADD: files from the context, another stage or an image, written into the mounted overlay
  (`build.steps`), then the upper dir becomes the layer;
- WORKDIR: creates the directory (a layer) when missing; other instructions change the config.
A layer is written as a deterministic uncompressed tar into the content store and the upper dir
itself is renamed into the snapshot store under the new chain ID (no second extraction).
Finally config + manifest are written and the image is registered under the `-t` names.
Stages run level by level (`BuildPlan.levels`); the stages of one level run at the same time,
each in a worker process (`build.parallel`). Base images are chosen for each stage's platform
(`build.baseimage`); `--ssh` agents (`build.sshagent`) are forwarded for the whole build.

Invariants: the whole build holds the shared GC lock and a lease, so nothing it wrote is swept
before the cache or an image names it; every mount and work dir a step makes is removed when
the step ends, failed or not (a failing RUN leaves no container, mount or upper dir behind);
nothing is tagged unless the whole build succeeded.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dockyard.build import metadata as md
from dockyard.build.baseimage import base_image
from dockyard.build.cache import BuildCache, State, root_key, step_key
from dockyard.build.context import BuildContext
from dockyard.build.gitsource import GitSources
from dockyard.build.model import Cmd, Copy, Entrypoint, Instruction, Maintainer, Run, Workdir
from dockyard.build.mounts import rmtree_unmounting as _rmtree
from dockyard.build.mounts import unmount_all
from dockyard.build.network import sweep_dead
from dockyard.build.output import Progress
from dockyard.build.sshagent import forwarded
from dockyard.build.stages import BuildPlan, ImageInfo, Stage, Step, plan
from dockyard.errors import DockyardError, FailedPrecondition
from dockyard.linux.proc import exists

if TYPE_CHECKING:
    from dockyard.engine import Engine
    from dockyard.image.model import Image

OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


class BuildError(FailedPrecondition):
    """A step failed: `step` names it (`[stage k/n] RUN ...`), `loc` is FILE:LINE."""

    def __init__(self, message: str, step: str = "", file: str = "", line: int = 0) -> None:
        super().__init__(message)
        self.step = step
        self.file = file
        self.line = line


class CacheMiss(Exception):
    """Raised by a step in cache-only mode (`Builder.cache_only`) instead of executing."""


@dataclass
class BuildOptions:
    tags: list[str] = field(default_factory=list)
    build_args: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    no_cache: bool = False
    pull: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    network: str = "default"
    platform: str | None = None
    secrets: dict[str, str] = field(default_factory=dict)  # id -> host file
    ssh: dict[str, list[str]] = field(default_factory=dict)  # id -> socket or keys (`sshagent`)
    source_date_epoch: int | None = None
    dockerfile_name: str = "Dockerfile"
    parallel: bool = True  # independent stages in worker processes (`build.parallel`)


@dataclass
class BuildStats:
    containers: int = 0
    cached: int = 0
    executed: int = 0


@dataclass
class _Ctx:
    """Per-step facts the step runners need."""

    stage: Stage
    step: Step
    name: str
    vertex: int


class Builder:
    def __init__(
        self, engine: Engine, context: BuildContext, options: BuildOptions, progress: Progress
    ) -> None:
        self.engine = engine
        self.context = context
        self.opts = options
        self.progress = progress
        self.cache = BuildCache(engine.meta, enabled=not options.no_cache)
        self.stats = BuildStats()
        self.states: dict[int, State] = {}
        self.plan: BuildPlan | None = None
        self.lease = ""
        self.build_root = engine.root / "build"
        self._work: Path | None = None
        self._images: dict[tuple[str, str], Image] = {}
        self.downloads: dict[str, tuple[str, str]] = {}
        self.ssh_sockets: dict[str, str] = {}  # --ssh ID -> agent socket, during `build`
        self.git = GitSources(self.step_dir, lambda: self.ssh_sockets.get("default"))
        self.cache_only = False  # a miss raises CacheMiss instead of executing the step

    # -- top level ------------------------------------------------------------------------

    def build(self, dockerfile: str) -> Image:
        from dockyard.reference import parse_reference

        refs = [parse_reference(t) for t in self.opts.tags]
        self.plan = plan(
            dockerfile,
            file=self.opts.dockerfile_name,
            build_args=self.opts.build_args,
            target=self.opts.target,
            target_platform=self.opts.platform,
            resolve_image=self._image_info,
        )
        for w in self.plan.warnings:
            self.progress.write(w + "\n")
        meta = self.engine.meta
        with meta.gc_lock(), meta.lease() as lease, self._workdir(), \
                forwarded(self.opts.ssh) as self.ssh_sockets:  # fmt: skip
            self.lease = lease
            for level in self.plan.levels:
                if len(level) > 1 and self.opts.parallel:
                    from dockyard.build.parallel import run_level

                    self.states.update(run_level(self, level))
                    continue
                for idx in level:
                    self.states[idx] = self._stage(self.plan.stages[idx])
            return self._export(self.states[self.plan.target], refs)

    @contextlib.contextmanager
    def _workdir(self) -> Iterator[None]:
        base = self.build_root / "work"
        base.mkdir(parents=True, exist_ok=True)
        dead = [n for n in os.listdir(base) if n.split("-")[0].isdigit()
                and not exists(int(n.split("-")[0]))]  # fmt: skip
        for name in dead:  # leftovers of dead builds, and their RUNs' network attachments
            _rmtree(base / name)
        if dead and (self.engine.root / "network.db").exists():
            sweep_dead(self.engine.networks)
        self._work = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=base))
        try:
            yield
        finally:
            _rmtree(self._work)

    def _image(self, name: str, plat: str) -> Image:
        if (name, plat) not in self._images:
            self._images[name, plat] = base_image(self.engine, name, plat, pull=self.opts.pull)
        return self._images[name, plat]

    def _image_info(self, name: str, platform: str) -> ImageInfo | None:
        try:
            img = self._image(name, platform)
        except DockyardError:
            return None
        cfg = img.config.config
        return ImageInfo(md.env_map(cfg), tuple(cfg.get("OnBuild") or ()))

    # -- stages ---------------------------------------------------------------------------

    @property
    def stages(self) -> tuple[Stage, ...]:
        assert self.plan is not None
        return self.plan.stages

    def _visible(self, ins: Instruction) -> bool:
        return isinstance(ins, Run | Copy | Workdir)

    def _label(self, stage: Stage, k: int, n: int, text: str) -> str:
        assert self.plan is not None
        prefix = ""
        if len(self.plan.stages) > 1:
            prefix = (stage.name or f"stage-{stage.index}") + " "
        return f"[{prefix}{k}/{n}] {text}"

    def _stage(self, stage: Stage) -> State:
        n = 1 + sum(1 for s in stage.steps if self._visible(s.instruction))
        v = self.progress.vertex(self._label(stage, 1, n, f"FROM {self._from_text(stage)}"))
        state = self._base(stage)
        self.progress.done(v)
        cmd_set = False
        k = 1
        for step in stage.steps:
            ins = step.instruction
            if self._visible(ins):
                k += 1
                text = _one_line(ins.loc.original)
                vertex = self.progress.vertex(self._label(stage, k, n, text))
                ctx = _Ctx(stage, step, self._label(stage, k, n, text), vertex)
                state = self._layer_step(state, ctx)
            else:
                state, cmd_set = self._meta_step(state, step, cmd_set)
        return state

    def _from_text(self, stage: Stage) -> str:
        if stage.base_stage is not None or stage.base == "scratch":
            return stage.base
        try:
            img = self._image(stage.base, stage.platform)
            return img.tags[0] if img.tags else stage.base
        except DockyardError:
            return stage.base

    def _base(self, stage: Stage) -> State:
        epoch = self.opts.source_date_epoch
        if stage.base_stage is not None:
            parent = self.states[stage.base_stage]
            if not parent.config.get("OnBuild"):
                return parent.copy()
            st = parent.copy(step_key(parent.key, "FROM stage: triggers consumed"))
            st.config.pop("OnBuild")  # they run in this stage, they are not inherited
            return st
        plat = stage.platform
        if stage.base == "scratch":
            os_, _, rest = plat.partition("/")
            arch, _, variant = rest.partition("/")
            return State(root_key("scratch", "", plat, epoch), os=os_, architecture=arch,
                         variant=variant or None)  # fmt: skip
        return self.image_state(stage.base, plat)

    def image_state(self, name: str, plat: str) -> State:
        """The state of image `name` (a stage's base, or a `--from` image)."""
        epoch = self.opts.source_date_epoch
        img = self._image(name, plat)
        cfg = dict(img.config.config)
        cfg.pop("OnBuild", None)  # triggers run in this build, they are not inherited
        return State(
            root_key("image", str(img.id), plat, epoch),
            config=cfg,
            diff_ids=[str(d) for d in img.config.diff_ids],
            layers=[
                {"mediaType": x.media_type, "digest": str(x.digest), "size": x.size}
                for x in img.manifest.layers
            ],
            history=[h.to_dict() for h in img.config.history],
            os=img.config.os,
            architecture=img.config.architecture,
            variant=img.config.variant,
        )

    # -- steps ----------------------------------------------------------------------------

    def _now(self) -> str:
        from dockyard.units import rfc3339

        epoch = self.opts.source_date_epoch
        return rfc3339(float(epoch) if epoch is not None else time.time())

    def _history(self, state: State, created_by: str, empty: bool) -> None:
        h: dict[str, Any] = {
            "created": self._now(),
            "created_by": created_by,
            "comment": "buildkit.dockerfile.v0",
        }
        if empty:
            h["empty_layer"] = True
        state.history.append(h)

    def _meta_step(self, state: State, step: Step, cmd_set: bool) -> tuple[State, bool]:
        ins = step.instruction
        # ENTRYPOINT's effect depends on whether this stage set CMD: a stage FROM another
        # starts with the same key as that stage's end, but with no CMD of its own
        inputs = [f"cmd_set={cmd_set}"] if isinstance(ins, Entrypoint) else []
        key = step_key(state.key, ins, args=step.args, inputs=inputs)
        hit = self.cache.get(key)
        new = hit or state.copy(key)
        if hit is None:
            md.apply_meta(new.config, ins, cmd_set)
            if isinstance(ins, Maintainer):
                new.config.setdefault("Author", ins.name)
            self._history(new, md.created_by(ins, new.config), True)
            self.cache.put(new)
        return new, cmd_set or isinstance(ins, Cmd)

    def _layer_step(self, state: State, ctx: _Ctx) -> State:
        from dockyard.build import executor_steps as xs

        ins = ctx.step.instruction
        try:
            inputs = xs.inputs(self, state, ins)
            key = step_key(state.key, ins, args=ctx.step.args, inputs=inputs)
            hit = self.cache.get(key)
            if hit is not None and self._usable(hit, len(state.layers)):
                self.stats.cached += 1
                self.progress.cached(ctx.vertex)
                return hit
            if self.cache_only:
                raise CacheMiss(ctx.name)
            new = state.copy(key)
            if isinstance(ins, Run):
                xs.run(self, new, ins, ctx)
            elif isinstance(ins, Copy):
                xs.copy(self, new, ins, ctx)
            else:
                assert isinstance(ins, Workdir)
                xs.workdir(self, new, ins, ctx)
        except BuildError as e:
            self.progress.error(ctx.vertex, e.message)
            e.step, e.file, e.line = ctx.name, ins.loc.file, ins.loc.line
            raise
        except DockyardError as e:
            self.progress.error(ctx.vertex, e.message)
            raise BuildError(e.message, ctx.name, ins.loc.file, ins.loc.line) from e
        self.stats.executed += 1
        self.cache.put(new)
        self.progress.done(ctx.vertex)
        return new

    def _usable(self, state: State, known: int) -> bool:
        """A cache hit is used only if the blobs and snapshots of the layers it adds (beyond
        the `known` ones its parent state already had) are still there."""
        content = self.engine.content
        snaps = self.engine.snapshots
        chain = state.chain
        return all(content.has(x["digest"]) for x in state.layers[known:]) and all(
            snaps.has(c) for c in chain[known:]
        )

    # -- rootfs and layers ----------------------------------------------------------------

    def step_dir(self) -> Path:
        assert self._work is not None
        return Path(tempfile.mkdtemp(prefix="step-", dir=self._work))

    @contextlib.contextmanager
    def mounted(self, state: State, d: Path) -> Iterator[tuple[Path, Path]]:
        """(rootfs, upper): the state's layers under a fresh upper dir, mounted at d/merged.
        With no layers, the upper dir itself is the rootfs."""
        from dockyard.linux import fsmount

        upper = d / "upper"
        upper.mkdir(mode=0o755)
        chain = state.chain
        if not chain:
            yield upper, upper
            return
        work = d / "work"
        work.mkdir(mode=0o700)
        merged = d / "merged"
        merged.mkdir(mode=0o755)
        for m in self.engine.snapshots.mounts(chain, upper, work):
            # volatile: no syncfs of the whole upper filesystem at unmount (the upper dir
            # becomes a layer right away; snapshots are not fsync'ed either)
            opts = (*m.options, "volatile") if m.type == "overlay" else m.options
            fsmount.mount(m.type, m.source, str(merged), opts, m.cwd)
        try:
            yield merged, upper
        finally:
            unmount_all(str(merged))

    @contextlib.contextmanager
    def mounted_ro(self, state: State, d: Path) -> Iterator[Path]:
        """The state's rootfs, read-only, at d/src (for COPY --from)."""
        from dockyard.linux import fsmount

        target = d / "src"
        target.mkdir(mode=0o755)
        chain = state.chain
        if not chain:
            yield target
            return
        for m in self.engine.snapshots.mounts(chain, None, None):
            fsmount.mount(m.type, m.source, str(target), m.options, m.cwd)
        try:
            yield target
        finally:
            unmount_all(str(target))

    def commit(self, state: State, upper: Path, created_by: str) -> None:
        """Turn `upper` into the state's next layer (or an empty-layer history entry)."""
        from dockyard.layer.create import write_layer
        from dockyard.snapshot.chain import chain_ids

        if not any(os.scandir(upper)):
            self._history(state, created_by, True)
            return
        content = self.engine.content
        with content.writer() as w:
            try:
                res = write_layer(
                    upper,
                    w,  # type: ignore[arg-type]
                    from_overlay_upper=True,
                    source_date_epoch=self.opts.source_date_epoch,
                    compression="plain",
                )
                digest = w.commit()
            except BaseException:
                w.abort()
                raise
        self.engine.meta.lease_add(self.lease, "blob", str(digest))
        parent = state.top
        diff_id = str(res.diff_id)
        chain = str(chain_ids([*state.diff_ids, diff_id])[-1])
        self.engine.meta.lease_add(self.lease, "snapshot", chain)
        if not self.engine.snapshots.has(chain):
            self.engine.snapshots.create(chain, parent, lambda fs: _adopt(upper, fs))
        state.diff_ids.append(diff_id)
        state.layers.append({"mediaType": OCI_LAYER, "digest": str(digest),
                             "size": res.size_uncompressed})  # fmt: skip
        self._history(state, created_by, False)

    # -- export ---------------------------------------------------------------------------

    def _export(self, state: State, refs: list[Any]) -> Image:
        from dockyard.digest import Digest
        from dockyard.oci import mediatypes
        from dockyard.oci.types import Descriptor, History, ImageConfig, Manifest

        v = self.progress.vertex("exporting to image")
        self.progress.note(v, "exporting layers done")
        cfg = {k: val for k, val in state.config.items() if val is not None}
        if self.opts.labels:
            cfg["Labels"] = {**(cfg.get("Labels") or {}), **self.opts.labels}
        epoch = self.opts.source_date_epoch
        created = state.history[-1]["created"] if state.history else self._now()
        if epoch is not None:
            created = self._now()
        config = ImageConfig(
            diff_ids=tuple(Digest(d) for d in state.diff_ids),
            architecture=state.architecture,
            os=state.os,
            variant=state.variant,
            created=created,
            author=cfg.pop("Author", None),
            config=cfg,
            history=tuple(History.from_dict(h) for h in state.history),
        )
        content = self.engine.content
        meta = self.engine.meta
        cfg_bytes = config.to_json()
        cfg_digest = content.put_bytes(cfg_bytes)
        meta.lease_add(self.lease, "blob", str(cfg_digest))
        manifest = Manifest(
            config=Descriptor(mediatypes.OCI_CONFIG, cfg_digest, len(cfg_bytes)),
            layers=tuple(
                Descriptor(x["mediaType"], Digest(x["digest"]), int(x["size"]))
                for x in state.layers
            ),
        )
        man_bytes = manifest.to_json()
        man_digest = content.put_bytes(man_bytes)
        meta.lease_add(self.lease, "blob", str(man_digest))
        self.progress.note(v, f"writing image {cfg_digest} done")
        image = self.engine.images.register(str(man_digest), refs)
        for r in refs:
            self.progress.note(v, f"naming to {r.string()} done")
        self.progress.done(v)
        return image


def _one_line(text: str) -> str:
    first = text.split("\n", 1)[0]
    return " ".join(first.replace("\\\n", " ").split())


def _adopt(upper: Path, fs: Path) -> None:
    """Snapshot `apply`: the upper dir becomes the snapshot's content (a rename, no copy)."""
    os.rmdir(fs)
    os.rename(upper, fs)
    os.chmod(fs, 0o755)
