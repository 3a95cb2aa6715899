"""The README's library example runs as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_library_example_runs(tmp_path, monkeypatch, capsys):
    section = README.read_text().split("## Use it as a library", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert (tmp_path / "dann.pt").exists()
    accuracy = float(capsys.readouterr().out.split("target accuracy")[1])
    assert accuracy > 0.9  # adaptation pays off: SourceOnly with the same settings scores 0.833
    assert (namespace["same"].predict(namespace["xt"]) == namespace["y_hat"]).all()


def test_source_free_example_runs(capsys):
    section = README.read_text().split("### Source-free and test-time adaptation", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    source, shot, tent = (float(v) for v in re.findall(r"(\d\.\d+)", capsys.readouterr().out))
    assert shot > source + 0.1 and tent > source + 0.05  # adapted without a single source example


def test_few_labels_example_runs(capsys):
    section = README.read_text().split("### A few target labels", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    exec(compile(code, "README.md", "exec"), {})
    source, finetuned, mme, alone = (float(v) for v in re.findall(r"(\d\.\d+)", capsys.readouterr().out))
    assert finetuned > source and finetuned > alone + 0.05  # 5 labels per class: the source model is worth it
    assert mme > alone
