"""``scorer check`` on a cluster: the rendered one-pod workflow, the job file's errors, the pod's
command end to end against the real S3 fixture (reference, map and results in the bucket), and
submission through the loopback Argo Server."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from tests.spec_fixtures import smoke_with_scoring
from tests.test_argo_submit import TOKEN, ArgoServer, argo_server  # noqa: F401 - the fixture
from xdetox.cli.main import app
from xdetox.executors.argo import lint, schema
from xdetox.executors.argo.config import load_cluster_config
from xdetox.executors.argo.scorer_check import ScorerCheckJob, load_job, render_check
from xdetox.spec.errors import SpecError
from xdetox.store import open_store

ROOT = Path(__file__).resolve().parents[1]
CFG = str(ROOT / "argo" / "cluster-config.yaml")


def _job(tmp_path: Path, **fields: Any) -> Path:
    doc = {"name": "lex", "scoring": {"kind": "lexicon"}, "reference": "jsonl:s3://b/ref.jsonl",
           "results": "s3://b/checks/lex", **fields}
    p = tmp_path / "job.yaml"
    p.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return p


def _pod(wf: dict[str, Any]) -> dict[str, Any]:
    return next(t for t in wf["spec"]["templates"] if t["name"] == "scorer-check")


def test_rendered_pod_follows_the_scorer_kind(tmp_path: Path) -> None:
    cfg = load_cluster_config(Path(CFG))
    lex = render_check(load_job(_job(tmp_path, languages=["en", "de"], fit_calibration=True)), cfg)
    assert schema.errors(lex) == [] and lint.lint(lex) == []
    pod = _pod(lex)
    args = pod["container"]["args"]
    assert pod["container"]["command"] == ["xdetox", "scorer", "check"]
    assert args[args.index("--languages") + 1] == "en,de" and "--fit-calibration" in args
    params = {p["name"]: p["value"] for p in lex["spec"]["arguments"]["parameters"]}
    decoded = json.loads(base64.b64decode(params["scoring"]))
    assert decoded["kind"] == "lexicon" and decoded == load_job(_job(tmp_path)).scoring.model_dump(mode="json")
    assert "nvidia.com/gpu" not in pod["container"]["resources"]["requests"]  # lexicon: a CPU pod
    assert pod["metadata"]["labels"]["xdetox.io/role"] == "score-cpu"
    assert pod["metadata"]["labels"]["xdetox.io/image"] == "score"

    clf = _pod(render_check(load_job(_job(tmp_path, scoring={"kind": "classifier", "model": "s3://m/x",
                                                              "toxic_label": "toxic"})), cfg))
    assert clf["container"]["resources"]["requests"]["nvidia.com/gpu"] == "1"
    assert clf["metadata"]["labels"]["xdetox.io/role"] == "score-gpu"

    per = _pod(render_check(load_job(_job(tmp_path, scoring={"kind": "perspective"})), cfg))
    env = {e["name"] for e in per["container"]["env"]}
    assert "PERSPECTIVE_API_KEY" in env  # the API key from the cluster's secret, never a value
    keys = [s["configMapKeyRef"]["key"] for s in per["synchronization"]["semaphores"]]
    assert keys == ["perspective-api"]  # one quota across pods and workflows


@pytest.mark.parametrize(("fields", "where", "says"), [
    ({"reference": "jsonl:/data/ref.jsonl"}, "reference", "a pod reads only the bucket"),
    ({"reference": "rtplx:s3://b/rtplx/", "fit_calibration": True}, "", "RTP-LX is for evaluation only"),
    ({"results": "file:///tmp/x"}, "results", "s3://bucket/prefix"),
    ({"scoring": {"kind": "lexicon", "calibration": "maps/m.json"}}, "scoring", "give an s3:// URI"),
    ({"scoring": {"kind": "lexicn"}}, "scoring", "lexicn"),
])
def test_bad_jobs_name_the_field(tmp_path: Path, fields: dict[str, Any], where: str, says: str) -> None:
    with pytest.raises(SpecError) as e:
        load_job(_job(tmp_path, **fields))
    text = "\n".join(p.render(None) for p in e.value.problems)
    assert says in text and text.startswith(where)


def test_cli_render_check_and_bad_job_exit_2(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["argo", "render-check", str(_job(tmp_path)), "-o", str(tmp_path / "out"),
                                   "--cluster-config", CFG])
    assert res.exit_code == 0, res.output
    wf = yaml.safe_load((tmp_path / "out" / "workflow.yaml").read_text())
    assert wf["kind"] == "Workflow" and _pod(wf)["container"]["command"] == ["xdetox", "scorer", "check"]
    bad = _job(tmp_path, reference="jsonl:ref.jsonl")
    res = CliRunner().invoke(app, ["argo", "render-check", str(bad), "-o", str(tmp_path / "o2")])
    assert res.exit_code == 2 and "reference" in res.output and "Traceback" not in res.output


def test_pod_command_reads_and_writes_the_bucket(tmp_path: Path, s3_store_uri: str) -> None:
    store = open_store(s3_store_uri)
    lines = [{"text": "fucking" if i % 2 else f"a calm sentence {i}", "language": "en",
              "reference": 0.8 if i % 2 else 0.1} for i in range(20)]
    store.put_bytes("ref.jsonl", "".join(json.dumps(x) + "\n" for x in lines).encode())
    scoring = base64.b64encode(json.dumps({"kind": "lexicon"}).encode()).decode()
    res = CliRunner().invoke(app, ["scorer", "check", "--scoring-b64", scoring, "--reference",
                                   f"jsonl:{s3_store_uri}/ref.jsonl", "--results", f"{s3_store_uri}/out",
                                   "--resamples", "20", "--fit-calibration", str(tmp_path / "calibration-map.json")])
    assert res.exit_code == 0, res.output
    # no terminal (a pod's log): progress as lines with rate and ETA
    assert "scored 20/20 (100%)" in res.output and "ETA 0:00:00" in res.output
    check = json.loads(store.get_bytes("out/check.json"))
    # hits 1 on the ten toxic texts (reference .8), 0 on the ten others (.1): perfectly ranked
    assert check["languages"]["en"]["auroc"] == pytest.approx(1.0) and check["scale"] == "raw"
    rows = [json.loads(x) for x in store.get_bytes("out/rows.jsonl").decode().splitlines()]
    assert [r["score"] for r in rows[:4]] == [0, 1, 0, 1]
    cmap = json.loads(store.get_bytes("out/calibration-map.json"))
    assert cmap["languages"]["en"]["map"] == {"x": [0.0, 1.0], "y": [pytest.approx(0.1), pytest.approx(0.8)]}

    bad = CliRunner().invoke(app, ["scorer", "check", "--scoring-b64", "%%%", "--reference", "jsonl:x"])
    assert bad.exit_code == 2 and "--scoring-b64" in bad.output


def test_bad_row_of_an_s3_reference_is_named_by_uri_and_line(s3_store_uri: str) -> None:
    store = open_store(s3_store_uri)
    store.put_bytes("refs/bad.jsonl", (json.dumps({"text": "a calm sentence", "language": "en", "reference": 0.1})
                                       + "\n" + json.dumps({"text": "you", "language": "en", "reference": None})
                                       + "\n").encode())
    scoring = base64.b64encode(json.dumps({"kind": "lexicon"}).encode()).decode()
    res = CliRunner().invoke(app, ["scorer", "check", "--scoring-b64", scoring, "--reference",
                                   f"jsonl:{s3_store_uri}/refs/bad.jsonl", "--no-progress"])
    assert res.exit_code == 2, res.output
    assert f"{s3_store_uri}/refs/bad.jsonl:2: field 'reference' must be a number" in res.output
    assert "Traceback" not in res.output


def test_rtplx_reference_from_an_s3_prefix(s3_store_uri: str) -> None:
    from xdetox.scoring.reference import load_reference

    store = open_store(s3_store_uri)
    rows = [{"Prompt": f"en prompt {i}", "Completion": "", "Index": i, "Locale": "EN", "Dialect": "",
             "Annotations": {"Toxicity": 1.0 + i}, "AnnotationsRaw": {"Toxicity": [1, 1, 1]}} for i in range(3)]
    store.put_bytes("rtp-lx-v0.2/RTP_LX_EN.json", "".join(json.dumps(r) + "\n" for r in rows).encode())
    kind, items = load_reference(f"rtplx:{s3_store_uri}/rtp-lx-v0.2/")
    assert kind == "rtplx" and [(i.language, i.text, i.reference) for i in items] == [
        ("en", "en prompt 0", 1.0), ("en", "en prompt 1", 2.0), ("en", "en prompt 2", 3.0)]


def test_submit_check_via_argo_server(argo_server: ArgoServer, tmp_path: Path) -> None:  # noqa: F811
    res = CliRunner().invoke(app, ["argo", "submit-check", str(_job(tmp_path)), "--cluster-config", CFG])
    assert res.exit_code == 0, res.output
    assert "submitted check-lex-abcde" in res.output and TOKEN not in res.output
    (req,) = argo_server.requests
    assert req["path"] == "/api/v1/workflows/xdetox"
    assert req["body"]["workflow"] == render_check(load_job(_job(tmp_path)), load_cluster_config(Path(CFG)))


def test_job_reference_may_be_a_bare_jsonl_uri(tmp_path: Path) -> None:
    assert load_job(_job(tmp_path, reference="s3://b/refs/ptp.jsonl")).reference == "s3://b/refs/ptp.jsonl"
    with pytest.raises(SpecError):
        load_job(_job(tmp_path, reference="/data/ref.jsonl"))  # a local path: the pod cannot read it


def test_job_model_defaults() -> None:
    job = ScorerCheckJob.model_validate({"name": "x", "scoring": {"kind": "lexicon"},
                                         "reference": "jsonl:s3://b/k", "results": "s3://b/out"})
    assert job.resamples == 1000 and job.fit_calibration is False and job.resources.gpu == 1


def test_cluster_run_refuses_a_local_calibration_map(tmp_path: Path) -> None:
    from tests.test_calibration_apply import EN, write_map

    path = write_map(tmp_path / "m.json", {"en": EN})
    spec = tmp_path / "spec.yaml"
    spec.write_text(smoke_with_scoring(f"scoring:\n  kind: lexicon\n  calibration: {path}\n")
                    .replace("store: file://./xdetox-store", "store: s3://b/x"), encoding="utf-8")
    res = CliRunner().invoke(app, ["argo", "render", str(spec), "-o", str(tmp_path / "out"), "--cluster-config", CFG])
    assert res.exit_code == 2, res.output
    assert "scoring.calibration" in res.output and "read only the bucket" in res.output
