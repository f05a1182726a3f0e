"""MODELTEL_RANKS: which ranks of a parallel job send over OTLP; every rank keeps its JSONL."""

from __future__ import annotations

import pytest

from modeltel._internal.config import ConfigError, ConfigWarning, load_settings

OTLP = {
    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
}


def _known(signal: str) -> frozenset[str]:
    return frozenset({"otlp", "jsonl", "console", "none"})


def exporters(ranks: str | None, rank: int, local_rank: int, size: int) -> tuple[str, ...]:
    env = {
        **OTLP,
        "OTEL_LOGS_EXPORTER": "otlp",
        "OMPI_COMM_WORLD_RANK": str(rank),
        "OMPI_COMM_WORLD_LOCAL_RANK": str(local_rank),
        "OMPI_COMM_WORLD_SIZE": str(size),
    }
    if ranks is not None:
        env["MODELTEL_RANKS"] = ranks
    settings = load_settings(env, strict=True, check_dirs=False, known_exporters=_known)
    assert settings.metrics_exporters == settings.traces_exporters
    assert settings.logs_exporters == settings.traces_exporters
    return settings.traces_exporters


def senders(ranks: str | None, size: int, per_node: int) -> list[int]:
    return [r for r in range(size) if "otlp" in exporters(ranks, r, r % per_node, size)]


def test_all_is_the_default() -> None:
    assert senders(None, 4, 2) == [0, 1, 2, 3]
    assert senders("all", 4, 2) == [0, 1, 2, 3]


def test_first_keeps_rank_zero_only_and_everyone_keeps_jsonl() -> None:
    assert senders("first", 4, 2) == [0]
    assert exporters("first", 3, 1, 4) == ("jsonl",)


def test_first_per_node_keeps_local_rank_zero() -> None:
    assert senders("first-per-node", 8, 4) == [0, 4]


def test_sample_spreads_n_ranks_evenly_from_zero() -> None:
    assert senders("sample:4", 64, 8) == [0, 16, 32, 48]
    assert senders("sample:3", 10, 10) == [0, 3, 6]
    assert senders("sample:1", 5, 5) == [0]
    assert senders("sample:9", 4, 4) == [0, 1, 2, 3]


def test_a_process_with_no_launcher_is_rank_zero_of_one() -> None:
    settings = load_settings(
        {**OTLP, "MODELTEL_RANKS": "first"}, strict=True, check_dirs=False, known_exporters=_known
    )
    assert settings.traces_exporters == ("otlp", "jsonl") and settings.ranks == "first"


@pytest.mark.parametrize("value", ["some", "sample:0", "sample:x", "sample:", "first,all"])
def test_a_bad_value_is_an_error_naming_variable_and_value(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({"MODELTEL_RANKS": value}, strict=True, check_dirs=False, known_exporters=_known)
    (problem,) = info.value.problems
    assert problem.variable == "MODELTEL_RANKS" and problem.value == value
    assert "first-per-node" in problem.reason
    with pytest.warns(ConfigWarning, match="MODELTEL_RANKS"):
        lenient = load_settings({"MODELTEL_RANKS": value}, check_dirs=False, known_exporters=_known)
    assert lenient.ranks == "all"
