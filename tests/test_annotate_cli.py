"""`facelab synth-clips` and `facelab annotate`: outputs, manifest, resume, failures, Dask."""

from __future__ import annotations

import json

import numpy as np
import pytest

from facelab.cli import main


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    assert main(["synth-clips", "-o", str(folder), "--count", "2", "--frames", "5",
                 "--views", "2", "--size", "32"]) == 0
    bad = folder / "broken.npz"
    bad.write_bytes(b"not a zip file")
    return sorted(folder.glob("clip_*.npz")), bad


def _annotate(inputs, out, *extra):
    return main(["annotate", *map(str, inputs), "-o", str(out), "--iterations", "2", *extra])


def test_annotate_resumes_and_records_failures(clips, tmp_path, capsys):
    good, bad = clips
    out = tmp_path / "ann"
    assert _annotate([*good, bad], out, "--meshes", "--share-identity") == 1  # one failed
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["clips"]["broken"]["status"] == "failed"
    assert "\n" not in manifest["clips"]["broken"]["error"]
    for p in good:
        entry = manifest["clips"][p.stem]
        assert entry["status"] == "done" and entry["metrics"]["nme"] > 0
        with np.load(out / f"{p.stem}.npz") as z:
            assert z["params"].shape[:2] == (5, 2) and z["verts"].dtype == np.float16
            _, jaw, n_id, _, _ = z["layout"]  # sizes: rotation, jaw, id, exp, camera
            beta = z["params"][..., 3 + jaw: 3 + jaw + n_id]
            assert np.array_equal(beta[0, 0], beta[-1, -1])
            assert {"cvd", "msi_l", "mpve"} <= set(json.loads(str(z["metrics_json"])))
    assert not (out / "broken.npz").exists()
    err = capsys.readouterr().err
    assert "[3/3]" in err and "failed" in err
    stamp = (out / f"{good[0].stem}.npz").stat().st_mtime_ns
    assert _annotate(good, out) == 0  # a re-run skips finished clips
    assert (out / f"{good[0].stem}.npz").stat().st_mtime_ns == stamp
    assert "2 already done, 0 to run" in capsys.readouterr().err


def test_annotate_errors_are_one_line(clips, tmp_path, capsys):
    good, _ = clips
    assert _annotate([tmp_path / "missing.npz"], tmp_path / "o") == 1
    assert "no such file" in capsys.readouterr().err
    assert _annotate(good, tmp_path / "o", "--scheduler", "nowhere") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--scheduler" in err[0]


def test_annotate_on_a_dask_local_cluster(clips, tmp_path, capsys):
    distributed = pytest.importorskip("distributed")
    good, bad = clips
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  protocol="tcp://", host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1")
        status = _annotate([*good, bad], tmp_path / "dask", "--scheduler", address)
    assert status == 1
    manifest = json.loads((tmp_path / "dask" / "manifest.json").read_text())
    assert [manifest["clips"][p.stem]["status"] for p in good] == ["done", "done"]
    assert manifest["clips"]["broken"]["status"] == "failed"
    assert "2 done, 1 failed" in capsys.readouterr().err


@pytest.mark.slow
def test_annotate_on_a_local_process_pool(clips, tmp_path, capsys):
    good, _ = clips
    assert _annotate(good, tmp_path / "pool", "--workers", "2") == 0
    manifest = json.loads((tmp_path / "pool" / "manifest.json").read_text())
    assert sorted(manifest["clips"]) == sorted(p.stem for p in good)
    assert "on 2 local worker(s)" in capsys.readouterr().err


@pytest.mark.slow
def test_annotate_survives_a_killed_dask_worker(clips, tmp_path, capsys):
    """A worker process killed while it executes a clip: the nanny restarts it (a new
    process), the scheduler reruns the task, and every clip still ends up done and readable
    (the manifest shows no failure)."""
    import os
    import signal
    import threading

    distributed = pytest.importorskip("distributed")
    good, _ = clips
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        client = distributed.Client(cluster)
        (pid,) = client.run(os.getpid).values()
        killed = threading.Event()

        def kill_when_busy():
            for _ in range(600):  # up to 60 s: wait until a clip is executing, then kill
                busy = client.run(lambda dask_worker: len(dask_worker.state.executing))
                if any(busy.values()):
                    os.kill(pid, signal.SIGKILL)
                    killed.set()
                    return
                threading.Event().wait(0.1)

        thread = threading.Thread(target=kill_when_busy, daemon=True)
        thread.start()
        status = _annotate(good, tmp_path / "killed", "--scheduler", cluster.scheduler_address)
        thread.join(timeout=5)
        (new_pid,) = client.run(os.getpid).values()
        client.close()
    assert killed.is_set() and new_pid != pid
    assert status == 0
    manifest = json.loads((tmp_path / "killed" / "manifest.json").read_text())
    assert all(manifest["clips"][p.stem]["status"] == "done" for p in good)
    for p in good:
        with np.load(tmp_path / "killed" / f"{p.stem}.npz") as z:
            assert z["params"].shape[:2] == (5, 2)


@pytest.mark.slow
def test_annotate_a_real_video_through_mediapipe(tmp_path):
    """A 4-frame GIF made from the sample photo (a slow pan): frames read with imageio,
    landmarks detected with MediaPipe, one view annotated."""
    from facelab.landmarks import mediapipe_available

    if not mediapipe_available():
        pytest.skip("MediaPipe (the landmarks extra) is not installed")
    iio = pytest.importorskip("imageio.v3")
    from facelab.data.photos import sample_photo

    photo = (np.asarray(sample_photo("astronaut")) * 255).astype(np.uint8)
    frames = np.stack([photo[:, 4 * k: photo.shape[1] - 12 + 4 * k] for k in range(4)])
    video = tmp_path / "pan.gif"
    iio.imwrite(video, frames)
    out = tmp_path / "ann"
    assert main(["annotate", str(video), "-o", str(out), "--iterations", "2"]) == 0
    with np.load(out / "pan.npz") as z:
        assert z["params"].shape[:2] == (4, 1)
        metrics = json.loads(str(z["metrics_json"]))
    assert "mpve" not in metrics and "cvd" not in metrics and metrics["nme"] < 20.0
