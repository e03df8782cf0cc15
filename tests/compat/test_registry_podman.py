"""Registry interop with real peers: what `dockyard push` writes to a real registry is read by
skopeo and pulled and RUN by podman; what `skopeo copy` pushes (Docker schema 2, OCI, a
multi-platform index) is pulled by `dockyard pull` and inspected.

The registry (docker-registry on 127.0.0.1), skopeo's private /var/lib and podman's isolated
storage, run root, cgroup parent and config are the fixtures of test_registry_distribution and
test_archive_peers; everything they start or create is removed even when a test fails.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.digest import Digest
from dockyard.oci import mediatypes
from tests.cli import dy
from tests.compat.test_archive_peers import Run, busybox, podman  # noqa: F401 - fixtures
from tests.compat.test_registry_distribution import run_registry, skopeo, write_oci_layout
from tests.images import extract_archive
from tests.unit.test_registry_stub import make_image

pytestmark = [pytest.mark.peer, pytest.mark.root]


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    with run_registry(tmp_path / "registry") as addr:
        yield addr


@pytest.fixture(autouse=True)
def podman_private_var_lib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run podman with a private, empty /var/lib: even with --root, it writes its blob-info
    cache under /var/lib/containers/cache. (Autouse, so the `podman` fixture's environment
    already finds this wrapper first in PATH.)"""
    real = shutil.which("podman")
    unshare = shutil.which("unshare")
    if real is None or unshare is None:
        return
    wrapper = tmp_path / "bin" / "podman"
    wrapper.parent.mkdir()
    wrapper.write_text(
        "#!/bin/sh\n"
        f"exec {unshare} -m --propagation private sh -c "
        f'\'mount -t tmpfs none /var/lib && exec {real} "$@"\' sh "$@"\n'
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper.parent}:{os.environ.get('PATH', '')}")


@pytest.fixture(autouse=True)
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "docker-config"
    d.mkdir()
    (d / "config.json").write_text("{}\n")  # podman refuses a DOCKER_CONFIG without it
    monkeypatch.setenv("DOCKER_CONFIG", str(d))


