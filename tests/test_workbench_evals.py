"""The workbench's evaluation report (engine/web_evals.py) over HTTP: metrics per variant,
the paired difference and the rows two variants disagree on, each with its input, outputs,
scores and a link to its run; a dataset row holding a script is shown as text. In a real
browser: tests/test_workbench_browser.py."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from urllib.parse import quote

import pytest
import pytest_asyncio

from tests.fake_llm import Fault
from tests.workbench import HOSTILE, Bench, bench_server, evaluation  # noqa: F401 (fixture)


@pytest_asyncio.fixture(name="report_id", scope="module", loop_scope="session")
async def ended_evaluation(bench: Bench, tmp_path_factory: pytest.TempPathFactory) -> str:
    return await evaluation(bench, Path(tmp_path_factory.mktemp("eval")))


async def test_report_page_shows_metrics_difference_and_the_rows_variants_disagree_on(
    bench: Bench, report_id: str
):
    async with bench.http() as http:
        page = await http.get(f"/runs/{report_id}/evaluation")
    html = page.text
    assert page.status_code == 200, html
    assert "script-src 'self'" in page.headers["content-security-policy"]
    metrics = html.split('class="runs report-metrics"')[1].split("</table>")[0]
    assert re.search(r"<td>base</td><td>accuracy</td><td>1.000</td>", metrics)
    assert re.search(r"<td>big</td><td>accuracy</td><td>0.333</td>", metrics)
    assert "report-runs" in html and "cost/row $" in html
    assert "<h2>big - base</h2>" in html
    assert re.search(r"<td>accuracy</td><td>-0.667</td><td>\[", html)
    assert re.findall(r'data-line="(\d+)"', html) == ["1", "2"]  # row 3: both right
    # each variant's run of a row is linked, and is that row's run
    row_run = f"{report_id}/shard0/row1_v1"
    assert f'href="/runs/{quote(row_run, safe="")}"' in html
    status = await bench.engine.status(row_run)
    assert status.variables["ticket"] == f"refund {HOSTILE}"


async def test_a_dataset_row_holding_a_script_is_text_on_the_report(bench: Bench, report_id: str):
    async with bench.http() as http:
        html = (await http.get(f"/runs/{report_id}/evaluation")).text
    assert "<script>window.pwned" not in html and 'onerror="window' not in html
    assert "refund &lt;script&gt;window.pwned = 1&lt;/script&gt;" in html  # the input
    assert "other &lt;script&gt;window.pwned" in html  # big's output


async def test_the_report_is_reached_from_the_run_page_and_needs_a_session(
    bench: Bench, report_id: str
):
    link = f'href="/runs/{quote(report_id, safe="")}/evaluation"'
    async with bench.session() as browser:
        run_page = await browser.get(f"/runs/{report_id}")
        assert link in run_page.text
        assert (await browser.get(f"/runs/{report_id}/evaluation")).status_code == 200
        for _ in range(50):  # "Evaluations": the runs list of Evaluation (visibility lags)
            listed = await browser.get("/runs", params={"workflow": "Evaluation"})
            if link in listed.text:
                break
            await asyncio.sleep(0.1)
        assert link in listed.text and 'href="/runs?workflow=Evaluation"' in listed.text
    async with bench.http(token=None) as anyone:
        answer = await anyone.get(f"/runs/{report_id}/evaluation")
        assert answer.status_code == 303 and answer.headers["location"].startswith("/sign-in")
    async with bench.http() as http:
        not_one = await http.get(f"/runs/{report_id}%2Fshard0/evaluation")
        assert not_one.status_code == 400 and "is not an evaluation" in not_one.text


async def test_a_running_evaluation_says_its_report_comes_when_it_ends(
    bench: Bench, tmp_path: Path
):
    bench.llm.fault_for = lambda request: Fault(503, "busy")  # retried: the rows never end
    try:
        run_id = await evaluation(bench, tmp_path, wait=False)
        async with bench.http() as http:
            page = await http.get(f"/runs/{run_id}/evaluation")
        assert page.status_code == 409
        assert f"evaluation {run_id} is still running: its report is here once" in page.text
        assert f'href="/runs/{run_id}"' in page.text
    finally:
        bench.llm.fault_for = lambda request: None
    await bench.engine.cancel(run_id)
