"""The README's Python example runs as written, from the repository root."""

import re

from conftest import SOURCE_DIR


def test_the_readme_python_example_runs(monkeypatch, capsys):
    readme = (SOURCE_DIR / "README.md").read_text()
    section = readme.split("### Python\n", 1)[1]
    example = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert len(example.strip().splitlines()) == 5
    monkeypatch.chdir(SOURCE_DIR)
    exec(compile(example, "README.md", "exec"), {})  # noqa: S102 - our own README
    out = capsys.readouterr().out
    # 24 GiB - 4 GiB = 20 GiB = 21474836480 bytes left on the RTX 5090.
    assert out.startswith("gpu:0 21474836480\n")
    assert "smallest that fits" in out