def test_skopeo_and_podman_use_what_we_pushed(
    registry: str,
    busybox: tuple[Path, str],  # noqa: F811 - fixture
    podman: Run,  # noqa: F811 - fixture
    tmp_path: Path,
) -> None:
    root, iid = busybox
    ref = f"{registry}/dy/busybox:v1"
    dy(root, "tag", "busybox:latest", ref)
    out = dy(root, "push", ref).out
    digest = out.splitlines()[-1].split()[2]
    raw = json.loads(skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{ref}"))
    assert raw["mediaType"] == mediatypes.OCI_MANIFEST
    assert raw["config"]["digest"] == iid  # the same config: the image ID did not change
    assert [x["mediaType"] for x in raw["layers"]] == [mediatypes.OCI_LAYER_GZIP]
    info = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{ref}"))
    assert info["Digest"] == digest
    copy = tmp_path / "copy"
    skopeo("copy", "--src-tls-verify=false", f"docker://{ref}", f"oci:{copy}:v1")
    index = json.loads((copy / "index.json").read_text())
    assert index["manifests"][0]["digest"] == digest

    podman("pull", "--tls-verify=false", ref)
    assert podman("run", "--rm", ref, "echo", "ok").stdout == "ok\n"
    pinfo = json.loads(podman("image", "inspect", ref).stdout)[0]
    assert "sha256:" + pinfo["Id"] == iid
    assert pinfo["Digest"] == digest


@pytest.mark.parametrize("fmt", ["v2s2", "oci"])
def test_we_pull_what_skopeo_pushed(registry: str, tmp_path: Path, fmt: str) -> None:
    img = make_image(2, 50_000)
    write_oci_layout(tmp_path / "layout", {"v1": img})
    ref = f"{registry}/sk/{fmt}:v1"
    skopeo("copy", "--dest-tls-verify=false", "--format", fmt,
           f"oci:{tmp_path / 'layout'}:v1", f"docker://{ref}")  # fmt: skip
    remote = json.loads(dy(tmp_path / "r", "manifest", "inspect", ref).out)
    want = mediatypes.DOCKER_MANIFEST if fmt == "v2s2" else mediatypes.OCI_MANIFEST
    assert remote["mediaType"] == want
    out = dy(tmp_path / "r", "pull", ref).out
    digest = out.splitlines()[-3].removeprefix("Digest: ")
    assert digest == Digest.of(_raw(ref))
    info = json.loads(dy(tmp_path / "r", "inspect", ref).out)[0]
    config = json.loads(img.config)
    assert info["Id"] == Digest.of(img.config)
    assert info["RootFS"]["Layers"] == config["rootfs"]["diff_ids"]
    assert info["Config"]["Cmd"] == ["/bin/sh"]
    # and it pushes back unchanged (its layers are compressed already): same digest
    dy(tmp_path / "r", "tag", ref, f"{registry}/again/{fmt}:v1")
    back = dy(tmp_path / "r", "push", f"{registry}/again/{fmt}:v1").out
    assert back.splitlines()[-1] == f"v1: digest: {digest} size: {len(_raw(ref))}"


def _raw(ref: str) -> bytes:
    return skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{ref}").encode()


def test_we_pull_a_multi_platform_index_skopeo_pushed(registry: str, tmp_path: Path) -> None:
    amd, arm = make_image(1, 10_000, "amd64"), make_image(1, 10_000, "arm64")
    entries = [
        (amd, {"os": "linux", "architecture": "amd64"}),
        (arm, {"os": "linux", "architecture": "arm64", "variant": "v8"}),
    ]
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mediatypes.OCI_INDEX,
            "manifests": [
                {
                    "mediaType": mediatypes.OCI_MANIFEST,
                    "digest": i.digest,
                    "size": len(i.manifest),
                    "platform": p,
                }
                for i, p in entries
            ],
        }
    ).encode()
    write_oci_layout(tmp_path / "layout", {"a": amd, "b": arm}, index)
    ref = f"{registry}/sk/multi:v1"
    skopeo("copy", "--all", "--dest-tls-verify=false",
           f"oci:{tmp_path / 'layout'}:multi", f"docker://{ref}")  # fmt: skip
    doc = json.loads(dy(tmp_path / "r", "manifest", "inspect", ref).out)
    assert doc["mediaType"] == mediatypes.OCI_INDEX and len(doc["manifests"]) == 2
    out = dy(tmp_path / "r", "pull", ref).out
    assert f"Digest: {Digest.of(index)}" in out  # Docker shows the index digest
    info = json.loads(dy(tmp_path / "r", "inspect", ref).out)[0]
    assert (info["Architecture"], info["Id"]) == ("amd64", Digest.of(amd.config))
    by_index = f"{registry}/sk/multi@{Digest.of(index)}"
    assert by_index in info["RepoDigests"]
    assert "Status: Image is up to date" in dy(tmp_path / "r", "pull", by_index).out
    dy(tmp_path / "arm", "pull", "--platform", "linux/arm64", ref)
    info = json.loads(dy(tmp_path / "arm", "inspect", ref).out)[0]
    assert (info["Architecture"], info["Id"]) == ("arm64", Digest.of(arm.config))


@pytest.mark.root
@pytest.mark.parametrize("fmt", ["v2s2", "oci"])
def test_an_image_skopeo_pushed_runs_here(registry: str, tmp_path: Path, fmt: str) -> None:
    import tarfile

    from dockyard.engine import Engine
    from tests.images import busybox_image

    with Engine.open(tmp_path / "src") as e:
        busybox_image(e, "busybox:latest")
    dy(tmp_path / "src", "save", "-o", str(tmp_path / "bb.tar"), "busybox:latest")
    layout = tmp_path / "layout"
    with tarfile.open(tmp_path / "bb.tar") as tf:
        extract_archive(tf, layout)
    ref = f"{registry}/sk/runnable-{fmt}:v1"
    skopeo("copy", "--dest-tls-verify=false", "--format", fmt,
           f"oci:{layout}:latest", f"docker://{ref}")  # fmt: skip
    r = dy(tmp_path / "fresh", "run", "--rm", "--network", "none", ref, "echo", "ok")
    assert r.out == "ok\n"
