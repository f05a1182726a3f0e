"""``modeltel run``'s instrumentor scan against ``importlib.metadata`` and the stock dependency check.

The hook reads ``*.dist-info`` files itself because importing ``importlib.metadata`` and
``packaging`` cost every start; these tests hold it to what those libraries answer, on this venv's
real distributions and on written ones whose ``Requires-Dist`` lines cover the forms instrumentors
use.
"""

from __future__ import annotations

import sys
from importlib.metadata import Distribution, distributions, entry_points
from pathlib import Path

import pytest
from opentelemetry.instrumentation.dependencies import get_dist_dependency_conflicts

from modeltel._internal.bootstrap import instrumentors
from modeltel._internal.bootstrap.instrumentors import GROUP, Instrumentor


def _normalized(name: str) -> str:
    return name.replace("_", "-").replace(".", "-").lower()


def test_the_scan_finds_what_importlib_metadata_finds_in_this_venv() -> None:
    installed, found = instrumentors._scan()
    assert installed == {_normalized(d.metadata["Name"]) for d in distributions()}
    listed = {(ep.name, ep.value.partition("[")[0].strip()) for ep in entry_points(group=GROUP)}
    assert {(i.name, i.value) for i in found} == listed
    assert listed  # the dev venv has the threading and logging instrumentations: not a vacuous check


REQUIRES = {
    "present": ['pydantic >= 2 ; extra == "instruments"'],
    "missing": ["no-such-library-xyz >= 1 ; extra == 'instruments'"],
    "any-one-present": [
        'no-such-library-xyz ; extra == "instruments-any"',
        'numpy>=1 ; extra == "instruments-any"',
    ],
    "any-none-present": [
        'no-such-library-xyz ; extra == "instruments-any"',
        'no-such-library-abc ; extra == "instruments-any"',
    ],
    "other-extras-only": ['no-such-library-xyz ; extra == "test"', "opentelemetry-api ~= 1.12"],
    "missing-but-not-for-this-python": [
        'no-such-library-xyz ; extra == "instruments" and python_version < "3"'
    ],
    "present-and-missing": [
        'numpy ; extra == "instruments"',
        'No_Such.Library-Xyz ; extra == "instruments"',
    ],
}


def _dist_info(root: Path, case: str) -> Path:
    info = root / f"opentelemetry_instrumentation_{case.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    lines = [
        "Metadata-Version: 2.4",
        f"Name: opentelemetry-instrumentation-{case}",
        "Version: 0.1",
        *(f"Requires-Dist: {r}" for r in REQUIRES[case]),
        "",
        "A description that mentions Requires-Dist: no-such-library-xyz ; extra == 'instruments'",
    ]
    (info / "METADATA").write_text("\n".join(lines) + "\n")
    return info


@pytest.mark.parametrize("case", sorted(REQUIRES))
def test_a_missing_library_is_decided_as_the_stock_dependency_check_decides(
    tmp_path: Path, case: str
) -> None:
    info = _dist_info(tmp_path, case)
    installed, _ = instrumentors._scan()
    ours = instrumentors._libraries_present(Instrumentor(case, "x:Y", str(info)), installed)
    conflict = get_dist_dependency_conflicts(Distribution.at(info))
    missing = conflict is not None and conflict.found is None and not conflict.found_any
    assert ours is not missing, (case, conflict)


def test_the_scan_reads_a_dist_info_put_first_on_sys_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = _dist_info(tmp_path, "present")
    (info / "entry_points.txt").write_text(
        f"[console_scripts]\nx = y:z\n\n[{GROUP}]\npresent = pkg.mod:Thing [extra]\n"
    )
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    _, found = instrumentors._scan()
    assert Instrumentor("present", "pkg.mod:Thing", str(info)) in found
    listed = entry_points(group=GROUP, name="present")
    assert [ep.value for ep in listed] == ["pkg.mod:Thing [extra]"]
