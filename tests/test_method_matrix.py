"""Generic behaviour every method must have: each registered method and the user method of
tests/helpers/user_method.py, ungated and gated. A newly registered method is tested here automatically; the
expectations come from the method itself (see tests/helpers/method_checks.py), not from a list of names.
"""

from __future__ import annotations

import pytest

from gatera_lab import adapter_layers, build_method, registry_entries
from tests.conftest import make_tiny_llama
from tests.helpers.method_checks import (
    MATRIX_CHECKS,
    check_export_round_trip,
    check_trainable_parameters,
    method_cases,
)

CASES = method_cases()
IDS = [case.id for case in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize(
    "check", MATRIX_CHECKS, ids=[check.__name__.removeprefix("check_") for check in MATRIX_CHECKS]
)
def test_method_contract(check, case, token_batch):
    check(case, token_batch)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_trainable_parameters_are_what_init_parameters_makes(case):
    check_trainable_parameters(case)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_export_round_trip(case, token_batch, tmp_path):
    check_export_round_trip(case, token_batch, tmp_path / "adapter")


def test_the_matrix_covers_every_registered_name_and_the_user_method():
    assert set(registry_entries()) <= set(IDS)
    assert {"OutputShift", "OutputShift+gate"} <= set(IDS)
    assert {case.gate for case in CASES} == {False, True}


@pytest.mark.parametrize("name", list(registry_entries()))
def test_a_registered_name_builds_its_class_with_its_gate_setting(name):
    entry = registry_entries()[name]
    method = build_method(name, r=2)
    assert type(method) is entry.method_class and method.name == name
    assert method.gate == entry.defaults["gate"] and method.r == 2


@pytest.mark.parametrize("training", [False, True])
def test_adapter_layers_keep_the_models_train_or_eval_mode(training):
    model = make_tiny_llama().train(training)
    build_method(next(iter(registry_entries())), r=2, dropout=0.1, gate=True).apply(model)
    assert all(module.training == training for module in model.modules())
    assert all(layer.token_gate is not None for _, layer in adapter_layers(model))
