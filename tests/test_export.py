"""The scripts in scripts/ are exactly what their chapter notebooks export."""

from __future__ import annotations

import shutil
import subprocess
import sys

import nbformat
import pytest

from regnet_tutorial.util import export


@pytest.mark.slow  # a fresh interpreter importing torch: a few seconds
def test_committed_scripts_match_their_notebooks():
    result = subprocess.run([sys.executable, "-m", "regnet_tutorial.util.export", "--check"],
                            cwd=export.REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _copy_repo_parts(tmp_path):
    for script, notebook in export.EXPORTS.items():
        for rel in (script, notebook):
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(export.REPO_ROOT / rel, tmp_path / rel)


def test_a_changed_exported_cell_makes_the_check_fail(tmp_path, capsys):
    _copy_repo_parts(tmp_path)
    notebook = tmp_path / export.EXPORTS["scripts/train.py"]
    nb = nbformat.read(notebook, as_version=4)
    cell = next(c for c in nb.cells if "export" in c.metadata.get("tags", []) and "def parse_args" in c.source)
    cell.source = cell.source.replace('"--config"', '"--recipe"')
    nbformat.write(nb, notebook)
    assert export.main(["--check", "--root", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    removed = [line for line in out.splitlines() if line.startswith("-") and '"--config"' in line]
    added = [line for line in out.splitlines() if line.startswith("+") and '"--recipe"' in line]
    assert len(removed) == len(added) == 1  # the diff shows exactly the changed flag
    assert "make scripts" in err
    # Regenerating fixes it, and the script then carries the change.
    assert export.main(["--root", str(tmp_path)]) == 0
    assert export.export_all(tmp_path, check=True) == []
    assert '"--recipe"' in (tmp_path / "scripts/train.py").read_text()


def test_untagged_cells_stay_out_and_the_header_says_generated():
    source = export.exported_source(export.REPO_ROOT / export.EXPORTS["scripts/train.py"])
    assert source.startswith("# Generated from 05_training_with_accelerate.ipynb by `make scripts`")
    assert "environment_report" not in source  # the notebook's first (demo) cell
    assert "FULL_RUN" not in source
    assert source.rstrip().endswith('if __name__ == "__main__":\n    main()')
    compile(source, "train.py", "exec")


def test_notebook_syntax_in_an_exported_cell_is_rejected(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("%matplotlib inline\ndef main():\n    pass", metadata={"tags": ["export"]})]
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(export.ExportError, match="IPython syntax"):
        export.exported_source(path)
    nb.cells = [nbformat.v4.new_code_cell("x = 1")]
    nbformat.write(nb, path)
    with pytest.raises(export.ExportError, match="no code cell tagged"):
        export.exported_source(path)
