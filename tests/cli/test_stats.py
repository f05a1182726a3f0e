"""``modeltel stats`` on known numbers (a Collector-style file), a real run and a damaged dir."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from reading_data import collector_file, damaged_dir, example_run, modeltel, sdk_file


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return example_run(tmp_path_factory.mktemp("run") / "data")


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return collector_file(tmp_path_factory.mktemp("collector"))


def _json(*args: str) -> dict[str, object]:
    result = modeltel("stats", *args, "--format", "json")
    assert result.returncode == 0, result.stderr
    document: dict[str, object] = json.loads(result.stdout)
    return document


def test_by_model_on_known_numbers(collector: Path) -> None:
    document = _json(str(collector), "--by", "model")
    (gpt,) = document["groups"]  # type: ignore[misc]
    assert (gpt["group"], gpt["calls"], gpt["errors"]) == ("gpt-4o", 2, 0)
    assert gpt["tokens_in"]["sum"] == 200 and gpt["tokens_out"]["sum"] == 120
    assert gpt["cost_usd"]["sum"] == pytest.approx(0.006)
    assert gpt["latency_s"]["mean"] == pytest.approx(2.0) and gpt["latency_s"]["p95"] == pytest.approx(2.9)
    assert gpt["ttft_s"]["count"] == 1 and gpt["ttft_s"]["p50"] == pytest.approx(0.25)
    assert gpt["tokens_per_s"]["mean"] == pytest.approx((30 / 1 + 90 / 3) / 2)
    assert gpt["tokens_in"]["percentiles"] == pytest.approx(
        {"p10": 84, "p25": 90, "p50": 100, "p75": 110, "p90": 116}
    )
    assert set(gpt["cost_usd"]["percentiles"]) == {"p10", "p25", "p50", "p75", "p90"}


def test_by_engine_name_and_attribute(collector: Path) -> None:
    engine = _json(str(collector), "--by", "engine")["groups"]
    assert [(g["group"], g["calls"]) for g in engine] == [("openai", 2)]  # type: ignore[union-attr]
    names = _json(str(collector), "--by", "name")["groups"]
    assert {g["group"]: (g["calls"], g["errors"]) for g in names} == {
        "chat gpt-4o": (2, 0),
        "retrieve": (1, 1),
    }  # type: ignore[union-attr]
    tokens = _json(str(collector), "--by", "gen_ai.usage.output_tokens")["groups"]
    assert sorted(g["group"] for g in tokens) == ["30", "90"]  # type: ignore[union-attr]


def test_time_window(collector: Path) -> None:
    both = _json(
        str(collector), "--by", "model", "--since", "2018-12-13T14:51:00Z", "--until", "2018-12-13T14:51:01Z"
    )
    assert [g["calls"] for g in both["groups"]] == [1]  # type: ignore[union-attr]
    assert both["since_unix_nano"] == 1544712660000000000


def test_table_and_csv(collector: Path) -> None:
    table = modeltel("stats", str(collector), "--by", "model")
    assert table.returncode == 0, table.stderr
    header, row = table.stdout.splitlines()[:2]
    assert header.split()[:5] == ["group", "calls", "errors", "tokens", "in"]
    assert row.split()[:5] == ["gpt-4o", "2", "0", "200", "120"]
    assert "tokens in" in table.stdout.split("\n\n")[1]  # the percentile table
    result = modeltel("stats", str(collector), "--by", "model", "--format", "csv")
    (record,) = csv.DictReader(io.StringIO(result.stdout))
    assert record["group"] == "gpt-4o" and float(record["tokens_in_sum"]) == 200
    assert float(record["latency_s_p50"]) == pytest.approx(2.0) and float(record["cost_usd_p90"]) > 0


def test_real_run_by_name_and_empty_model(run_dir: Path) -> None:
    names = _json("--data-dir", str(run_dir), "--by", "name")["groups"]
    assert {g["group"]: g["calls"] for g in names} == {"task": 3, "sweep": 1, "report": 1, "failing": 1}  # type: ignore[union-attr]
    empty = modeltel("stats", "--data-dir", str(run_dir), "--by", "model")
    assert empty.returncode == 1 and empty.stdout == ""
    assert empty.stderr.startswith("modeltel stats: no spans with gen_ai.request.model, gen_ai.response")


def test_fast_path_file_by_model(tmp_path: Path) -> None:
    sdk_file(tmp_path, 400)
    groups = _json("--data-dir", str(tmp_path), "--by", "model")["groups"]
    labels = {g["group"] for g in groups}  # type: ignore[union-attr]
    assert {"llama3.1", "ünïcode-✓", 'quote"model', "sir", "seir"} <= labels


def test_damaged_dir(run_dir: Path, tmp_path: Path) -> None:
    path, garbage, torn, _ = damaged_dir(run_dir, tmp_path / "damaged")
    result = modeltel("stats", str(path), "--by", "name", "--format", "json")
    assert result.returncode == 0
    assert [line.split(".jsonl:")[1].split(":")[0] for line in result.stderr.splitlines()] == [
        str(garbage),
        str(torn),
    ]
    groups = {g["group"]: g["calls"] for g in json.loads(result.stdout)["groups"]}
    assert groups == {"task": 3, "sweep": 1, "report": 1, "failing": 1, "chat gpt-4o": 1}


def test_bad_arguments(run_dir: Path) -> None:
    result = modeltel("stats", "--data-dir", str(run_dir), "--until", "tomorrow")
    assert result.returncode == 2 and result.stderr.startswith("modeltel stats: not a time: 'tomorrow'")
    result = modeltel("stats", "--data-dir", str(run_dir), "--format", "xml")
    assert result.returncode == 2 and "invalid choice: 'xml'" in result.stderr
