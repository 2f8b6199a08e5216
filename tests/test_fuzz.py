"""Fuzzing the two doors untrusted bytes come through: log files and configuration.

Whatever arrives, the outcome is one of: rows read (and every row ends in the ledger or the
rejects), an InputFileError / ConfigError naming the file — never any other exception.
The short versions run with the suite; `pytest -m slow` runs each for minutes.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from conftest import COMPANIES, V1, make_config, policy_text, settle_rows
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from settlement.config import load_config
from settlement.errors import ConfigError, InputFileError
from settlement.ingest import read_log_file

HEADER = "waybill_no,company,delivered_at,village_code,distance_km,cost_yuan,revenue_yuan,proof"
_CFG = {}


def tiny():
    if "cfg" not in _CFG:
        _CFG["cfg"] = load_config(make_config(Path(tempfile.mkdtemp()) / "config"))
    return _CFG["cfg"]


cells = st.one_of(
    st.sampled_from(
        [
            "",
            "ZTO",
            V1,
            "2025-03-05 10:00",
            "12.5",
            "-1",
            "1e3",
            "NaN",
            "'",
            '"',
            "=1+1",
            "签名",
            "\t",
            "a,b",
            "150702",
            "9" * 30,
        ]
    ),
    st.text(max_size=20),
)
csv_text = st.lists(st.lists(cells, min_size=0, max_size=10), max_size=8).map(
    lambda rows: HEADER + "\n" + "\n".join(",".join(r) for r in rows)
)
raw_bytes = st.one_of(
    st.binary(max_size=3000),
    csv_text.map(lambda t: t.encode("utf-8")),
    csv_text.map(lambda t: t.encode("gb18030", errors="replace")),
    csv_text.map(lambda t: b"\xef\xbb\xbf" + t.encode("utf-8")),
    st.binary(max_size=200).map(lambda b: b"PAR1" + b + b"PAR1"),
    st.binary(max_size=200).map(lambda b: b"PK\x03\x04" + b),
)


def check_ingest(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"fuzz{suffix}"
        path.write_bytes(data)
        try:
            frame, info = read_log_file(path)
        except InputFileError as exc:
            assert exc.path == str(path) and exc.problem
            return
        assert info.rows == frame.height
        if frame.height:
            result = settle_rows(tiny(), frame)
            assert result.ledger.height + result.rejects.height == frame.height


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=raw_bytes, suffix=st.sampled_from([".csv", ".parquet", ".xlsx", ".txt", ".dat"]))
def test_fuzz_ingest(data, suffix):
    check_ingest(data, suffix)


@pytest.mark.slow
@settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=raw_bytes, suffix=st.sampled_from([".csv", ".parquet", ".xlsx", ".txt", ".dat"]))
def test_fuzz_ingest_long(data, suffix):
    check_ingest(data, suffix)


def mutate(text: str, edits: list[tuple[int, int, str]]) -> str:
    lines = text.splitlines()
    for kind, where, junk in edits:
        if not lines:
            break
        i = where % len(lines)
        if kind == 0:
            del lines[i]
        elif kind == 1:
            lines.insert(i, lines[i])
        elif kind == 2:
            lines[i] = lines[i] + junk
        elif kind == 3:
            lines.insert(i, junk)
        else:
            lines[i] = "".join(ch if not ch.isdigit() else junk[:1] or ch for ch in lines[i])
    return "\n".join(lines) + "\n"


edits = st.lists(
    st.tuples(
        st.integers(0, 4),
        st.integers(0, 10_000),
        st.sampled_from(
            [
                "",
                "9",
                "-1",
                " = 1",
                "x",
                "[[version]]",
                "0.31",
                '"',
                "]",
                "1e9",
                'class = "x"',
                "up_to = 1",
            ]
        ),
    ),
    min_size=1,
    max_size=4,
)


def check_config(policy: str, companies: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        root = make_config(Path(d) / "config", policy, companies)
        try:
            cfg = load_config(root)
        except ConfigError as exc:
            assert exc.path.startswith(str(root)) and exc.problem
            return
        for p in cfg.policies.values():
            for v in p.versions:
                assert v.cap_yuan <= __import__("decimal").Decimal("0.30")


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(policy_edits=edits, company_edits=edits, which=st.booleans())
def test_fuzz_config(policy_edits, company_edits, which):
    policy = mutate(policy_text(tiers=True), policy_edits)
    companies = mutate(COMPANIES, company_edits) if which else COMPANIES
    check_config(policy, companies)


@pytest.mark.slow
@settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
@given(policy_edits=edits, company_edits=edits, which=st.booleans())
def test_fuzz_config_long(policy_edits, company_edits, which):
    policy = mutate(policy_text(tiers=True), policy_edits)
    companies = mutate(COMPANIES, company_edits) if which else COMPANIES
    check_config(policy, companies)


# Crashes the long fuzzers found, kept as regression tests.
FOUND = [
    (b"\x00\n\r,\x00", ".csv"),  # a lone CR made the ragged-row diagnosis itself fail
]


@pytest.mark.parametrize(("data", "suffix"), FOUND)
def test_fuzz_regressions(data, suffix):
    check_ingest(data, suffix)
