"""`dockyard-runtime`: the native runtime behind runc's command line.

Responsibility: parse runc's global options (--root, --log, --log-format text|json, --debug) and
commands (create, start, state, kill, delete, run, exec, pause, resume, ps, list, spec), call
`NativeRuntime`, print what runc prints, and exit like runc: 0 on success, 1 on any error (the
message on stderr and in --log), and the container's exit code for `run` and `exec`.

Invariant: startup cost is part of the benchmark, so this module imports only `os` and `sys` at
load time; a hand-written option parser replaces argparse; commands import what they need.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (startup time)
if TYPE_CHECKING:
    from typing import Any


if TYPE_CHECKING:
    from dockyard.runtime.native import NativeRuntime

USAGE = """usage: dockyard-runtime [--root DIR] [--log FILE] [--log-format text|json] [--debug]
                        COMMAND ...
commands:
  create [--bundle B] [--pid-file F] [--console-socket S] ID
  start ID | state ID | pause ID | resume ID
  kill [--all] ID [SIGNAL]
  delete [--force] ID
  run [--detach] [--bundle B] [--pid-file F] [--console-socket S] ID
  exec [--process F | ARGS...] [--detach] [--tty] [--env K=V] [--cwd D] [--user U[:G]]
       [--pid-file F] [--console-socket S] ID [ARGS...]
  ps [--format table|json] ID
  list [--format table|json] [--quiet]
  spec [--bundle B]"""

# option name -> (canonical name, takes a value)
_FLAGS: dict[str, tuple[str, bool]] = {
    "--bundle": ("bundle", True), "-b": ("bundle", True),
    "--pid-file": ("pid_file", True),
    "--console-socket": ("console_socket", True),
    "--detach": ("detach", False), "-d": ("detach", False),
    "--force": ("force", False), "-f": ("force", False),
    "--all": ("all", False), "-a": ("all", False),
    "--format": ("format", True),
    "--quiet": ("quiet", False), "-q": ("quiet", False),
    "--process": ("process", True), "-p": ("process", True),
    "--tty": ("tty", False), "-t": ("tty", False),
    "--env": ("env", True), "-e": ("env", True),
    "--cwd": ("cwd", True),
    "--user": ("user", True), "-u": ("user", True),
    "--no-pivot": ("no_pivot", False),
    "--no-new-keyring": ("no_new_keyring", False),
    "--no-subreaper": ("no_subreaper", False),
    "--preserve-fds": ("preserve_fds", True),
    "--rootless": ("rootless", True),
}  # fmt: skip
_GLOBAL = {"--root": "root", "--log": "log", "--log-format": "log_format", "--criu": "criu"}


class Usage(Exception):
    pass


def parse(argv: list[str]) -> tuple[dict[str, Any], str, dict[str, Any], list[str]]:
    """(global options, command, command options, positional args)."""
    glob: dict[str, Any] = {"root": "/run/dockyard-runtime", "log": None, "log_format": "text"}
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        name, _, val = argv[i].partition("=")
        if name in ("--debug", "--systemd-cgroup"):
            glob[name[2:].replace("-", "_")] = True
        elif name in ("--version", "-v"):
            return glob, "version", {}, []
        elif name in ("--help", "-h"):
            return glob, "help", {}, []
        elif name in _GLOBAL:
            if not val:
                i += 1
                if i >= len(argv):
                    raise Usage(f"{name} needs a value")
                val = argv[i]
            glob[_GLOBAL[name]] = val
        else:
            raise Usage(f"unknown global option {name}")
        i += 1
    if i >= len(argv):
        raise Usage("no command given")
    command = argv[i]
    opts, args = _parse_command(argv[i + 1 :], stop_at_args=command == "exec")
    return glob, command, opts, args


def _parse_command(argv: list[str], stop_at_args: bool) -> tuple[dict[str, Any], list[str]]:
    opts: dict[str, Any] = {"env": []}
    args: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            args.extend(argv[i + 1 :])
            break
        if arg.startswith("-") and len(arg) > 1 and not (stop_at_args and args):
            name, eq, val = arg.partition("=")
            if name not in _FLAGS:
                raise Usage(f"unknown option {name}")
            key, takes = _FLAGS[name]
            if takes:
                if not eq:
                    i += 1
                    if i >= len(argv):
                        raise Usage(f"{name} needs a value")
                    val = argv[i]
                if key == "env":
                    opts["env"].append(val)
                else:
                    opts[key] = val
            else:
                opts[key] = True
        else:
            args.append(arg)
        i += 1
    return opts, args


def parse_signal(text: str) -> int:
    import signal

    if text.isdigit():
        return int(text)
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(getattr(signal, name))
    except AttributeError:
        raise Usage(f"unknown signal {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit code. As the console script (`argv` None) it exits at once
    after flushing stdout and stderr: interpreter teardown would add ~3 ms to every `run`."""
    code = _main(sys.argv[1:] if argv is None else argv)
    if argv is None:
        _exit_now(code)
    return code


