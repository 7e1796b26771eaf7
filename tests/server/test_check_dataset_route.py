"""POST /jupyter-tune/check-dataset: jt.check_dataset's health report for files under the server's root, the
way the panel's "Check this dataset" asks for it (issue 37). No job, no model, no torch."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
import tornado.httpclient

from jupyter_tune.data.health import Finding, HealthReport
from tests.package.test_panel_types import TYPES_TS, interfaces, same_fields

pytest_plugins = ["pytest_jupyter.jupyter_server"]

LABELS = ["Cardiology", "Neurology", "Urology"]


@pytest.fixture
def jp_server_config(tune_home):
    return {"ServerApp": {"jpserver_extensions": {"jupyter_tune": True}}}


@pytest.fixture
def check(jp_fetch):
    async def _check(body, **kwargs) -> dict:
        reply = await jp_fetch("jupyter-tune", "check-dataset", method="POST", body=json.dumps(body), **kwargs)
        return json.loads(reply.body)
    return _check


async def refused(check, body, status: int) -> str:
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await check(body)
    assert info.value.code == status, info.value.response.body
    return json.loads(info.value.response.body)["message"]


def rows(n: int, offset: int = 0) -> list[dict]:
    return [{"input_text": f"Transcript {i}: the patient came back for visit {i} with new symptoms.",
             "output_text": LABELS[i % 3]} for i in range(offset, offset + n)]


def write_jsonl(path, data: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in data))


@pytest.fixture
def data_files(jp_root_dir):
    """train.jsonl (a duplicate and a conflict) and eval.jsonl (one training row leaked into it) in data/."""
    train = rows(12)
    train.append(dict(train[0]))                                   # line 13 repeats line 1
    train.append({**train[1], "output_text": "Cardiology"})        # line 14: line 2's input, another label
    write_jsonl(jp_root_dir / "data" / "train.jsonl", train)
    write_jsonl(jp_root_dir / "data" / "eval.jsonl", rows(5, offset=100) + [train[5]])
    return jp_root_dir / "data"


async def test_the_report_of_a_training_file_and_its_leakage_into_validation(check, data_files, jp_root_dir):
    report = await check({"path": "data/train.jsonl", "validation_path": "data/eval.jsonl"})
    assert report["rows"] == {"train": 14, "validation": 6}
    assert report["counts"]["duplicate"] == 1 and report["counts"]["conflict"] == 1
    assert report["counts"]["overlap"] == 1
    # Every file is named as the file browser shows it, never by the server's absolute path.
    assert report["sources"] == {"train": "data/train.jsonl", "validation": "data/eval.jsonl"}
    assert all(str(jp_root_dir) not in f["message"] for f in report["findings"])
    overlap = next(f for f in report["findings"] if f["kind"] == "overlap")
    assert overlap["severity"] == "warning" and "data/eval.jsonl" in overlap["message"]
    assert report["labels"]["train"] == {"Cardiology": 6, "Neurology": 4, "Urology": 4}
    # The reply is HealthReport's own JSON.
    assert HealthReport.from_json(report).warning_count == 2


async def test_csv_and_parquet_files_and_a_leading_slash(check, jp_root_dir):
    pd.DataFrame(rows(9)).to_csv(jp_root_dir / "rows.csv", index=False)
    pd.DataFrame(rows(9)).to_parquet(jp_root_dir / "rows.parquet")
    for name in ("rows.csv", "/rows.parquet"):
        report = await check({"path": name})
        assert report["rows"] == {"train": 9} and report["findings"] == []
        assert report["labels"]["train"] == {label: 3 for label in LABELS}
        assert report["sources"]["train"] == name.lstrip("/")


async def test_an_absolute_path_inside_the_root_is_taken(check, data_files):
    report = await check({"path": str(data_files / "train.jsonl")})
    assert report["sources"]["train"] == "data/train.jsonl"


async def test_refusals_name_the_field(check, data_files, jp_root_dir):
    assert "'path' must name a data file" in await refused(check, {}, 400)
    assert "'path' must name a data file" in await refused(check, {"path": 3}, 400)
    assert "Unknown field(s) in the request body: dataset" in await refused(check, {"dataset": "x"}, 400)
    assert "outside the server's root" in await refused(check, {"path": "../../etc/passwd"}, 400)
    assert "no file 'data/none.jsonl'" in await refused(check, {"path": "data/none.jsonl"}, 404)
    assert "'validation_path'" in await refused(
        check, {"path": "data/train.jsonl", "validation_path": "data/none.jsonl"}, 404)
    assert "is a folder" in await refused(check, {"path": "data"}, 400)
    (jp_root_dir / ".hidden").mkdir()
    write_jsonl(jp_root_dir / ".hidden" / "rows.jsonl", rows(3))
    assert "is hidden" in await refused(check, {"path": ".hidden/rows.jsonl"}, 400)
    assert "prompt_template" in await refused(check, {"path": "data/train.jsonl", "prompt_template": 1}, 400)


async def test_a_bad_file_is_refused_naming_its_line_without_the_servers_folder(check, jp_root_dir):
    (jp_root_dir / "bad.jsonl").write_text('{"input_text": "a", "output_text": "b"}\nnot json\n')
    message = await refused(check, {"path": "bad.jsonl"}, 400)
    assert "bad.jsonl, line 2" in message and str(jp_root_dir) not in message


async def test_it_needs_a_token(check, data_files):
    with pytest.raises(tornado.httpclient.HTTPClientError) as info:
        await check({"path": "data/train.jsonl"}, headers={"Authorization": ""})
    assert info.value.code == 403


def test_checking_a_dataset_never_imports_torch(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", rows(6))
    code = ("import sys; from jupyter_tune.server.routes import check_dataset_under;"
            "report = check_dataset_under(sys.argv[1], {'path': 'train.jsonl'});"
            "assert report['rows'] == {'train': 6}, report;"
            "heavy = [m for m in ('torch', 'transformers', 'peft') if m in sys.modules];"
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True)


def test_the_panels_types_match_the_report():
    ts = interfaces(TYPES_TS.read_text(encoding="utf-8"))
    report = HealthReport(findings=[Finding("duplicate", "info", "train", {"train": [1, 2]}, ["a"], "m")])
    sent = report.to_json()
    same_fields(ts, "IHealthReport", set(sent), "POST check-dataset (data/health.py HealthReport.to_json)")
    same_fields(ts, "IHealthFinding", set(sent["findings"][0]), "HealthReport.to_json's findings")
