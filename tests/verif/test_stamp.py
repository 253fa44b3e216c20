"""sparsecore.verif.stamp: what it records, how it renders; git state on a scratch repository."""

import subprocess

import numpy as np
import pytest

from sparsecore.verif.stamp import collect, git_state, markdown


def _git(root, *args):
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path):
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "config", "user.email", "t@example.com")
    _git(tmp_path, "config", "user.name", "t")
    (tmp_path / "src.py").write_text("a = 1\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "out.md").write_text("old\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "first")
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()
    return tmp_path, head


def test_git_state_clean_dirty_and_outputs(repo):
    root, head = repo
    assert git_state(root) == {"commit": head, "dirty": False, "changed": []}
    (root / "docs" / "out.md").write_text("regenerated\n")
    (root / "untracked.txt").write_text("x\n")
    # the generator's own output and untracked files do not make the tree dirty
    assert git_state(root, outputs=[root / "docs" / "out.md"])["dirty"] is False
    assert git_state(root)["changed"] == ["docs/out.md"]
    (root / "src.py").write_text("a = 2\n")
    state = git_state(root, outputs=[root / "docs" / "out.md"])
    assert state == {"commit": head, "dirty": True, "changed": ["src.py"]}


def test_git_state_outside_a_checkout(tmp_path):
    assert git_state(tmp_path)["commit"] is None


def test_collect_records_blas_simd_seeds_and_settings(monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    stamp = collect(seeds=range(3), settings={"epochs": 40})
    assert stamp["tools"]["numpy"] == np.__version__
    assert stamp["seeds"] == [0, 1, 2] and stamp["settings"] == {"epochs": 40}
    assert stamp["env"]["OPENBLAS_NUM_THREADS"] == "1"
    blas = [b for b in stamp["blas"] if b.get("api") == "blas"]
    assert blas and all(b["threads"] >= 1 for b in blas)  # numpy's BLAS, seen by threadpoolctl
    assert isinstance(stamp["numpy_simd"]["dispatched"], list)
    assert len(stamp["git"]["commit"]) == 40  # this checkout


def test_markdown_says_what_decided_the_numbers(repo):
    root, head = repo
    stamp = collect(seeds=[0, 1, 2, 3, 4], settings={"training": "40 epochs"})
    stamp["git"] = {"commit": head, "dirty": True, "changed": ["a.py", "b.py"]}
    stamp["env"] = {"OPENBLAS_CORETYPE": "Haswell"}
    text = "\n".join(markdown(stamp))
    assert text.startswith("## Stamp")
    assert f"`{head[:12]}` **dirty**: `a.py`, `b.py` changed" in text
    assert "Seeds: 0..4." in text and "training: 40 epochs." in text
    assert "`OPENBLAS_CORETYPE=Haswell`" in text
    assert f"numpy {np.__version__}" in text and "kernel" in text
    stamp["git"] = {"commit": head, "dirty": False, "changed": []}
    assert f"`{head[:12]}` (clean)" in "\n".join(markdown(stamp))