def _exit_now(code: int) -> None:
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return  # the normal exit path reports it
    os._exit(code)


def _main(argv: list[str]) -> int:
    glob: dict[str, Any] = {"log": None, "log_format": "text"}
    try:
        glob, command, opts, args = parse(argv)
        return _dispatch(glob, command, opts, args)
    except Usage as e:
        _log(glob, f"{e}\n{USAGE}")
        return 1
    except Exception as e:
        from dockyard.errors import DockyardError

        if not isinstance(e, (DockyardError, OSError, ValueError)):
            raise
        _log(glob, str(e))
        trace = getattr(e, "child_traceback", "")
        if glob.get("debug") and trace:
            print(f"container-side traceback:\n{trace}", file=sys.stderr)
        return 1


def _log(glob: dict[str, Any], message: str) -> None:
    print(f"dockyard-runtime: {message}", file=sys.stderr)
    if not glob.get("log"):
        return
    import time

    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if glob.get("log_format") == "json":
        from dockyard.runtime import jsonio

        line = jsonio.dumps({"level": "error", "msg": message, "time": when})
    else:
        line = f'time="{when}" level=error msg="{message}"'
    with open(glob["log"], "a") as f:
        f.write(line + "\n")


def _one_id(args: list[str], command: str) -> str:
    if len(args) != 1:
        raise Usage(f"{command} needs exactly one container id")
    return args[0]


def _dispatch(glob: dict[str, Any], command: str, opts: dict[str, Any], args: list[str]) -> int:
    if command == "help":
        print(USAGE)
        return 0
    if command == "version":
        from dockyard import __version__

        print(f"dockyard-runtime version {__version__}\nspec: 1.0.2")
        return 0
    if command == "spec":
        return _spec(opts)
    if command not in ("run", "create", "exec"):
        return _dispatch_runtime(glob, command, opts, args)
    from dockyard.linux import attach_warmup  # native starts it where a cgroup.procs write waits

    try:
        return _dispatch_runtime(glob, command, opts, args)
    finally:
        attach_warmup.finish()  # normally done already, once the process was in its cgroup


def _dispatch_runtime(
    glob: dict[str, Any], command: str, opts: dict[str, Any], args: list[str]
) -> int:
    from dockyard.runtime.native import NativeRuntime

    rt = NativeRuntime(glob["root"])
    handler = _COMMANDS.get(command)
    if handler is None:
        raise Usage(f"unknown command {command!r}")
    code: int = handler(rt, opts, args)
    return code


def _create(rt: NativeRuntime, opts: dict[str, Any], args: list[str]) -> int:
    rt.create(
        _one_id(args, "create"),
        opts.get("bundle", "."),
        console_socket=opts.get("console_socket"),
        pid_file=opts.get("pid_file"),
    )
    return 0


def _run(rt: NativeRuntime, opts: dict[str, Any], args: list[str]) -> int:
    code: int = rt.run(
        _one_id(args, "run"),
        opts.get("bundle", "."),
        console_socket=opts.get("console_socket"),
        pid_file=opts.get("pid_file"),
        detach=bool(opts.get("detach")),
    )
    return code


def _simple(method: str) -> Any:
    def handler(rt: NativeRuntime, opts: dict[str, Any], args: list[str]) -> int:
        getattr(rt, method)(_one_id(args, method))

        return 0

    return handler


