"""A new method is one file: found in the methods folder or through an entry point, with no edit elsewhere.

The method file is tests/helpers/row_scale_method.py (the README's example), copied into temporary packages;
the real ``methods/`` folder is never written. Each test works on a copy of the registry's state.
"""

from __future__ import annotations

import ast
import importlib
import re
import shutil
import sys
import uuid
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM

import gatera_lab.methods
from gatera_lab import ConfigError, adapter_layers, build_method, register_method
from gatera_lab.adapters.adapter_method import AdapterMethod
from gatera_lab.cli import main
from gatera_lab.export import load_adapter
from gatera_lab.registry import discover_methods, registry_entries
from tests.conftest import ROW_SCALE_METHOD_FILE
from tests.helpers.method_checks import (
    MATRIX_CHECKS,
    check_export_round_trip,
    check_trainable_parameters,
    method_cases,
)
from tests.helpers.tiny_cli_args import method_yaml_args

ROOT = Path(__file__).parents[1]


def test_a_new_file_in_the_methods_folder_is_registered_with_its_gated_twin(dropped_method, capsys):
    entries = registry_entries()
    assert entries["row_scale"].defaults == {"gate": False}
    assert entries["row_scale_gate"].method_class is dropped_method
    assert entries["row_scale_gate"].defaults == {"gate": True}
    assert build_method("row_scale_gate").name == "row_scale_gate"
    assert gatera_lab.methods.RowScale is dropped_method  # the short class path resolves too
    assert main(["methods"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    class_path = f"{dropped_method.__module__}.RowScale"
    assert class_path in rows["row_scale"] and class_path in rows["row_scale_gate"]
    assert "RowScale: W0 x + s d ⊙ W0 x, with a per-token GateRA gate" in rows["row_scale_gate"]


def test_a_new_file_in_the_methods_folder_passes_the_method_matrix(dropped_method, token_batch, tmp_path):
    cases = [case for case in method_cases() if case.method_class is dropped_method]
    assert [case.id for case in cases] == ["row_scale", "row_scale_gate"]
    for case in cases:
        assert case.mergeable != case.gate
        for check in MATRIX_CHECKS:
            check(case, token_batch)
        check_trainable_parameters(case)
        check_export_round_trip(case, token_batch, tmp_path / case.id)


def test_a_new_method_works_from_yaml_with_checkpoint_export_and_gate_heatmap(
    dropped_method, tiny_model_dir, instruction_file, tmp_path
):
    class_path = f"{dropped_method.__module__}.RowScale"
    init_args = {"gate": True, "alpha": 2.0, "target_modules": ["down_proj", "v_proj"]}
    args = method_yaml_args(tiny_model_dir, instruction_file, tmp_path, class_path, init_args)
    limits = ["--trainer.max_steps", "2", "--trainer.max_epochs", "1", "--trainer.limit_val_batches", "1"]
    assert main([*args, *limits]) == 0
    (checkpoint,) = (tmp_path / "lightning_logs" / "version_0" / "checkpoints").glob("*.ckpt")

    assert main(["export", "--ckpt", str(checkpoint), "--out", str(tmp_path / "adapter")]) == 0
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    method = load_adapter(model, tmp_path / "adapter")
    assert type(method) is dropped_method and method.name == "row_scale_gate" and method.alpha == 2.0
    layers = [layer for _, layer in adapter_layers(model)]
    assert len(layers) == 4 and all(layer.token_gate is not None for layer in layers)
    assert any(layer.row_scale.abs().sum() > 0 for layer in layers)  # the trained values came back

    heatmap = tmp_path / "gates.png"
    gates = ["gates", "--ckpt", str(checkpoint), "--prompt", "ab", "--out", str(heatmap)]
    assert main([*gates, "--max-new-tokens", "2"]) == 0
    assert heatmap.stat().st_size > 0


# ------------------------------------------------------------------------------------- entry points
def install_plugin(root: Path, monkeypatch, isolated_registry: list[str], target: str) -> str:
    """A package ``root/<name>/`` holding the method file and a dist-info folder declaring ``target``."""
    package = f"gatera_plugin_{uuid.uuid4().hex[:8]}"
    isolated_registry.append(package)
    (root / package).mkdir()
    (root / package / "__init__.py").write_text("")
    shutil.copy(ROW_SCALE_METHOD_FILE, root / package / "row_scale.py")
    dist_info = root / f"{package}-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(f"[gatera_lab.methods]\nrow_scale = {package}.{target}\n")
    monkeypatch.syspath_prepend(str(root))
    importlib.invalidate_caches()
    return package


@pytest.mark.parametrize("target", ["row_scale", "row_scale:RowScale"], ids=["module", "class"])
def test_an_installed_package_plugs_in_through_an_entry_point(
    target, tmp_path, monkeypatch, isolated_registry
):
    package = install_plugin(tmp_path, monkeypatch, isolated_registry, target)
    assert f"{package}.row_scale" not in sys.modules
    entries = registry_entries()  # the first use in a process discovers it
    assert entries["row_scale"].method_class.__module__ == f"{package}.row_scale"
    assert entries["row_scale_gate"].method_class is entries["row_scale"].method_class
    assert isinstance(build_method("row_scale_gate", alpha=3.0), entries["row_scale"].method_class)
    discover_methods()  # again, e.g. after another install: nothing is imported twice
    assert registry_entries()["row_scale"] == entries["row_scale"]


def test_an_entry_point_that_cannot_load_is_a_clear_error(tmp_path, monkeypatch, isolated_registry, capsys):
    package = install_plugin(tmp_path, monkeypatch, isolated_registry, "no_such_module")
    with pytest.raises(
        ConfigError, match=rf"entry point 'row_scale' = '{package}\.no_such_module'.*'{package}'"
    ):
        registry_entries()
    assert main(["methods"]) == 2
    error = capsys.readouterr().err
    assert (
        error.startswith("gatera-lab: error: ")
        and "'gatera_lab.methods'" in error
        and "Traceback" not in error
    )


def test_a_name_taken_by_another_class_is_refused(isolated_registry):
    existing = next(iter(registry_entries().values()))

    def define_mine() -> type[AdapterMethod]:
        class Mine(AdapterMethod):
            pass

        return Mine

    with pytest.raises(ConfigError, match=rf"{existing.name!r} of .*Mine is already registered by"):
        register_method(existing.name)(define_mine())
    assert registry_entries()[existing.name] == existing
    register_method("mine", gated_name="mine_gate")(define_mine())
    again = register_method("mine", gated_name="mine_gate")(define_mine())  # the same class re-imported: fine
    assert registry_entries()["mine_gate"].method_class is again


def test_an_unknown_short_class_path_is_an_attribute_error():
    with pytest.raises(AttributeError, match="NoSuchMethod"):
        gatera_lab.methods.NoSuchMethod  # noqa: B018


def test_the_registry_imports_only_the_standard_library_and_errors_at_module_level():
    tree = ast.parse((ROOT / "gatera_lab" / "registry.py").read_text())
    imported = set()
    for node in tree.body:  # module level; `if TYPE_CHECKING:` blocks are not imports at run time
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
    outside = {name for name in imported if name.split(".")[0] not in sys.stdlib_module_names}
    assert outside == {"gatera_lab.errors"}


def test_the_readme_shows_the_method_file():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Your own method") :]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    code = ROW_SCALE_METHOD_FILE.read_text()
    assert blocks and blocks[0].strip() == code[code.index("from __future__") :].strip()


def test_the_methods_package_lists_no_method():
    tree = ast.parse(Path(gatera_lab.methods.__file__).read_text())
    modules = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    modules += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    assert not [name for name in modules if name.startswith("gatera_lab.methods")]
