"""The line parser against prometheus-client's parser (the oracle): every vllm: sample of every
captured page, hand-written edge cases, and seeded random label values full of escapes."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from vllm_mcp.engine.metrics import Family, parse_metrics
from vllm_mcp.engine.metrics_parse import parse_families
from vllm_mcp.errors import UpstreamError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "metrics"
PAGES = sorted(FIXTURES.glob("vllm-*.txt"))

Key = tuple[str, tuple[tuple[str, str], ...], object]


def _key(name: str, labels: dict[str, str], value: float) -> Key:
    # NaN != NaN: compare it as a marker, and every number as a float (the oracle gives ints).
    return name, tuple(sorted(labels.items())), "NaN" if math.isnan(value) else float(value)


def oracle(text: str) -> dict[str, tuple[str, list[Key]]]:
    """vllm: families as prometheus-client groups them: name → (type, samples in page order)."""
    out: dict[str, tuple[str, list[Key]]] = {}
    for fam in text_string_to_metric_families(text):
        keys = [_key(s.name, dict(s.labels), s.value) for s in fam.samples if s.name.startswith("vllm:")]
        if keys:  # prometheus-client calls the text format's "untyped" "unknown"
            typ = "untyped" if fam.type == "unknown" else fam.type
            out.setdefault(fam.name, (typ, []))[1].extend(keys)
    return out


def ours(families: dict[str, Family]) -> dict[str, tuple[str, list[Key]]]:
    """Ours in the oracle's naming: it drops a counter's ``_total`` from the family name."""
    out: dict[str, tuple[str, list[Key]]] = {}
    for fam in families.values():
        name = fam.name.removesuffix("_total") if fam.type == "counter" else fam.name
        keys = [_key(s.name, dict(s.labels), s.value) for s in fam.samples]
        out.setdefault(name, (fam.type, []))[1].extend(keys)
    return out


def assert_same_as_oracle(text: str) -> None:
    expected, got = oracle(text), ours(parse_families(text))
    assert sorted(got) == sorted(expected)
    for name, (typ, samples) in expected.items():
        assert got[name] == (typ, samples), name


def test_fixture_pages_are_present() -> None:
    kinds = {p.name.split("-", 2)[2] for p in PAGES}
    assert {"idle.txt", "loaded.txt", "lora.txt", "asleep.txt"} <= kinds


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_vllm_sample_matches_prometheus_client(page: Path) -> None:
    text = page.read_text()
    assert_same_as_oracle(text)
    assert sum(len(f.samples) for f in parse_families(text).values()) > 300


@pytest.mark.parametrize(
    "line",
    [
        r'vllm:x{model_name="a\"b",engine="0"} 1',
        r'vllm:x{model_name="back\\slash",engine="0"} 2',
        r'vllm:x{model_name="two\nlines",engine="0"} 3',
        r'vllm:x{model_name="odd\tescape\q",engine="0"} 4',
        r'vllm:x{model_name="\\\"",engine="0"} 5',
        'vllm:x{model_name="commas,and=equals}brace",engine="0"} 6',
        'vllm:x{model_name="m",engine="0",} 7',
        'vllm:x{ model_name = "spaced" , engine="0" } 8',
        'vllm:x{model_name="",engine="0"} 9',
        'vllm:x{model_name="m"} 1e-3',
        'vllm:x{model_name="m"} 12 1700000000000',
        "vllm:x 42",
        "vllm:x{} 43",
        'vllm:x{model_name="m"} NaN',
        'vllm:x{model_name="m"} +Inf',
        'vllm:x{model_name="m"} -Inf',
        'vllm:x{model_name="ünïcödé ✓"} 1',
    ],
)
def test_edge_case_lines_match_prometheus_client(line: str) -> None:
    assert_same_as_oracle(f"# TYPE vllm:x gauge\n{line}\n")


def test_escapes_are_decoded() -> None:
    text = '# TYPE vllm:x gauge\nvllm:x{a="q\\"b\\\\s\\nn"} 1\n'
    (sample,) = parse_families(text)["vllm:x"].samples
    assert sample.labels == {"a": 'q"b\\s\nn'}


def test_non_finite_values() -> None:
    text = '# TYPE vllm:x gauge\nvllm:x{a="1"} NaN\nvllm:x{a="2"} +Inf\nvllm:x{a="3"} -Inf\n'
    values = [s.value for s in parse_families(text)["vllm:x"].samples]
    assert math.isnan(values[0])
    assert values[1:] == [math.inf, -math.inf]


def test_other_families_are_skipped_and_stray_samples_stand_alone() -> None:
    text = (
        '# HELP python_info x\n# TYPE python_info gauge\npython_info{v="3"} 1\n'
        'vllm:untyped_one{model_name="m"} 2\n'
        '# TYPE vllm:h histogram\nvllm:h_bucket{le="+Inf"} 1\nvllm:h_count 1\n'
        "vllm:h_other 5\nvllm:h_sum 0.5\n"  # a stray sample closes the family, as the oracle
        "# TYPE process_x counter\nprocess_x_total 3\nvllm:after_other 4\n"
    )
    families = parse_families(text)
    assert set(families) == {"vllm:untyped_one", "vllm:h", "vllm:h_other", "vllm:h_sum", "vllm:after_other"}
    assert [s.name for s in families["vllm:h"].samples] == ["vllm:h_bucket", "vllm:h_count"]
    assert families["vllm:h_sum"].type == "untyped"
    assert_same_as_oracle(text)


def test_random_label_values_with_escapes_match_prometheus_client() -> None:
    rng = random.Random(20261125)  # noqa: S311 - seeded test data, not crypto
    alphabet = 'ab,=}{ "\\\n\tü'
    lines = ["# TYPE vllm:r gauge"]
    for i in range(300):
        raw = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        escaped = raw.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        lines.append(f'vllm:r{{model_name="{escaped}",engine="{i}"}} {rng.random()}')
    text = "\n".join(lines) + "\n"
    assert_same_as_oracle(text)
    raws = [dict(s.labels)["model_name"] for s in parse_families(text)["vllm:r"].samples]
    assert len(raws) == 300


@pytest.mark.parametrize(
    ("line", "what"),
    [
        ('vllm:x{model_name="m"}', "no number"),
        ("vllm:x", "no number"),
        ('vllm:x{model_name="m"} twelve', "no number"),
        ('vllm:x{model_name="m} 1', "closing quote"),
        ('vllm:x{model_name="m" 1', "closing '}'"),
        ("vllm:x{model_name=m} 1", "not quoted"),
        ("vllm:x{model_name} 1", 'not name="value"'),
        ('vllm:x{="v"} 1', 'not name="value"'),
        ('vllm:x{a="1" b="2"} 1', "text after the value"),
        ('vllm:x{a="1\\"} 1', "closing quote"),
        ('vllm:x{a="1",a="2",b="\\n"} 1', "given twice"),
    ],
)
def test_a_malformed_vllm_line_is_an_upstream_error_naming_the_line(line: str, what: str) -> None:
    text = f'# TYPE vllm:x gauge\nvllm:x{{ok="1"}} 1\n{line}\n'
    with pytest.raises(UpstreamError) as err:
        parse_metrics(text, at=0.0)
    assert "line 3" in err.value.message
    assert what in err.value.message
    assert err.value.context["line"] == 3
    assert err.value.hint


def test_a_malformed_foreign_line_is_ignored() -> None:
    text = (
        "garbage{{{ here\n"
        "# TYPE vllm:num_requests_running gauge\n"
        'vllm:num_requests_running{model_name="m"} 1\n'
    )
    assert parse_metrics(text, at=0.0).models["m"].num_requests_running == 1


def test_an_empty_page_has_no_models() -> None:
    page = parse_metrics("", at=5.0)
    assert page.models == {}
    assert page.families == {}
    assert page.at == 5.0
