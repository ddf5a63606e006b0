"""Beyond one machine: exports on a Dask cluster, shards, and the JIT cache's place.

The cluster is a LocalCluster of two worker processes on 127.0.0.1 (loopback only).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import PROJECT, real_files
from pydicom.uid import generate_uid

from ustui.cli import main
from ustui.core import dask_jobs, jit_cache, shards
from ustui.core.export import ExportFailed, ExportRequest, run_export
from ustui.core.inputs import discover
from ustui.core.profiles import get_profile, user_file
from ustui.core.synthetic import Patient, Study, sector_frame, us_dataset

distributed = pytest.importorskip("distributed")
cloudpickle = pytest.importorskip("cloudpickle")

NO_TEXT = """
[no-text]
description = "Basic Profile, pixels not read for text (keeps these tests light)"
[no-text.deid]
options = ["retain-modified-dates"]
[no-text.export]
pixel_text = "off"
"""


def _cluster() -> Any:
    return distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    )


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with _cluster() as running:
        yield running


@pytest.fixture
def no_text() -> str:
    user_file().parent.mkdir(parents=True, exist_ok=True)
    user_file().write_text(NO_TEXT)
    return "no-text"


def write_exam(folder: Path, *, patients: int = 3, per_patient: int = 2) -> None:
    """``patients`` patients with a native still and a JPEG cine each, and a non-DICOM file."""
    folder.mkdir(parents=True, exist_ok=True)
    for p in range(patients):
        study = Study(patient=Patient(name=f"QZPAT{p}^X", id=f"QZID-{p}"), date=f"2024010{p + 1}")
        series = generate_uid()
        for n in range(per_patient):
            frames = [sector_frame(96, 128, seed=10 * p + n, t=t) for t in range(1 + 3 * (n % 2))]
            ds = us_dataset(
                frames,
                study=study,
                series_uid=series,
                series_number=1,
                instance_number=n + 1,
                jpeg_quality=90 if n % 2 else None,
            )
            ds.save_as(folder / f"p{p}-{n}.dcm", enforce_file_format=True)
    (folder / "notes.dcm").write_bytes(b"not dicom at all")


def _export(*args: str) -> tuple[int, dict[str, Any]]:
    """Run ``ustui export ARGS --json``; exit code and summary."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["export", *args, "--no-require-tags", "--json"])
    return code, json.loads(buffer.getvalue())


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _leftovers(folder: Path) -> list[str]:
    """Temporary files or part folders an export may have left beside its output."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_scheduler_export_is_byte_identical_to_a_local_one(tmp_path: Path, cluster: Any) -> None:
    """Default profile (text read on the workers too): same ZIP bytes, same skip reasons."""
    write_exam(tmp_path / "exam")
    local, remote = tmp_path / "local.zip", tmp_path / "remote.zip"
    code_local, summary_local = _export(str(tmp_path / "exam"), "--out", str(local))
    code_remote, summary_remote = _export(
        str(tmp_path / "exam"), "--out", str(remote), "--scheduler", cluster.scheduler_address
    )
    assert code_local == code_remote == 0  # the walked non-DICOM file is ignored by both
    assert summary_remote["skipped"] == summary_local["skipped"] == []
    assert summary_remote["ignored"] == summary_local["ignored"]
    assert len(summary_remote["ignored"]) == 1
    assert len(summary_remote["exported"]) == 6
    assert remote.read_bytes() == local.read_bytes()
    assert _leftovers(tmp_path) == []


def test_relative_input_paths_reach_the_workers(
    tmp_path: Path, cluster: Any, no_text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_exam(tmp_path / "exam", patients=1)
    monkeypatch.chdir(tmp_path)
    code, summary = _export(
        "exam", "--out", "out.zip", "--profile", no_text, "--scheduler", cluster.scheduler_address
    )
    assert code == 0 and len(summary["exported"]) == 2
    assert summary["exported"][0]["input"].startswith("exam/")  # labels stay as given


class KillOnce(distributed.WorkerPlugin):  # type: ignore[misc]
    """Kills its worker process when the first ustui task starts executing (once per
    marker file), as a machine lost mid-export would."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        if finish == "executing" and "ustui-export" in str(key):
            try:
                fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return
            os.close(fd)
            os.kill(os.getpid(), signal.SIGKILL)


