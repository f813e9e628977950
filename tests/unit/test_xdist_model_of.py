"""xdist groups items by model, read from the node id: only benchmark items have one."""

from __future__ import annotations

import pytest

from pytest_llmbench.run.items import case_item_name, control_item_name
from pytest_llmbench.run.xdist import model_of


@pytest.mark.parametrize(
    "model", ["qwen3:4b", "google/gemma-4-e4b", "qwen/qwen3-4b@q4_k_m", "reference", "a-b"]
)
def test_the_model_of_a_case_item(model: str) -> None:
    nodeid = f"tasks/python/x.yaml::{case_item_name('two_sum', 'basic', model)}"
    assert model_of(nodeid) == model
    assert model_of(f"tasks/odd[1].yaml::{case_item_name('t', 'c', model)}") == model


@pytest.mark.parametrize(
    "nodeid",
    [
        "tests/test_x.py::test_y",
        "tests/test_x.py::test_y[a/b]",  # a parametrized test whose id has a slash
        "tests/test_x.py::TestK::test_y[gemma]",
        "tests/dir[1]/test_x.py::test_y",
        f"tasks/x.yaml::{control_item_name('t', 'reference')}",  # controls have no model
        "tasks/x.yaml",
    ],
)
def test_other_node_ids_have_no_model(nodeid: str) -> None:
    assert model_of(nodeid) is None
