"""The panel's TypeScript types (labextension/src/types.ts) against what the Python side sends.

types.ts copies the REST shapes by hand; this test fails, naming the field and the file, when a field is
added on one side and not the other. It reads types.ts with a small parser rather than the TypeScript
compiler: the file holds only ``export interface`` blocks of ``name?: type;`` members, and a Python test
needs neither node nor a build for that. The Python side is the functions that build the responses
(torch-free, the server calls them), so nothing here repeats a field list.
"""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest

from jupyter_tune.cells.render import actions, render_cells
from jupyter_tune.jobs.shapes import JobRecord, Progress
from jupyter_tune.jobs.states import JobState, states_schema
from jupyter_tune.jobs.store import JobStore
from jupyter_tune.server.routes import full_schema

LABEXTENSION_SRC = Path(__file__).resolve().parents[2] / "labextension" / "src"
TYPES_TS = LABEXTENSION_SRC / "types.ts"
NAME = "labextension/src/types.ts"  # in messages
_OPEN, _CLOSE = "{[(<", "}])>"


def _block(text: str, start: int) -> str:
    """The text from `start` (just after an opening brace) to its closing brace."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] in _OPEN:
            depth += 1
        elif text[i] in _CLOSE:
            if depth == 0:
                return text[start:i]
            depth -= 1
    raise AssertionError(f"{NAME}: unbalanced braces after offset {start}")


def members(body: str) -> dict[str, tuple[bool, str]]:
    """``{name: (optional, type text)}`` of an interface or inline object body; index signatures are left out."""
    pieces, depth, current = [], 0, []
    for ch in body:
        depth += (ch in _OPEN) - (ch in _CLOSE)
        if depth == 0 and ch in ";\n":
            pieces.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    pieces.append("".join(current).strip())
    out: dict[str, tuple[bool, str]] = {}
    last = None
    for piece in filter(None, pieces):
        m = re.fullmatch(r"(\w+)(\??)\s*:\s*(.*)", piece, flags=re.S)
        if m:
            last = m.group(1)
            out[last] = (bool(m.group(2)), m.group(3).strip())
        elif not piece.startswith("[") and last is not None:  # a type continued on the next line
            optional, kind = out[last]
            out[last] = (optional, f"{kind} {piece}")
    return out


def interfaces(text: str) -> dict[str, dict[str, tuple[bool, str]]]:
    """Every ``export interface`` of `text`, with the members of the interface it extends."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    found: dict[str, dict[str, tuple[bool, str]]] = {}
    for m in re.finditer(r"export interface (\w+)(?:\s+extends\s+(\w+))?\s*\{", text):
        found[m.group(1)] = {**(found[m.group(2)] if m.group(2) else {}), **members(_block(text, m.end()))}
    return found


def literals(kind: str) -> set[str]:
    """The string literals of a union type such as ``'code' | 'markdown'``."""
    return set(re.findall(r"'([^']*)'", kind))


@pytest.fixture(scope="module")
def ts() -> dict[str, dict[str, tuple[bool, str]]]:
    return interfaces(TYPES_TS.read_text(encoding="utf-8"))


def same_fields(ts: dict, interface: str, sent: set[str], source: str) -> None:
    declared = set(ts[interface])
    missing, extra = sorted(sent - declared), sorted(declared - sent)
    assert not missing, f"{NAME}: interface {interface} lacks {missing}, which {source} sends"
    assert not extra, f"{NAME}: interface {interface} declares {extra}, which {source} does not send"


def test_the_parser_reads_members_optional_marks_and_inline_objects():
    found = interfaces("/** doc */\nexport interface IA {\n  a: string; // note\n  b?: 'x' | 'y';\n"
                       "  c: { d?: number; e: string | null };\n  [key: string]: unknown;\n}\n"
                       "export interface IB extends IA {\n  f: number;\n}\n")
    assert found["IA"] == {"a": (False, "string"), "b": (True, "'x' | 'y'"),
                           "c": (False, "{ d?: number; e: string | null }")}
    assert set(found["IB"]) == {"a", "b", "c", "f"}
    assert set(members(found["IA"]["c"][1][1:-1])) == {"d", "e"}


def test_the_schema_matches_ischema_ijobstates_and_iparameter(ts):
    schema = full_schema()
    same_fields(ts, "ISchema", set(schema), "GET /jupyter-tune/schema (server/routes.py full_schema)")
    same_fields(ts, "IJobStates", set(states_schema()), "jobs/states.py states_schema")
    params = schema["parameters"] + schema["action_parameters"]
    for p in params:
        same_fields(ts, "IParameter", set(p), f"the schema's parameter {p['name']!r} (params.py)")
    types = literals(ts["IParameter"]["type"][1])
    unknown = sorted({p["type"] for p in params} - types)
    assert not unknown, f"{NAME}: IParameter.type lacks {unknown}, which params.py's schema uses"


def test_actions_and_cells_match_iaction_and_icell(ts):
    for action in actions():
        same_fields(ts, "IAction", set(action), f"GET templates' action {action['id']!r} (cells/render.py)")
    jobs = {a["job"] for a in actions()}
    assert jobs <= literals(ts["IAction"]["job"][1]), f"{NAME}: IAction.job lacks {jobs}"
    cells = render_cells("tune", {"base_model": "m", "train_dataset": "d.jsonl"}, JobStore("/nonexistent"))
    for cell in cells:
        same_fields(ts, "ICell", set(cell), "POST cells (cells/render.py render_cells)")
    kinds = {c["cell_type"] for c in cells}
    assert kinds <= literals(ts["ICell"]["cell_type"][1]), f"{NAME}: ICell.cell_type lacks {kinds}"


def test_the_job_list_matches_ijobsummary(ts, tmp_path):
    store = JobStore(tmp_path)
    record: JobRecord = {"id": "a-job", "state": JobState.RUNNING, "params": {"base_model": "m"},
                         "progress": {"step": 1}}
    sent = set(store.summary(record)) | set(store.summary(store.unreadable_record("b-job", "a reason")))
    same_fields(ts, "IJobSummary", sent, "GET jobs (jobs/store.py JobStore.summary)")


def test_the_job_json_blocks_the_panel_reads_exist(ts):
    """job.json's blocks hold more than the panel reads: each field the panel declares must exist there."""
    progress = members(ts["IJobSummary"]["progress"][1].strip()[1:-1])
    extra = sorted(set(progress) - set(typing.get_type_hints(Progress)))
    assert not extra, f"{NAME}: IJobSummary.progress declares {extra}, not in jobs/shapes.py Progress"
    own = set(ts["IJobDetail"]) - set(ts["IJobSummary"])
    extra = sorted(own - set(typing.get_type_hints(JobRecord)) - {"latest_metrics"})
    assert not extra, f"{NAME}: IJobDetail declares {extra}, not in job.json (jobs/shapes.py JobRecord)"


def test_the_panel_spells_only_real_state_names():
    """The states come from GET schema; a name spelled in the panel's code must still be one of them."""
    for path in sorted(LABEXTENSION_SRC.glob("*.ts")):
        for name in re.findall(r"JOB_STATE_[A-Z_]*[A-Z]", path.read_text(encoding="utf-8")):
            assert name in {s.value for s in JobState}, f"{path}: {name} is not a JobState (jobs/states.py)"