def test_a_worker_killed_mid_export_loses_no_file(tmp_path: Path, no_text: str) -> None:
    write_exam(tmp_path / "exam", patients=3, per_patient=2)
    local, remote = tmp_path / "local.zip", tmp_path / "remote.zip"
    marker = tmp_path / "killed"
    assert _export(str(tmp_path / "exam"), "--out", str(local), "--profile", no_text)[0] == 0
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests
    try:
        with _cluster() as fresh, distributed.Client(fresh) as client:
            client.register_plugin(KillOnce(str(marker)))
            code, summary = _export(
                str(tmp_path / "exam"),
                "--out",
                str(remote),
                "--profile",
                no_text,
                "--scheduler",
                fresh.scheduler_address,
            )
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert marker.exists()  # a worker was killed while running a file
    assert code == 0 and len(summary["exported"]) == 6
    assert remote.read_bytes() == local.read_bytes()
    assert _leftovers(tmp_path) == []


def test_cancel_on_a_cluster_leaves_nothing(tmp_path: Path, cluster: Any, no_text: str) -> None:
    write_exam(tmp_path / "exam")
    out = tmp_path / "out.zip"
    seen: list[int] = []
    request = ExportRequest(
        inputs=discover([str(tmp_path / "exam")]).files,
        profile=get_profile(no_text),
        out=out,
        require_tags=False,
        scheduler=cluster.scheduler_address,
    )
    with pytest.raises(ExportFailed, match="cancelled"):
        run_export(request, progress=lambda p: seen.append(p.done), cancelled=lambda: len(seen) > 1)
    assert seen[:2] == [0, 1]
    assert not out.exists()
    assert _leftovers(tmp_path) == []


