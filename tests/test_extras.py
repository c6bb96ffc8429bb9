"""`pip install genrad` without extras: genrad imports and `genrad data inspect` runs; a feature that needs an extra
refuses with one line naming it. A child process blocks the extras' packages, as a bare install lacks them."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from genrad.errors import EXTRAS

BLOCKED = (*sorted(set(EXTRAS)), "frd_score")

PRELUDE = textwrap.dedent(f"""
    import importlib.abc, sys

    class BlockExtras(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {BLOCKED!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None

    sys.meta_path.insert(0, BlockExtras())
""")


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(code)], capture_output=True, text=True, timeout=300,
                          check=False)


def test_genrad_imports_and_inspects_data_without_any_extra() -> None:
    done = _run("""
        import genrad, genrad.evaluation, genrad.evaluation.utility, genrad.evaluation.privacy, genrad.pipeline.run
        from genrad.cli.main import main
        main(["data", "inspect", "phantom", "--json"])
    """)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["splits"]["train"]["n"] > 0
    leaked = _run("import sys, genrad.cli.main, genrad.pipeline.run; print(sorted(m for m in sys.modules if m.split('.')[0] in "
                  f"{BLOCKED!r}))")
    assert leaked.stdout.strip() == "[]", leaked.stderr


def test_a_feature_without_its_extra_names_the_extra_to_install() -> None:
    done = _run("""
        from genrad.errors import InputError
        from genrad.synthesis.backends import import_ray
        from genrad.training.dp import make_private
        for call in (import_ray, lambda: make_private(None, None, None, epsilon=1.0, delta=1e-5, max_grad_norm=1.0, batch_size=8,
                                                      steps=10)):
            try:
                call()
            except InputError as error:
                print(error)
    """)
    lines = done.stdout.splitlines()
    assert done.returncode == 0 and len(lines) == 2, done.stderr
    assert "pip install 'genrad[distributed]' or use --backend local" in lines[0]
    assert "the optional package opacus" in lines[1] and "pip install 'genrad[privacy]'" in lines[1]
