"""Sweeps that lose nothing (issue 14, defects 5-8 and the JSON of 9)."""
import fcntl  # noqa: F401  (imported before a child drops its privileges: it cannot read the stdlib then)
import json
import math
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from noiseprop.studies.sweeps import journal_path, sweep

ROOT = Path(__file__).resolve().parents[1]


def describe(a):
    """The type and value of ``a``: different for every colliding point of the issue."""
    return {"type": type(a).__name__, "text": repr(a)}


COLLIDING = [{"a": v} for v in (1, 1.0, "1", "1.0", None, "", True)]


@pytest.mark.parametrize("suffix", [None, ".csv", ".json", ".jsonl"])
def test_points_are_keyed_by_type_and_value(tmp_path, suffix):
    path = None if suffix is None else tmp_path / f"r{suffix}"
    with ThreadPoolExecutor(2) as pool:
        rows = sweep(describe, COLLIDING, executor=pool, path=path, progress=False)
        assert rows == [{**p, **describe(p["a"])} for p in COLLIDING]
        if path is not None:  # and resumed from the file: each point its own result
            assert sweep(describe, COLLIDING, executor=pool, path=path, progress=False) == rows


RESULTS = {"yes": True, "no": False, "two": "2", "empty": "", "none": None, "one": 1.0, "n": 3,
           "nan": math.nan, "inf": -math.inf}


def results(k):
    return RESULTS


def same(a, b):
    """Equal with types, NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("suffix", [".csv", ".json", ".jsonl"])
def test_resumed_results_keep_their_types(tmp_path, suffix):
    path = tmp_path / f"r{suffix}"
    with ThreadPoolExecutor(1) as pool:
        first = sweep(results, {"k": [0, 1]}, executor=pool, path=path, progress=False)
        calls = []
        resumed = sweep(lambda k: calls.append(k), {"k": [0, 1]}, executor=pool, path=path, progress=False)
    assert calls == []
    for before, after in zip(first, resumed):
        assert list(before) == list(after)
        assert all(same(before[name], after[name]) for name in before), (before, after)
    assert not resumed[0]["no"]  # a resumed False is still falsy


def test_json_view_and_journal_are_standard_json(tmp_path):
    path = tmp_path / "r.json"
    sweep(results, {"k": [0]}, executor=ThreadPoolExecutor(1), path=path, progress=False)

    def refuse(constant):
        raise AssertionError(f"non-standard JSON constant {constant}")

    view = json.loads(path.read_text(), parse_constant=refuse)
    assert view["rows"][0]["nan"] is None and view["rows"][0]["inf"] is None
    lines = [json.loads(line, parse_constant=refuse) for line in journal_path(path).read_text().splitlines()]
    assert lines[0] == {"noiseprop_sweep": 1, "parameters": ["k"]}
    assert lines[1]["types"]["nan"] == "float:nan" and lines[1]["types"]["two"] == "str"


WRITER = """
    import sys, time
    from concurrent.futures import ThreadPoolExecutor
    from noiseprop.studies.sweeps import sweep

    def square(x, writer):
        time.sleep(0.002)
        return {"square": x * x}

    start, name = int(sys.argv[2]), sys.argv[3]
    with ThreadPoolExecutor(3) as pool:
        rows = sweep(square, {"x": list(range(start, start + 45)), "writer": [name]}, executor=pool,
                     path=sys.argv[1], progress=False, checkpoint_interval=0)
    print(len(rows))