def test_unreachable_scheduler_is_one_line_and_writes_nothing(
    tmp_path: Path,
    no_text: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_exam(tmp_path / "exam", patients=1)
    monkeypatch.setattr(dask_jobs, "CONNECT_TIMEOUT", "1s")
    out = tmp_path / "out.zip"
    code = main(
        [
            "export",
            str(tmp_path / "exam"),
            "--out",
            str(out),
            "--profile",
            no_text,
            "--no-require-tags",
            "--scheduler",
            "tcp://127.0.0.1:9",
        ]
    )
    assert code == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("ustui: ") and "cannot reach the Dask scheduler" in err[-1]
    assert not out.exists() and _leftovers(tmp_path) == []


def test_a_local_export_imports_no_dask(tmp_path: Path) -> None:
    """Without --scheduler, distributed (which opens sockets) is never imported."""
    write_exam(tmp_path / "exam", patients=1, per_patient=1)
    code = (
        "import sys; from ustui.cli import main\n"
        f"rc = main(['export', {str(tmp_path / 'exam')!r}, '--out', {str(tmp_path / 'o.zip')!r},"
        " '--no-require-tags', '--workers', '1', '--shard-size', '1GB'])\n"
        "print(rc, 'distributed' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.stdout.split()[-2:] == ["0", "False"], run.stderr


def _shard_export(exam: Path, out: Path, size: str, *extra: str) -> tuple[int, dict[str, Any]]:
    return _export(str(exam), "--out", str(out), "--shard-size", size, *extra)


def test_shards_keep_subjects_whole_with_a_combined_manifest(tmp_path: Path, no_text: str) -> None:
    write_exam(tmp_path / "exam", patients=4, per_patient=2)
    whole = tmp_path / "whole.zip"
    assert _export(str(tmp_path / "exam"), "--out", str(whole), "--profile", no_text)[0] == 0
    everything = _members(whole)
    biggest_subject = max(
        sum(len(b) for n, b in everything.items() if n.startswith(s))
        for s in {n.split("/")[0] for n in everything if "/" in n}
    )
    # Room for two subjects per shard, not three.
    size = str(int(biggest_subject * 2.2))
    code, summary = _shard_export(
        tmp_path / "exam", tmp_path / "out.zip", size, "--profile", no_text
    )
    assert code == 0
    names = [Path(p).name for p in summary["shards"]]
    assert names == ["out-0001.zip", "out-0002.zip"]
    assert summary["out"] == str(tmp_path / "out.zip")
    seen_subjects: dict[str, str] = {}
    found: dict[str, bytes] = {}
    for name in names:
        members = _members(tmp_path / name)
        own = json.loads(members.pop("manifest.json"))
        members.pop("manifest.csv")
        assert sorted(f["path"] for f in own["files"]) == sorted(members)  # its own manifest
        for path in members:
            subject = path.split("/")[0]
            assert seen_subjects.setdefault(subject, name) == name  # never in two shards
        found.update(members)
    assert len(set(seen_subjects.values())) == 2 and len(seen_subjects) == 4
    # Every file, with the same name and bytes as in the unsharded export.
    assert found == {n: b for n, b in everything.items() if not n.startswith("manifest.")}
    combined = json.loads((tmp_path / "out-manifest.json").read_text())
    assert {f["path"]: f["shard"] for f in combined["files"]} == {
        p: seen_subjects[p.split("/")[0]] for p in found
    }
    for shard in combined["shards"]:
        data = (tmp_path / shard["file"]).read_bytes()
        assert shard["bytes"] == len(data)
        assert shard["sha256"] == hashlib.sha256(data).hexdigest()
    lines = (tmp_path / "out-manifest.csv").read_text().splitlines()
    assert lines[0].startswith("shard,path,subject,")
    assert sorted(line.split(",")[:2] for line in lines[1:]) == sorted(
        [seen_subjects[p.split("/")[0]], p] for p in found
    )
    assert _leftovers(tmp_path) == []


def test_a_subject_bigger_than_the_shard_size_gets_a_shard_of_its_own(
    tmp_path: Path, no_text: str
) -> None:
    write_exam(tmp_path / "exam", patients=2, per_patient=2)
    code, summary = _shard_export(
        tmp_path / "exam", tmp_path / "o.zip", "1KB", "--profile", no_text
    )
    assert code == 0 and len(summary["shards"]) == 2
    for shard in summary["shards"]:
        subjects = {n.split("/")[0] for n in _members(Path(shard)) if "/" in n}
        assert len(subjects) == 1


def test_a_failed_sharded_export_leaves_no_shard(
    tmp_path: Path, no_text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_exam(tmp_path / "exam", patients=3, per_patient=1)

    def full_disk(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shards, "stage_combined_manifest", full_disk)
    code = main(
        [
            "export",
            str(tmp_path / "exam"),
            "--out",
            str(tmp_path / "o.zip"),
            "--profile",
            no_text,
            "--no-require-tags",
            "--shard-size",
            "1KB",
        ]
    )
    assert code == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exam"]


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("2GB", 2 * 10**9),
        ("500MB", 500 * 10**6),
        ("1.5G", 1_500_000_000),
        ("4GiB", 4 * 2**30),
        ("64 kib", 65536),
        ("123", 123),
    ],
)
def test_shard_sizes_parse(text: str, size: int) -> None:
    assert shards.parse_size(text) == size


@pytest.mark.parametrize("text", ["", "GB", "2 XB", "-1GB", "0", "2GiBB"])
def test_bad_shard_sizes_are_usage_errors(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "x", "--out", "o.zip", "--shard-size", text]) == 2
    assert "--shard-size" in capsys.readouterr().err


def test_real_files_on_a_cluster_match_a_local_sharded_export(
    tmp_path: Path, cluster: Any, no_text: str
) -> None:
    files = real_files()
    if not files:
        pytest.skip("the real files are absent")
    paths = [str(f) for f in files]
    local, remote = tmp_path / "local.zip", tmp_path / "remote.zip"
    code_l, summary_l = _export(*paths, "--out", str(local), "--profile", no_text)
    code_r, summary_r = _export(
        *paths,
        "--out",
        str(remote),
        "--profile",
        no_text,
        "--scheduler",
        cluster.scheduler_address,
        "--shard-size",
        "20MB",
    )
    assert code_l == code_r and summary_r["skipped"] == summary_l["skipped"]
    assert (
        len(summary_r["exported"]) == len(summary_l["exported"]) >= 28
    )  # copies of one instance are exported once
    found: dict[str, bytes] = {}
    for shard in summary_r["shards"]:
        members = _members(Path(shard))
        del members["manifest.json"], members["manifest.csv"]
        found.update(members)
    whole = _members(local)
    assert found == {n: b for n, b in whole.items() if not n.startswith("manifest.")}


# The JIT cache


