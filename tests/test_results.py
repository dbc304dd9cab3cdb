"""The result.json contract: statuses written as their plain values, the tolerant read, job-dir paths."""

from __future__ import annotations

import json

import pytest

from src.results import (
    COMPLETED,
    RESULT_FILE,
    STATUSES,
    JobDir,
    Status,
    empty_result,
    read_result,
    read_result_or_none,
    write_result,
)


def test_a_status_is_written_and_read_back_as_its_plain_value(tmp_path):
    write_result(tmp_path, {**empty_result(attn="ema"), "status": Status.COMPLETED})
    raw = json.loads((tmp_path / RESULT_FILE).read_text())
    assert raw["status"] == "completed" and type(raw["status"]) is str
    assert read_result(tmp_path / RESULT_FILE)["status"] == COMPLETED


def test_only_the_statuses_a_job_writes_are_valid_in_a_file(tmp_path):
    assert Status.MISSING not in STATUSES and Status.CORRUPT not in STATUSES  # the aggregator's, never written
    (tmp_path / RESULT_FILE).write_text(json.dumps({"status": "missing"}))
    with pytest.raises(ValueError, match="unknown status 'missing'"):
        read_result(tmp_path / RESULT_FILE)


@pytest.mark.parametrize("content", [None, "{not json", "[1, 2]"])
def test_a_dir_without_a_usable_result_reads_as_none(tmp_path, content):
    if content is not None:
        (tmp_path / RESULT_FILE).write_text(content)
    assert read_result_or_none(tmp_path) is None


def test_job_dir_paths_and_number(tmp_path):
    job = JobDir(tmp_path / "12_attn=ema")
    assert job.last == tmp_path / "12_attn=ema" / "train" / "weights" / "last.pt"
    assert job.best.parent == job.last.parent and job.results_csv.parent == job.train
    assert job.number == 12 and JobDir(tmp_path / "custom").number > 10**6
