"""The curation CLI's own commands: demo-data output."""

from __future__ import annotations

from pathlib import Path


def test_demo_data_streams_the_same_rows_as_generate(tmp_path: Path, monkeypatch, capsys) -> None:
    import jobs.demo.generator as demo_data
    from jobs.cli.curation import demo_data_command
    from jobs.demo.generator import generate, write_jsonl

    expected = tmp_path / "expected.jsonl"
    write_jsonl(generate(400, seed=3), expected)

    def no_list(*args, **kwargs):
        raise AssertionError("demo-data must stream rows, not build the whole list")

    monkeypatch.setattr(demo_data, "generate", no_list)
    out = tmp_path / "new" / "noisy.jsonl"
    demo_data_command(out=out, rows=400, seed=3)
    assert out.read_bytes() == expected.read_bytes()
    printed = " ".join(capsys.readouterr().out.split())
    assert "wrote 400 rows" in printed and "clean" in printed
