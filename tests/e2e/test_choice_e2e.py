"""End-to-end: choosing a model. Costs with their sources, variants, the frontier and the
recommendation in the terminal, the JSONL, the markdown and the HTML report, against a fake LM
Studio that reports each model's size; and on the real bundled model, measured."""

from __future__ import annotations

from typing import Any

import pytest
from browser import chromium_page
from fakes.bench import GOOD_CODE, read_jsonl
from fakes.chat_stream import Answer, tokens
from fakes.lmstudio_server import LMStudioFake, Model

TASKS = """\
suite: python
tasks:
""" + "".join(
    f"""  - id: add{i}
    prompt: Write `def add(a, b)` returning the sum of a and b (variant {i}).
    entry_point: add
    reference: |
      def add(a, b):
          return a + b
    cases:
      - {{id: small, args: [1, 2], expect: 3}}
"""
    for i in range(6)
)
WRONG = "```python\ndef add(a, b):\n    return a - b\n```"


def answer_for(body: dict[str, Any]) -> Answer:
    """q8 answers all six tasks right; q4 gets add5 wrong (one task of six: not significant)."""
    prompt = " ".join(str(m.get("content")) for m in body["messages"] if m["role"] == "user")
    wrong = body["model"] == "qwen3-4b@q4" and "variant 5" in prompt
    return Answer(content=tokens(WRONG if wrong else GOOD_CODE))


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    (pytester.path / "tasks").mkdir()
    (pytester.path / "tasks" / "adds.yaml").write_text(TASKS)
    return pytester


def test_a_variant_that_is_not_significantly_worse_but_smaller_is_recommended(
    project: pytest.Pytester, serve: Any
) -> None:
    fake = serve(
        LMStudioFake(
            models=[Model("qwen3-4b@q8", size_bytes=4_300_000_000),
                    Model("qwen3-4b@q4", size_bytes=2_500_000_000)],
            answers={"qwen3-4b@q8": answer_for, "qwen3-4b@q4": answer_for},
        )
    )  # fmt: skip
    result = project.runpytest(
        f"--llmbench-base-url={fake.url}", "--llmbench-variants=qwen3-4b@q8=qwen3-4b@q4",
        "--llmbench-limits=memory<=3GB", "--llmbench-jsonl=out.jsonl", "--llmbench-markdown=out.md",
        "--llmbench-html=report.html", "-p", "no:cacheprovider",
    )  # fmt: skip
    output = result.stdout.str()
    # The variants name the models: no --models needed.
    result.assert_outcomes(passed=11, failed=1)
    assert "llmbench choosing a model" in output
    assert "memory: reported: LM Studio model listing size_bytes" in output
    # No limits but memory: q4 is the only model within 3 GB.
    assert "choose (memory<=3GB): qwen3-4b@q4 (5/6 cases), the only model within them" in output
    variant = next(line for line in result.stdout.lines if line.startswith("variant "))
    assert variant.startswith(
        "variant qwen3-4b@q4 of qwen3-4b@q8: -17 points of cases (-50 to +0, paired 95 %), "
        "tasks 0 gained / 1 lost (McNemar p 1.00); "
    )
    assert "0.58x memory" in variant and variant.endswith("lost python:add5")
    rows = {row["model"]: row for row in read_jsonl(project.path / "out.jsonl")}
    q4 = rows["qwen3-4b@q4"]
    assert q4["cost"]["memory_peak_bytes"] == 2_500_000_000
    assert q4["cost"]["memory_source"] == "reported: LM Studio model listing size_bytes"
    assert q4["cost"]["memory_measured"] is False
    assert q4["cost"]["ttft_source"].startswith("measured: request sent to first streamed token")
    assert q4["variant_of"]["reference"] == "qwen3-4b@q8"
    assert q4["variant_of"]["lost"] == ["python:add5"] and q4["variant_of"]["significant"] is False
    assert "variant_of" not in rows["qwen3-4b@q8"]
    # q8 is better, q4 smaller: both on the frontier (their speeds are the fake's).
    assert rows["qwen3-4b@q8"]["frontier"] is True
    assert q4["recommendations"] == rows["qwen3-4b@q8"]["recommendations"]
    markdown = (project.path / "out.md").read_text()
    assert "## Choosing a model" in markdown and "| `qwen3-4b@q4` | 2.5 GB |" in markdown

    with chromium_page() as page:
        page.goto((project.path / "report.html").as_uri())
        figure = page.locator("figure[title='Quality against decode speed']")
        assert figure.locator("svg").count() == 1
        text = figure.text_content() or ""
        assert "qwen3-4b@q8" in text and "qwen3-4b@q4" in text and "frontier" in text
        assert figure.bounding_box()["width"] > 200
        choice = page.text_content("#choice") or ""
        assert "choose (memory<=3GB): qwen3-4b@q4" in choice
        memory = page.eval_on_selector_all(
            "#comparison tbody tr",
            "trs => trs.map(r => r.children[r.children.length - 3].textContent)",
        )
        assert memory == ["4.3 GB ~", "2.5 GB ~"]  # ~: reported by the server, not measured
        assert page.llmbench_errors == []


def test_with_one_model_nothing_is_said_about_choosing(
    project: pytest.Pytester, serve: Any
) -> None:
    fake = serve(LMStudioFake(models=[Model("a")], answers={"a": answer_for}))
    result = project.runpytest(
        f"--llmbench-base-url={fake.url}", "--models=a", "--llmbench-jsonl=out.jsonl",
        "-p", "no:cacheprovider",
    )  # fmt: skip
    result.assert_outcomes(passed=6)
    assert "choosing a model" not in result.stdout.str()
    (row,) = read_jsonl(project.path / "out.jsonl")
    assert row["recommendations"] == [] and row["frontier"] is False
    assert row["cost"]["memory_peak_bytes"] == 1_000_000  # still recorded


@pytest.mark.embedded
def test_two_embedded_variants_show_measured_memory_and_a_verdict(
    pytester: pytest.Pytester,
) -> None:
    """The bundled SmolLM2 by its key and by its file's path, loaded with another context:
    each one's llama-server measured, the two compared as variants."""
    from pytest_llmbench.backends.bundled_models import resolve

    path, _ = resolve("smollm2")
    (pytester.path / "tasks").mkdir()
    (pytester.path / "tasks" / "adds.yaml").write_text(TASKS)
    result = pytester.runpytest(
        "--llmbench-backend=embedded", f"--llmbench-variants=smollm2={path}",
        "--max-tokens=64", "--llmbench-jsonl=out.jsonl", "-p", "no:cacheprovider",
        "-k", "add0 or add1",
    )  # fmt: skip
    output = result.stdout.str()
    print(output[output.find("llmbench choosing") :])
    assert "llmbench choosing a model" in output
    rows = {row["model"]: row for row in read_jsonl(pytester.path / "out.jsonl")}
    for row in rows.values():
        cost = row["cost"]
        assert cost["memory_measured"] is True
        assert cost["memory_source"].startswith("measured: resident memory of")
        # A 135M-parameter model in 4 bits with its KV cache: more than 50 MB, less than 2 GB.
        assert 50e6 < cost["memory_peak_bytes"] < 2e9
        assert cost["memory_steady_bytes"] <= cost["memory_peak_bytes"]
        assert cost["ttft_median_s"] is not None and cost["decode_tok_s"] > 0
    assert rows[str(path)]["variant_of"]["reference"] == "smollm2"
    assert any(line.startswith("choose (no limits): ") for line in result.stdout.lines)
