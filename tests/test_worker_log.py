"""The worker's log on the terminal `make run` shows: RQ's registry cleaning, every
MAINTENANCE_SECONDS, is left out; what the worker does with jobs still shows."""
import logging

from quiz.extensions import get_queue


def test_the_worker_logs_jobs_but_not_its_registry_cleaning(app, run_jobs, caplog):
    get_queue("default").enqueue("builtins.len", "abc")
    with caplog.at_level(logging.INFO, logger="rq.worker"):
        run_jobs()
    said = [record.getMessage() for record in caplog.records if record.name == "rq.worker"]
    assert any("Job OK" in line or "default: builtins.len" in line for line in said), said
    assert not any("cleaning" in line and "registries" in line for line in said), said
