"""What a command prints when it is done: a summary table on stderr, the JSON result on stdout;
``--json`` / ``--quiet`` (before or after the command) leave only the JSON."""

import json

from motion4d.cli import main
from motion4d.cli.summary import human_size, summary_table


def test_summary_lists_files_with_sizes_and_numbers(tiny_dynamic_data, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["reconstruct", str(tiny_dynamic_data), "--out", str(run), "--preset", "tiny", "--video-frames", "0", "--no-progress"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert "motion4d reconstruct: done" in captured.err
    table = captured.err[captured.err.index("motion4d reconstruct: done"):]
    assert str(run / "model.m4d") in table and "psnr" in table and f"{result['psnr']:.4g}" in table
    assert str(run / "checkpoints") + "/" in table  # folders fold into one line with their total size
    for flags in (["--json"], ["-q"]):
        assert main([*flags, "evaluate", str(run)]) == 0
        captured = capsys.readouterr()
        assert json.loads(captured.out)["split"] == "test" and captured.err == ""
    assert main(["evaluate", str(run), "--json"]) == 0  # after the command too
    captured = capsys.readouterr()
    assert json.loads(captured.out)["n_images"] > 0 and captured.err == ""


def test_sizes_and_tool_results(tmp_path):
    assert human_size(999) == "999 B" and human_size(1234) == "1.2 kB" and human_size(5_600_000) == "5.6 MB"
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x" * 2048)
    table = summary_table("render", {"video": str(video), "frames": 12})
    assert str(video) in table and "2.0 kB" in table and "frames" in table