"""


def test_two_concurrent_writers_keep_every_row(tmp_path):
    path = tmp_path / "diff.csv"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    writers = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(WRITER), str(path), str(start), name],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for start, name in ((0, "a"), (1000, "b"))]
    for writer in writers:
        out, err = writer.communicate(timeout=120)
        assert writer.returncode == 0 and out.strip() == "45", err
    table = path.read_text().splitlines()
    assert table[0] == "x,writer,square" and len(table) == 1 + 90
    assert {tuple(line.split(",")[:2]) for line in table[1:]} == (
        {(str(x), "a") for x in range(45)} | {(str(x), "b") for x in range(1000, 1045)})
    calls = []
    rows = sweep(lambda x, writer: calls.append(x), {"x": [0, 1044], "writer": ["a", "b"]},
                 executor=ThreadPoolExecutor(1), path=path, progress=False)
    assert [r["square"] for r in rows if r["writer"] == ("a" if r["x"] == 0 else "b")] == [0, 1044**2]
    assert sorted(calls) == [0, 1044]  # (0, "b") and (1044, "a") were never computed


class Counting:
    def __init__(self):
        self.calls = []
        self.lock = threading.Lock()

    def __call__(self, x):
        with self.lock:
            self.calls.append(x)
        return {"y": 2 * x}


def test_read_only_folder_is_refused_before_computing():
    """A folder that this user cannot write.  Root may write anywhere, so as root the
    check runs in a forked child that has dropped to the unprivileged user 'nobody'
    (uid 65534) before sweeping into a root-owned 0755 folder; as another user, the
    folder is made read-only with chmod."""
    folder = Path(tempfile.mkdtemp(prefix="noiseprop-ro-"))
    try:
        os.chmod(folder, 0o755 if os.geteuid() == 0 else 0o555)
        counting = Counting()

        def attempt() -> str:
            try:
                sweep(counting, {"x": [1, 2, 3]}, executor=ThreadPoolExecutor(1), path=folder / "r.csv",
                      progress=False)
            except OSError as err:
                return f"refused {type(err).__name__}: {err} calls={counting.calls}"
            return f"not refused calls={counting.calls}"

        if os.geteuid() == 0:
            read, write = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: drop privileges, try, report, exit without clean-up
                try:
                    os.setgid(65534)
                    os.setuid(65534)
                    os.write(write, attempt().encode())
                finally:
                    os._exit(0)
            os.close(write)
            os.waitpid(pid, 0)
            outcome = os.read(read, 10000).decode()
            os.close(read)
        else:
            outcome = attempt()
        assert outcome.startswith("refused PermissionError") and "cannot write sweep results" in outcome, outcome
        assert outcome.endswith("calls=[]")
        assert os.listdir(folder) == []
    finally:
        os.chmod(folder, 0o755)
        for name in os.listdir(folder):
            os.unlink(folder / name)
        os.rmdir(folder)


def test_results_are_returned_when_saving_fails(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()

    def lose_the_folder(x):
        if x == 0:  # the results folder disappears after the sweep started
            for name in os.listdir(folder):
                os.unlink(folder / name)
            os.rmdir(folder)
        return {"y": 2 * x}

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = sweep(lose_the_folder, {"x": [0, 1, 2]}, executor=ThreadPoolExecutor(1), path=folder / "r.csv",
                     progress=False)
    assert rows == [{"x": x, "y": 2 * x} for x in (0, 1, 2)]
    assert any("could not save results" in str(w.message) for w in caught)


def test_a_line_cut_short_by_a_crash_is_skipped(tmp_path):
    path = tmp_path / "r.jsonl"
    sweep(Counting(), {"x": [1, 2]}, executor=ThreadPoolExecutor(1), path=path, progress=False)
    with open(path, "a") as handle:
        handle.write('{"point": {"x": 3}, "res')  # kill -9 in the middle of an append
    counting = Counting()
    rows = sweep(counting, {"x": [1, 2, 3]}, executor=ThreadPoolExecutor(1), path=path, progress=False)
    assert counting.calls == [3] and rows[2] == {"x": 3, "y": 6}
    again = Counting()
    with pytest.warns(RuntimeWarning, match="skipped 1 damaged line"):
        assert sweep(again, {"x": [1, 2, 3]}, executor=ThreadPoolExecutor(1), path=path, progress=False) == rows
    assert again.calls == []


def test_view_without_journal_and_unsafe_targets_are_refused(tmp_path):
    (tmp_path / "old.csv").write_text("x,y\n1,2\n")
    with pytest.raises(ValueError, match="journal .* is missing"):
        sweep(Counting(), {"x": [1]}, executor=ThreadPoolExecutor(1), path=tmp_path / "old.csv", progress=False)
    (tmp_path / "link.jsonl").symlink_to(tmp_path / "elsewhere.jsonl")
    with pytest.raises(ValueError, match="symbolic link"):
        sweep(Counting(), {"x": [1]}, executor=ThreadPoolExecutor(1), path=tmp_path / "link.jsonl", progress=False)
    assert not (tmp_path / "elsewhere.jsonl").exists()