def test_numba_cache_stays_beside_a_writable_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    assert jit_cache.choose(tmp_path) is None
    assert "NUMBA_CACHE_DIR" not in os.environ
    assert list(tmp_path.iterdir()) == []  # the probe cleaned up after itself


def test_a_numba_cache_dir_the_user_set_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NUMBA_CACHE_DIR", "/somewhere/mine")
    monkeypatch.setattr(jit_cache, "_writable", lambda folder: False)
    assert jit_cache.choose(tmp_path) is None
    assert os.environ["NUMBA_CACHE_DIR"] == "/somewhere/mine"


def test_numba_cache_goes_to_the_user_cache_when_the_package_is_read_only(
    tmp_path: Path,
) -> None:
    """A read-only copy of ustui, run without root's override of file modes: the kernels
    compile into $XDG_CACHE_HOME/ustui/numba, and a second process loads them from there."""
    pytest.importorskip("numba")
    if os.geteuid() == 0 and not shutil.which("setpriv"):
        pytest.skip("running as root and setpriv is missing: read-only cannot be tested")
    package = tmp_path / "site" / "ustui"
    shutil.copytree(PROJECT / "ustui", package, ignore=shutil.ignore_patterns("__pycache__"))
    for folder in [package, *[p for p in package.rglob("*") if p.is_dir()]]:
        folder.chmod(0o555)
    cache = tmp_path / "cache"
    code = (
        "import os\n"
        "from ustui.core import jpeg_kernels\n"
        "k = jpeg_kernels.load()\n"
        "print(k.compiled, os.environ.get('NUMBA_CACHE_DIR'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env |= {"PYTHONPATH": str(tmp_path / "site"), "XDG_CACHE_HOME": str(cache)}
    command = [sys.executable, "-c", code]
    if os.geteuid() == 0:
        caps = "-dac_override,-dac_read_search"
        command = ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}", *command]
    try:
        for _ in range(2):  # cold, then warm from the cache
            run = subprocess.run(command, env=env, capture_output=True, text=True, cwd=tmp_path)
            assert run.stdout.split() == ["True", str(cache / "ustui" / "numba")], run.stderr
    finally:
        for folder in [package, *[p for p in package.rglob("*") if p.is_dir()]]:
            folder.chmod(0o755)
    assert not list(package.rglob("*.nbi"))
    assert {p.name.split("-")[0] for p in (cache / "ustui" / "numba").rglob("*.nbi")} == {
        "jpeg_kernels.decode",
        "jpeg_kernels.walk",
        "jpeg_kernels.write",
    }


def test_the_missing_numba_notice_is_one_line(tmp_path: Path) -> None:
    write_exam(tmp_path / "exam", patients=1, per_patient=1)
    code = (
        "import sys; sys.modules['numba'] = None\n"
        "import importlib.util; find = importlib.util.find_spec\n"
        "importlib.util.find_spec = lambda name, *a: None if name == 'numba' else find(name, *a)\n"
        "from ustui.cli import main\n"
        f"main(['export', {str(tmp_path / 'exam')!r}, '--out', {str(tmp_path / 'o.zip')!r},"
        " '--no-require-tags', '--workers', '1'])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    notices = [line for line in run.stderr.splitlines() if "numba" in line]
    assert notices == [f"ustui: {jit_cache.MISSING_NOTICE}"]
    assert (tmp_path / "o.zip").exists()


def test_ctrl_c_during_a_cluster_export_leaves_nothing_partial(
    tmp_path: Path, cluster: Any
) -> None:
    write_exam(tmp_path / "exam", patients=6, per_patient=2)
    out = tmp_path / "out" / "OUT.zip"
    out.parent.mkdir()
    command = [
        sys.executable,
        "-m",
        "ustui",
        "export",
        str(tmp_path / "exam"),
        "--out",
        str(out),
        "--no-require-tags",
        "--scheduler",
        cluster.scheduler_address,
    ]
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    child = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not any(out.parent.glob(".OUT.zip.parts-*/*.dcm")):  # the first part is done
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the export did not start"
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGINT)
        stdout, stderr = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    assert child.returncode == 128 + signal.SIGINT, stderr
    assert stderr.strip().splitlines() == ["ustui: interrupted"]
    assert "Traceback" not in stdout + stderr
    assert list(out.parent.iterdir()) == []
