"""Parameter sweeps: grid order, executors, atomic results files, resuming."""
import csv
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from noiseprop.studies.sweeps import SweepError, dask_executor, grid_points, sweep

GRID = {"n": [1, 2, 3], "scale": [0.5, 2.0]}


def power(n, scale):
    """Module level, so that worker processes can unpickle it."""
    return {"power": scale**n, "label": f"{n}x{scale}"}


def expected_rows(grid=GRID):
    return [{**p, **power(**p)} for p in grid_points(grid)]


class CountingFunction:
    """Counts its calls; raises ``error`` at the point ``fail_at`` and at
    every call after it (as a machine going down would)."""

    def __init__(self, fail_at=None, error=RuntimeError):
        self.calls = []
        self.fail_at = fail_at
        self.failed = False
        self.error = error
        self.lock = threading.Lock()

    def __call__(self, **point):
        with self.lock:
            self.calls.append(point)
            self.failed = self.failed or point == self.fail_at
        if self.failed:
            raise self.error("interrupted")
        return power(**point)


def test_grid_points_product_and_list():
    assert grid_points({"a": [1, 2], "b": [0.1]}) == [{"a": 1, "b": 0.1}, {"a": 2, "b": 0.1}]
    assert grid_points([{"a": 1}, {"a": "x"}]) == [{"a": 1}, {"a": "x"}]


@pytest.mark.parametrize(
    "grid, message",
    [
        ({"a": []}, "'a' has no values"),
        ({"a": 3}, "must be a sequence"),
        ([{"a": 1}, {"b": 2}], "point 1 has parameters"),
        ({"a": [[1, 2]]}, "must be scalars"),
        ([], "no points"),
    ],
)
def test_bad_grids_are_named(grid, message):
    with pytest.raises(ValueError, match=message):
        grid_points(grid)


def test_threads_give_rows_in_grid_order():
    with ThreadPoolExecutor(2) as pool:
        rows = sweep(power, GRID, executor=pool, progress=False)
    assert rows == expected_rows()


def test_default_executor_is_local_processes(tmp_path):
    rows = sweep(power, GRID, path=tmp_path / "r.json", progress=False, max_workers=2)
    assert rows == expected_rows()
    assert json.loads((tmp_path / "r.json").read_text())["rows"] == expected_rows()


def test_unpicklable_function_is_refused_for_processes():
    with pytest.raises(ValueError, match="cannot be sent to worker processes"):
        sweep(lambda n, scale: n, GRID, progress=False)


@pytest.mark.parametrize("suffix", [".csv", ".json"])
@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_interrupted_sweep_resumes_without_recomputing(tmp_path, suffix, error):
    path = tmp_path / f"results{suffix}"
    points = grid_points(GRID)
    first = CountingFunction(fail_at=points[3], error=error)
    raised = SweepError if error is RuntimeError else KeyboardInterrupt
    with ThreadPoolExecutor(1) as pool, pytest.raises(raised):
        sweep(first, GRID, executor=pool, path=path, progress=False, checkpoint_interval=0)
    assert first.calls[:4] == points[:4]  # one worker: in order up to the failing point

    second = CountingFunction()
    with ThreadPoolExecutor(1) as pool:
        rows = sweep(second, GRID, executor=pool, path=path, progress=False)
    assert second.calls == points[3:]  # only the points not finished before
    assert rows == expected_rows()

    third = CountingFunction()
    assert sweep(third, GRID, executor=ThreadPoolExecutor(1), path=path, progress=False) == rows
    assert third.calls == []


def test_csv_file_holds_every_point_in_grid_order(tmp_path):
    path = tmp_path / "r.csv"
    with ThreadPoolExecutor(2) as pool:
        sweep(power, GRID, executor=pool, path=path, progress=False)
    with open(path, newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [list(row) for row in table[:1]] == [["n", "scale", "power", "label"]]
    assert [(int(r["n"]), float(r["scale"]), float(r["power"])) for r in table] == [
        (r["n"], r["scale"], r["power"]) for r in expected_rows()
    ]


def test_extending_the_grid_keeps_old_rows_and_computes_new_ones(tmp_path):
    path = tmp_path / "r.csv"
    with ThreadPoolExecutor(1) as pool:
        sweep(power, {"n": [1], "scale": [0.5, 2.0]}, executor=pool, path=path, progress=False)
        counting = CountingFunction()
        rows = sweep(counting, {"n": [2], "scale": [0.5]}, executor=pool, path=path, progress=False)
    assert counting.calls == [{"n": 2, "scale": 0.5}]
    assert rows == expected_rows({"n": [2], "scale": [0.5]})
    assert len(path.read_text().splitlines()) == 1 + 3  # header + the two old rows + the new one


def test_existing_file_is_not_overwritten_unless_asked(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("precious")
    with pytest.raises(FileExistsError):
        sweep(power, GRID, executor=ThreadPoolExecutor(1), path=path, resume=False, progress=False)
    assert path.read_text() == "precious"
    with pytest.raises(ValueError, match="cannot resume"):
        sweep(power, GRID, executor=ThreadPoolExecutor(1), path=path, progress=False)
    counting = CountingFunction()
    sweep(counting, GRID, executor=ThreadPoolExecutor(1), path=path, resume=False, overwrite=True, progress=False)
    assert len(counting.calls) == 6


def test_bad_results_are_reported_with_their_point():
    with pytest.raises(SweepError, match="'n': 1") as info:
        sweep(lambda n, scale: {"n": 0}, GRID, executor=ThreadPoolExecutor(1), progress=False)
    assert info.value.point == {"n": 1, "scale": 0.5}
    with pytest.raises(ValueError, match="must end in one of"):
        sweep(power, GRID, executor=ThreadPoolExecutor(1), path="r.txt", progress=False)


def test_dask_local_cluster_executor(tmp_path):
    with dask_executor(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as pool:
        rows = sweep(power, GRID, executor=pool, path=tmp_path / "r.csv", progress=False)
    assert rows == expected_rows()


def test_dask_executor_connects_to_a_scheduler_address(tmp_path):
    # the multi-machine path: a scheduler reached by its TCP address (here on this
    # machine) and a worker in its own process, to which the function is sent pickled
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        assert cluster.scheduler_address.startswith("tcp://")
        with dask_executor(cluster.scheduler_address) as pool:
            rows = sweep(power, GRID, executor=pool, progress=False)
    assert rows == expected_rows()
    with pytest.raises(ValueError, match="not both"):
        with dask_executor("tcp://127.0.0.1:1", n_workers=1):
            pass


def test_progress_bar_counts_resumed_and_computed_points(tmp_path, capsys):
    path = tmp_path / "r.csv"
    with ThreadPoolExecutor(1) as pool:
        sweep(power, {"n": [1], "scale": [0.5, 2.0]}, executor=pool, path=path, progress=False)
        sweep(power, GRID, executor=pool, path=path)
    bar = capsys.readouterr().err
    assert "sweep:" in bar and "2/6" in bar and "6/6" in bar  # starts at the 2 resumed points


def test_missing_results_folder_is_refused_before_computing(tmp_path):
    counting = CountingFunction()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        sweep(counting, GRID, executor=ThreadPoolExecutor(1), path=tmp_path / "no" / "r.csv", progress=False)
    assert counting.calls == []
