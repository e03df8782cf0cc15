"""`dockyard build` / `dockyard image build`: build an image from a Dockerfile and a context.

Translates Docker's flags into `BuildOptions`, opens the context (directory, tar or `-`), runs
the `Builder`, and prints BuildKit's plain progress on stderr (`-q`: only the image ID on
stdout). A failed build prints BuildKit's error block — the step, the Dockerfile lines around
it, `ERROR: failed to solve: ...` — and exits 1, tagging nothing.
"""

from __future__ import annotations

import argparse
import os
import sys

from dockyard.cli import Context

HELP = "Build an image from a Dockerfile"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("-t", "--tag", action="append", default=[], help="Name and optionally a tag")
    p.add_argument("-f", "--file", help="Name of the Dockerfile (default: PATH/Dockerfile)")
    p.add_argument("--build-arg", action="append", default=[], help="Set build-time variables")
    p.add_argument("--target", help="Set the target build stage to build")
    p.add_argument("--no-cache", action="store_true", help="Do not use cache when building")
    p.add_argument("--pull", action="store_true", help="Always attempt to pull a newer image")
    p.add_argument("--label", action="append", default=[], help="Set metadata for an image")
    p.add_argument("--network", default="default", help="Networking mode for RUN instructions")
    p.add_argument("--platform", help="Set target platform for build")
    p.add_argument("--iidfile", help="Write the image ID to the file")
    p.add_argument("-q", "--quiet", action="store_true", help="Print the image ID on success")
    p.add_argument(
        "--progress", default="auto", choices=["auto", "plain", "tty", "quiet", "rawjson"]
    )
    p.add_argument("--secret", action="append", default=[], help="Secret: id=mysecret,src=path")
    p.add_argument(
        "--ssh", action="append", default=[], help="SSH agent socket or keys: default|ID[=PATH,...]"
    )
    p.add_argument("context", metavar="PATH | URL | -")


def _pairs(values: list[str], what: str, env_fallback: bool) -> dict[str, str]:
    from dockyard.errors import InvalidArgument

    out: dict[str, str] = {}
    for v in values:
        k, eq, val = v.partition("=")
        if not k:
            raise InvalidArgument(f"invalid {what} {v!r}: expected KEY=VALUE")
        if eq:
            out[k] = val
        elif env_fallback:
            if k in os.environ:
                out[k] = os.environ[k]
        else:
            out[k] = ""
    return out


def _secrets(values: list[str]) -> dict[str, str]:
    from dockyard.errors import InvalidArgument

    out: dict[str, str] = {}
    for v in values:
        fields = dict(f.partition("=")[::2] for f in v.split(","))
        sid = fields.get("id", "")
        src = fields.get("src") or fields.get("source") or ""
        if not src and fields.get("env"):
            raise InvalidArgument(f"--secret {v}: env= secrets are not supported; use src=")
        if not sid:
            sid = os.path.basename(src)
        if not sid or not src:
            raise InvalidArgument(f"invalid secret {v!r}: expected id=ID,src=PATH")
        out[sid] = src
    return out


def _epoch(build_args: dict[str, str]) -> int | None:
    from dockyard.errors import InvalidArgument

    text = build_args.get("SOURCE_DATE_EPOCH") or os.environ.get("SOURCE_DATE_EPOCH")
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise InvalidArgument(f"invalid SOURCE_DATE_EPOCH {text!r}") from None


def run(args: argparse.Namespace, ctx: Context) -> int:
    from dockyard.build.context import open_build
    from dockyard.build.executor import Builder, BuildOptions
    from dockyard.build.output import Plain, Progress, Quiet
    from dockyard.build.parser import DockerfileError
    from dockyard.build.sshagent import parse_ssh
    from dockyard.errors import DockyardError

    quiet = args.quiet or args.progress == "quiet"
    progress: Progress = Quiet() if quiet else Plain(ctx.err)
    build_args = _pairs(args.build_arg, "build-arg", True)
    opts = BuildOptions(
        tags=list(args.tag),
        build_args=build_args,
        target=args.target,
        no_cache=args.no_cache,
        pull=args.pull,
        labels=_pairs(args.label, "label", False),
        network=args.network,
        platform=args.platform,
        secrets=_secrets(args.secret),
        ssh=parse_ssh(args.ssh),
        source_date_epoch=_epoch(build_args),
    )
    engine = ctx.engine
    dockerfile = ""
    try:
        inp = open_build(
            args.context,
            args.file,
            stdin=sys.stdin.buffer,
            work_dir=engine.root / "build" / "contexts",
            state_dir=engine.root / "build",
        )
        dockerfile = inp.dockerfile
        opts.dockerfile_name = inp.dockerfile_name
        with inp.context:
            image = Builder(engine, inp.context, opts, progress).build(dockerfile)
    except DockerfileError as e:
        ctx.err.write(f"ERROR: failed to solve: {e}\n")
        return 1
    except DockyardError as e:
        _report(ctx, e, dockerfile)
        return 1
    if args.iidfile:
        with open(args.iidfile, "w", encoding="utf-8") as f:
            f.write(str(image.id))
    if quiet:
        ctx.out.write(f"{image.id}\n")
    return 0


def _report(ctx: Context, e: Exception, dockerfile: str) -> None:
    from dockyard.build.executor import BuildError

    if isinstance(e, BuildError) and e.step:
        ctx.err.write(f"------\n > {e.step}:\n------\n")
        if e.line and dockerfile:
            lines = dockerfile.splitlines()
            ctx.err.write(f"{e.file}:{e.line}\n--------------------\n")
            for n in range(max(1, e.line - 2), min(len(lines), e.line + 2) + 1):
                mark = ">>> " if n == e.line else ""
                ctx.err.write(f" {n:>3} | {mark}{lines[n - 1]}\n")
            ctx.err.write("--------------------\n")
    ctx.err.write(f"ERROR: failed to solve: {e}\n")
