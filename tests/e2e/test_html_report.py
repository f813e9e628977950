"""The HTML report in a real browser (Debian's headless Chromium): the table, the grid, a case's
drill-down and the plots render with the right content; a task that was not stable is marked;
`llmbench report` from the record."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

# numpy (under matplotlib) cannot be imported twice in one process, and pytester's in-process
# runs forget the modules they imported: load the plotting stack before any run does.
import matplotlib.figure  # noqa: F401
import pytest
from browser import chromium_page, grid_cell
from fakes.bench import (
    bad_script,
    comparison_cells,
    good_script,
    read_jsonl,
    seeded_script,
    thinker_script,
)
from fakes.openai_server import Reply, by_prompt

from pytest_llmbench import cli
from pytest_llmbench.storage.database import database_path

EVIL = "Here: </script><img id=pwned src=x onerror=\"document.title='pwned'\">\n" + (
    "```python\ndef add(a, b):\n    return '</script>'\n```"
)


def run_bench(bench: pytest.Pytester, url: str, *args: str) -> pytest.RunResult:
    return bench.runpytest(
        "--llmbench-backend=openai", f"--llmbench-base-url={url}", "-p", "no:cacheprovider",
        "--llmbench-jsonl=out/results.jsonl", "--tb=no", *args,
    )  # fmt: skip


@pytest.fixture
def server(fake_openai: Any) -> Any:
    return fake_openai(
        {
            "good": good_script(),
            "bad": bad_script(),
            "thinker": thinker_script(),
            "evil": by_prompt({"def add": Reply(EVIL)}),
        }
    )


def test_report_renders_in_chromium(
    bench_dir: pytest.Pytester, server: Any, tmp_path: Path, record_property: Any
) -> None:
    result = run_bench(bench_dir, server.url, "--models=good,bad,thinker,evil",
                       "--llmbench-html=out/report.html")  # fmt: skip
    report = bench_dir.path / "out/report.html"
    assert f"HTML report: {report.relative_to(bench_dir.path)}" in result.stdout.str()
    html = report.read_text()
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=[\"']?(https?:)?//", html)
    with chromium_page() as page:
        page.goto(report.as_uri())
        page.wait_for_function("window.llmbenchReady === true")

        # The comparison table: one row per model, per suite and in total.
        table = page.eval_on_selector_all(
            "#comparison tbody tr",
            "trs => trs.map(r => Array.from(r.children, c => c.textContent.trim()))",
        )
        head = page.eval_on_selector_all(
            "#comparison thead th", "ths => ths.map(t => t.textContent)"
        )
        assert [row[0] for row in table] == ["good", "bad", "thinker", "evil"]
        good = dict(zip(head, table[0], strict=True))
        assert good["python"].startswith("3/3") and good["total"].startswith("7/7")
        assert good["tasks"] == "4/4"
        bad = dict(zip(head, table[1], strict=True))
        assert bad["total"].startswith("0/7") and "1 truncated" in bad["notes"]

        # Three plots, drawn inline.
        assert page.locator("#plots svg").count() == 4

        # The grid: a row per task, a column per model, a stripe per case coloured by outcome.
        assert page.eval_on_selector_all(
            "#grid tbody tr", "trs => trs.map(r => r.children[2].textContent)"
        ) == ["add", "count_lines", "weather", "lookup_then_email"]
        assert page.locator("#grid td.c").count() == 16
        assert grid_cell(page, "bad", "add").get_attribute("data-o") == "FFF"
        assert grid_cell(page, "bad", "count_lines").get_attribute("data-o") == "t"
        assert grid_cell(page, "thinker", "weather").get_attribute("data-o") == "nn"
        gradient = (
            grid_cell(page, "bad", "add")
            .locator("b")
            .evaluate("b => getComputedStyle(b).backgroundImage")
        )
        assert gradient.count("rgb(214, 69, 69)") == 6  # three red stripes, two stops each
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)

        # Filters: by outcome, by suite, by text.
        page.select_option("#f-outcome", "t")
        assert page.locator("#grid tbody tr").count() == 1
        page.select_option("#f-outcome", "")
        page.select_option("#f-suite", "tooling")
        assert page.locator("#grid tbody tr").count() == 2
        page.select_option("#f-suite", "")
        page.fill("#f-text", "emailed")
        assert page.locator("#grid tbody tr").count() == 1
        page.fill("#f-text", "")

        # A click opens the case: answer with its code highlighted, expected against got.
        grid_cell(page, "bad", "add").click(position={"x": 8, "y": 8})  # on the first case's stripe
        page.wait_for_selector("#case:not([hidden])")
        assert page.text_content("#case-body tr.focus td") == "small"
        assert page.text_content("#case-title") == "add · bad (python)"
        code = page.locator("#case-body pre.code[data-lang=python]").first
        assert "return a - b" in code.text_content()
        assert code.locator(".hl-k", has_text="def").count() == 1
        cases = page.eval_on_selector_all(
            "#case-body table.cases tbody tr",
            "trs => trs.map(r => Array.from(r.children, c => c.textContent))",
        )
        assert [c[0] for c in cases] == ["small", "negative", "floats"]
        assert cases[0][1].startswith("failed") and "expected 3, got -1" in cases[0][1]
        assert cases[0][2] == '{"args":[1,2],"expect":3}'
        assert cases[0][3] == "ok: -1"
        assert "Write `def add(a, b)`" in page.text_content("#case-body")
        page.screenshot(path=str(tmp_path / "report-case.png"))
        page.keyboard.press("Escape")
        assert page.locator("#case").is_hidden()

        # Tooling: the transcript turn by turn, with the mock tools' answers.
        page.keyboard.press("Escape")
        grid_cell(page, "good", "lookup_then_email").click()
        page.wait_for_selector("#case:not([hidden])")
        turns = page.locator("#case-body .turn")
        assert turns.count() == 3
        assert "get_user" in turns.nth(0).text_content()
        assert "alice@example.com" in turns.nth(0).text_content()  # the mock's answer
        assert "send_email" in turns.nth(1).text_content()
        assert "Sent." in turns.nth(2).text_content()

        # cli: what ran and its output; the reasoning is there, folded.
        page.keyboard.press("Escape")
        grid_cell(page, "thinker", "count_lines").click()
        page.wait_for_selector("#case:not([hidden])")
        body = page.locator("#case-body")
        assert "$ wc -l < data.txt" in body.text_content()
        assert re.search(r"stdout\s*3", body.text_content())
        reasoning = body.locator("details", has_text="reasoning")
        assert reasoning.count() == 1 and reasoning.get_attribute("open") is None
        assert "rm -rf x" in reasoning.text_content()

        # Model text stays text: nothing it contains runs or becomes markup.
        page.keyboard.press("Escape")
        grid_cell(page, "evil", "add").click()
        page.wait_for_selector("#case:not([hidden])")
        assert page.locator("#pwned").count() == 0 and page.title() != "pwned"
        assert "</script><img id=pwned" in page.text_content("#case-body")
        assert page.llmbench_errors == []
    record_property("screenshots", str(tmp_path))
    print(f"screenshots: {tmp_path / 'report.png'}, {tmp_path / 'report-case.png'}")


def test_a_flaky_task_is_marked_on_the_grid(bench_dir: pytest.Pytester, fake_openai: Any) -> None:
    server = fake_openai({"m": seeded_script()})
    # Seeds 1, 1801111726, 865957720: add is right in samples 1 and 2 (even seeds), the email
    # chain in sample 1 only (2 mod 4); count_lines and weather are always right.
    run_bench(bench_dir, server.url, "--models=m", "--llmbench-repeat=3", "--llmbench-seed=1",
              "--llmbench-html=out/report.html")  # fmt: skip
    with chromium_page() as page:
        page.goto((bench_dir.path / "out/report.html").as_uri())
        page.wait_for_function("window.llmbenchReady === true")
        add, weather = grid_cell(page, "m", "add"), grid_cell(page, "m", "weather")
        assert add.locator(".mark").text_content() == "~"
        assert add.get_attribute("title") == "m: 0/3 passed (first sample); flaky (2 of 3)"
        assert weather.locator(".mark").count() == 0
        assert (
            weather.get_attribute("title")
            == "m: 2/2 passed (first sample); stable pass (3 samples)"
        )
        # The mark is drawn inside its cell, over the stripes, and the legend names it.
        cell_box, mark_box = add.bounding_box(), add.locator(".mark").bounding_box()
        assert cell_box is not None and mark_box is not None and mark_box["width"] > 0
        assert (
            cell_box["x"] <= mark_box["x"] <= cell_box["x"] + cell_box["width"] - mark_box["width"]
        )
        legend = page.text_content("#stability-legend") or ""
        assert "~ flaky" in legend and "budget-sensitive" in legend
        # The filter for tasks not stable: the two flaky ones.
        page.select_option("#f-outcome", "u")
        assert page.eval_on_selector_all(
            "#grid tbody tr", "trs => trs.map(r => r.children[2].textContent)"
        ) == ["add", "lookup_then_email"]
        page.select_option("#f-outcome", "")
        # The drill-down says it, and that the answer shown is one of three.
        add.click()
        page.wait_for_selector("#case:not([hidden])")
        assert page.text_content("#case-body p.stability") == (
            "stability: flaky (2 of 3) · what follows is the first sample"
        )
        assert page.llmbench_errors == []


def test_a_resumed_run_has_the_same_time_and_speeds_in_every_output(
    bench_dir: pytest.Pytester, fake_openai: Any
) -> None:
    good = good_script()

    def slow(body: dict[str, Any]) -> Reply:
        time.sleep(0.2)  # time enough to measure, the same for every request
        return good(body)

    server = fake_openai({"m": slow})
    run_bench(bench_dir, server.url, "--models=m", "-m", "tooling", "-k", "weather")
    # Run again with one more task: weather's answer comes from the store, half of the two.
    again = run_bench(bench_dir, server.url, "--models=m", "-m", "tooling",
                      "--llmbench-html=out/report.html")  # fmt: skip
    row = read_jsonl(bench_dir.path / "out/results.jsonl")[-1]
    assert row["answers_from_store"] == 1 and row["total"] == 3
    text = again.stdout.str()
    [line] = [line for line in text.splitlines() if line.startswith("m ")]
    words = line.split()
    time_cell = next(w for w in words if re.fullmatch(r"\d+\.\ds", w))
    decode_cell = words[words.index(time_cell) + 1]
    aggregate = float(re.findall(r"([\d.]+) tok/s aggregate", text)[0])
    assert "1 of 2 answers from the store" in text

    [shown] = comparison_cells((bench_dir.path / "out/report.html").read_text())
    # Each figure as the terminal table shows it, and as the JSONL records it (rounded there).
    assert shown["time"] == time_cell
    assert abs(float(time_cell[:-1]) - row["generation_wall_s"]) < 0.051
    assert shown["decode tok/s"] == decode_cell
    assert abs(float(decode_cell) - row["decode_tok_s"]) < 0.51
    assert abs(float(shown["tok/s"]) - row["throughput_tok_s"]) < 0.51
    assert abs(aggregate - row["throughput_tok_s"]) < 0.051


def test_llmbench_report_combines_runs_and_writes_pngs(
    bench_dir: pytest.Pytester, server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_bench(bench_dir, server.url, "--models=good,bad", "--max-tokens=64")
    run_bench(bench_dir, server.url, "--models=good", "--max-tokens=128")
    first, second = (row["run_id"] for row in read_jsonl(bench_dir.path / "out/results.jsonl")[1:])
    db = database_path(bench_dir.path)
    out, plots = tmp_path / "combined.html", tmp_path / "plots"
    code = cli.main(["report", "--db", str(db), "-o", str(out), "--plots", str(plots),
                     first[:6], second])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "MB)" in printed
    pngs = sorted(plots.iterdir())
    assert [p.name for p in pngs] == [
        "decode_speed.png",
        "quality_vs_speed.png",
        "score_vs_budget.png",
        "score_vs_time.png",
    ]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    with chromium_page() as page:
        page.goto(out.as_uri())
        page.wait_for_function("window.llmbenchReady === true")
        labels = page.eval_on_selector_all("#grid thead th", "ths => ths.map(t => t.textContent)")
        # good ran twice: its columns say which run each is
        assert labels[3:] == [f"good @{first[:8]}", "bad", f"good @{second[:8]}"]
        budgets = page.eval_on_selector_all(
            "#budgets tbody tr",
            "trs => trs.map(r => [r.children[0].textContent, r.children[1].textContent])",
        )
        assert budgets == [["good", "64"], ["good", "128"]]
        assert page.llmbench_errors == []


def test_llmbench_report_says_what_is_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bench_dir: pytest.Pytester, server: Any
) -> None:
    assert cli.main(["report", "--db", str(tmp_path / "none.sqlite3")]) == 1
    assert "no run record at" in capsys.readouterr().err
    run_bench(bench_dir, server.url, "--models=good", "-m", "cli")
    db = database_path(bench_dir.path)
    assert cli.main(["report", "--db", str(db), "nosuchrun"]) == 1
    assert "run 'nosuchrun' is not in the record" in capsys.readouterr().err
    assert cli.main(["report", "--db", str(db), "--list"]) == 0
    listing = capsys.readouterr().out
    assert re.match(r"\w{12}  started .* finished .*  1 cases  good\n", listing)