def _state(rt: NativeRuntime, opts: dict[str, Any], args: list[str]) -> int:
    from dockyard.runtime import jsonio

    print(jsonio.dumps_pretty(rt.state(_one_id(args, "state"))), end="")
    return 0


def _kill(rt: NativeRuntime, opts: dict[str, Any], args: list[str]) -> int:
    if not 1 <= len(args) <= 2:
        raise Usage("kill needs a container id and an optional signal")
    sig = parse_signal(args[1]) if len(args) == 2 else 15
    rt.kill(args[0], sig, all=bool(opts.get("all")))
    return 0


def _delete(rt: NativeRuntime, opts: dict[str, Any], args: list[str]) -> int:
    for cid in args or [_one_id(args, "delete")]:
        rt.delete(cid, force=bool(opts.get("force")))
    return 0


def _ps(rt: NativeRuntime, opts: dict[str, Any], args: list[str]) -> int:
    pids = rt.ps(_one_id(args, "ps"))
    if opts.get("format") == "json":
        from dockyard.runtime import jsonio

        print(jsonio.dumps(pids))
        return 0
    print("PID CMD")
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        print(f"{pid} {cmd}")
    return 0


def _list(rt: NativeRuntime, opts: dict[str, Any], args: list[str]) -> int:
    states = rt.list()
    if opts.get("quiet"):
        for s in states:
            print(s["id"])
    elif opts.get("format") == "json":
        from dockyard.runtime import jsonio

        print(jsonio.dumps(states))
    else:
        print(f"{'ID':<20} {'PID':<8} {'STATUS':<10} BUNDLE")
        for s in states:
            print(f"{s['id']:<20} {s.get('pid', 0):<8} {s['status']:<10} {s['bundle']}")
    return 0


def _exec(rt: NativeRuntime, opts: dict[str, Any], args: list[str]) -> int:
    if not args:
        raise Usage("exec needs a container id")
    cid, rest = args[0], args[1:]
    proc = _exec_process(rt, cid, opts, rest)
    code = rt.exec(
        cid,
        proc,
        console_socket=opts.get("console_socket"),
        pid_file=opts.get("pid_file"),
        detach=bool(opts.get("detach")),
    )
    return 0 if opts.get("detach") else code


def _exec_process(
    rt: NativeRuntime, cid: str, opts: dict[str, Any], rest: list[str]
) -> dict[str, Any]:
    """The process.json given with -p, or the container's process with args and overrides."""
    from dockyard.runtime import jsonio

    if opts.get("process"):
        with open(opts["process"]) as f:
            proc: dict[str, Any] = jsonio.loads(f.read())
        return proc
    if not rest:
        raise Usage("exec needs a command to run (or --process FILE)")
    proc = dict(rt.config(cid)["process"])
    proc["args"] = rest
    proc["terminal"] = bool(opts.get("tty"))
    if opts["env"]:
        proc["env"] = list(proc.get("env") or []) + opts["env"]
    if opts.get("cwd"):
        proc["cwd"] = opts["cwd"]
    if opts.get("user"):
        uid, _, gid = opts["user"].partition(":")
        proc["user"] = {"uid": int(uid), "gid": int(gid or 0)}
    return proc


def _spec(opts: dict[str, Any]) -> int:
    from dockyard.runtime import jsonio
    from dockyard.runtime.spec import default_spec

    path = os.path.join(opts.get("bundle", "."), "config.json")
    if os.path.exists(path):
        print(f"dockyard-runtime: File {path} exists. Remove it first", file=sys.stderr)
        return 1
    with open(path, "w") as f:
        f.write(jsonio.dumps_pretty(default_spec()))
    return 0


_COMMANDS: dict[str, Any] = {
    "create": _create,
    "start": _simple("start"),
    "pause": _simple("pause"),
    "resume": _simple("resume"),
    "state": _state,
    "kill": _kill,
    "delete": _delete,
    "run": _run,
    "exec": _exec,
    "ps": _ps,
    "list": _list,
}

if __name__ == "__main__":
    sys.exit(main())
