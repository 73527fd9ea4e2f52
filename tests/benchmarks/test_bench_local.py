"""`hdfs-csi bench` end to end in local mode (no HDFS needed), and the report pieces."""

import json

import pytest
from bench_kit import check_document

from benchmarks import report
from benchmarks.scenarios import NAMES, ScenarioResult
from benchmarks.stats import Recorder
from benchmarks.cli import config_from_args
from hdfs_csi.cli import build_parser, main


@pytest.mark.timeout(180)
def test_local_only_run_writes_table_json_and_png(tmp_path, capsys):
    out_json, out_png = tmp_path / "r.json", tmp_path / "r.png"
    rc = main(["bench", "--quick", "--scale", "0.1", "--modes", "local", "--workers", "1",
               "--batch-size", "8", "--compute-ms", "2", "--data-dir", str(tmp_path / "data"),
               "--json", str(out_json), "--plot", str(out_png), "--no-progress"])
    assert rc == 0
    table = capsys.readouterr().out
    for name in NAMES:
        assert f"\n{name} " in table
    doc = json.loads(out_json.read_text())
    by_key = check_document(doc, list(NAMES), ["local"], allow_skip={"dataloader"})
    dl = by_key[("dataloader", "local")]
    if dl["status"] == "ok":
        au = dl["metrics"]["accel_utilisation"]
        assert 0 < au <= 1.0
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {d["action"] for d in doc["datasets"]} == {"generated"}

    # a second run reuses the dataset
    rc = main(["bench", "--quick", "--scale", "0.1", "--modes", "local", "--scenarios", "seq",
               "--data-dir", str(tmp_path / "data"), "--json", str(out_json),
               "--plot", str(out_png), "--no-progress"])
    assert rc == 0
    assert {d["action"] for d in json.loads(out_json.read_text())["datasets"]} == {"reused"}


def test_prepare_only_measures_nothing(tmp_path, capsys):
    rc = main(["bench", "--quick", "--scale", "0.05", "--modes", "local", "--scenarios", "meta",
               "--prepare", "--data-dir", str(tmp_path), "--no-progress"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "meta: generated" in out and "MB/s" not in out


def test_bad_scenario_name_is_rejected(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "--scenarios", "seq,bogus"])
    assert "choose from" in capsys.readouterr().err


def _ok(scenario, mode, mbps, wall=1.0):
    rec = Recorder(bytes=int(mbps * 1e6 * wall), files=10, ops=10)
    rec.latencies_s = [0.001, 0.002]
    rec.ttfb_s = [0.001]
    rec._t0, rec._t1 = 0.0, wall
    return ScenarioResult.ok(scenario, mode, rec)


def test_report_ratios_table_and_json_handle_skips_and_errors(tmp_path):
    results = [
        _ok("seq", "local", 200.0), _ok("seq", "direct", 100.0), _ok("seq", "mount-cold", 50.0),
        ScenarioResult("seq", "mount-warm", "error", reason="EIO on read"),
        ScenarioResult("dataloader", "local", "skipped", reason="PyTorch is not installed"),
    ]
    rat = report.ratios(results)
    assert rat[("seq", "mount-cold")] == {"to_direct": 0.5, "to_local": 0.25}
    assert rat[("seq", "mount-warm")]["to_direct"] is None
    table = report.format_table(results)
    assert "error: EIO on read" in table and "skipped: PyTorch is not installed" in table
    assert "0.50" in table and "0.25" in table
    assert "| seq | mount-cold |" in report.markdown_table(results)
    doc = report.build_document(results, environment={}, options={}, datasets=[],
                                scenarios=["seq", "dataloader"], modes=["local"],
                                started_at="t0", finished_at="t1", duration_s=float("nan"))
    report.write_json(str(tmp_path / "d.json"), doc)  # allow_nan=False: would raise on NaN
    back = json.loads((tmp_path / "d.json").read_text())
    assert back["duration_s"] is None
    assert back["results"][2]["ratio_to_direct"] == 0.5
    report.plot(str(tmp_path / "p.png"), results)
    assert (tmp_path / "p.png").stat().st_size > 1000


def test_document_round_trips_to_the_same_markdown(tmp_path, capsys):
    results = [_ok("seq", "local", 200.0), _ok("seq", "direct", 100.0),
               ScenarioResult("dataloader", "local", "skipped", reason="no torch")]
    results[0].metrics.extra["note"] = 1
    doc = report.build_document(results, environment={}, options={}, datasets=[],
                                scenarios=["seq"], modes=["local", "direct"], started_at="a",
                                finished_at="b", duration_s=1.0)
    path = tmp_path / "d.json"
    report.write_json(str(path), doc)
    assert report.main([str(path)]) == 0
    assert capsys.readouterr().out.strip() == report.markdown_table(results)


def test_progress_bars_go_to_stderr_and_can_be_off(capsys):
    bar = report.progress_factory(True)("seq mount-cold", 10, "file")
    bar.update(10)
    bar.close()
    out, err = capsys.readouterr()
    assert "seq mount-cold" in err and out == ""
    off = report.progress_factory(False)("seq mount-cold", 10, "file")
    off.update(10)
    off.close()
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("argv, message", [
    (["--kerberos-principal", "hdfs/nn@REALM"], "go together"),
    (["--mountpoint", "/x", "--hdfs-uri", "hdfs://nn:8020"], "not both"),
    (["--workers", "-1"], "--workers"),
])
def test_contradictory_flags_are_refused(argv, message):
    with pytest.raises(SystemExit, match=message):
        main(["bench", "--quick", *argv])


def test_mountpoint_must_exist_and_be_a_mount(tmp_path):
    """A wrong --mountpoint used to be created and filled with benchmark data, its
    local-disk numbers reported as the mount's."""
    missing = tmp_path / "nonexistent"
    with pytest.raises(SystemExit, match="does not exist"):
        main(["bench", "--quick", "--mountpoint", str(missing)])
    assert not missing.exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(SystemExit, match="is not a directory"):
        main(["bench", "--quick", "--mountpoint", str(tmp_path / "file")])
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(SystemExit, match="is not a mount point"):
        main(["bench", "--quick", "--mountpoint", str(plain)])
    assert list(plain.iterdir()) == []
    args = build_parser("bench").parse_args(
        ["bench", "--quick", "--mountpoint", str(plain), "--allow-plain-directory"])
    assert config_from_args(args).mountpoint == str(plain)
