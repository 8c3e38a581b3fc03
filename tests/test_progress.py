"""facelab.progress: the Callback protocol, History and track()."""

import math

import pytest
import torch

from facelab.progress import Callback, History, Progress, track


class Recorder:
    def __init__(self):
        self.calls = []
        self.ended = 0

    def on_step(self, step, losses, state=None):
        self.calls.append((step, dict(losses), state))

    def on_end(self):
        self.ended += 1


def test_protocol_is_runtime_checkable():
    assert isinstance(Recorder(), Callback)
    assert isinstance(History(), Callback)
    assert not isinstance(object(), Callback)


def test_track_forwards_steps_losses_and_state():
    rec = Recorder()
    progress = track(range(5), callback=rec)
    assert isinstance(progress, Progress)
    seen = []
    for i in progress:
        seen.append(i)
        progress.log({"a": torch.tensor(float(i)), "b": 2 * i}, state={"k": i})
    assert seen == [0, 1, 2, 3, 4]
    assert [c[0] for c in rec.calls] == [0, 1, 2, 3, 4]
    assert rec.calls[3][1] == {"a": 3.0, "b": 6.0}
    assert all(type(v) is float for c in rec.calls for v in c[1].values())
    assert rec.calls[2][2] == {"k": 2}
    assert rec.ended == 1


def test_track_steps_follow_items_of_any_iterable():
    rec = Recorder()
    progress = track(iter("xyz"), callback=rec)
    for _ in progress:
        progress.log({"l": 1.0})
    assert [c[0] for c in rec.calls] == [0, 1, 2]


def test_on_end_runs_once_on_break_and_on_exception():
    rec = Recorder()
    progress = track(range(10), callback=rec)
    for i in progress:
        progress.log({"l": i})
        if i == 2:
            break
    del progress
    assert rec.ended == 1
    assert len(rec.calls) == 3

    rec2 = Recorder()
    with pytest.raises(RuntimeError, match="boom"):
        for i in track(range(10), callback=rec2):
            if i == 1:
                raise RuntimeError("boom")
    assert rec2.ended == 1


def test_several_callbacks():
    a, b = Recorder(), History()
    progress = track(range(3), callback=[a, b])
    for _ in progress:
        progress.log({"l": 0.5})
    assert len(a.calls) == 3 and len(b) == 3 and b.ended


def test_tqdm_bar_without_callback(capsys):
    progress = track(range(4), desc="fit", leave=True)
    assert progress.bar is not None
    for i in progress:
        progress.log({"loss": 1.0 / (i + 1)})
    assert progress.bar is None  # closed at the end
    err = capsys.readouterr().err
    assert "fit" in err and "4/4" in err


def test_history_aligns_terms_with_nan():
    h = History()
    h.on_step(0, {"a": 1.0})
    h.on_step(1, {"a": 2.0, "b": 5.0})
    h.on_step(2, {"b": 6.0})
    assert h.steps == [0, 1, 2]
    assert h.losses["a"][:2] == [1.0, 2.0] and math.isnan(h.losses["a"][2])
    assert math.isnan(h.losses["b"][0]) and h.losses["b"][1:] == [5.0, 6.0]


def test_bad_input():
    with pytest.raises(TypeError, match="callback"):
        track(range(3), callback=object())
    with pytest.raises(TypeError, match="callback"):
        track(range(3), callback=[History(), 3])
    with pytest.raises(ValueError, match="total"):
        track(range(3), total=-1)
    progress = track(range(3), callback=History())
    with pytest.raises(TypeError, match="losses"):
        progress.log([1.0])
    with pytest.raises(TypeError, match=r"losses\['x'\]"):
        progress.log({"x": "high"})
    with pytest.raises(TypeError, match=r"losses\['v'\]"):
        progress.log({"v": torch.ones(3)})
