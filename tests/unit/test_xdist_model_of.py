"""xdist groups items by model, read from the node id: task file cases and test functions that
use the llm fixture have one."""

from __future__ import annotations

import pytest

from pytest_llmbench.run.items import case_item_name, control_item_name
from pytest_llmbench.taskfiles.selection import model_of_id

MODELS = ("qwen3:4b", "google/gemma-4-e4b", "qwen/qwen3-4b@q4_k_m", "reference", "a-b", "b")


@pytest.mark.parametrize("model", MODELS)
def test_the_model_of_a_case_item(model: str) -> None:
    nodeid = f"tasks/python/x.yaml::{case_item_name('two_sum', 'basic', model)}"
    assert model_of_id(nodeid, ()) == model
    assert model_of_id(f"tasks/odd[1].yaml::{case_item_name('t', 'c', model)}", ()) == model


@pytest.mark.parametrize("model", MODELS)
def test_the_model_of_a_test_function_is_the_last_part_of_its_id(model: str) -> None:
    assert model_of_id(f"tests/test_x.py::test_y[{model}]", MODELS) == model
    assert model_of_id(f"tests/test_x.py::TestK::test_y[p1-{model}]", MODELS) == model


def test_the_longest_model_the_id_ends_with_wins() -> None:
    # "a-b" ends with "-b" too: the id names the longer key.
    assert model_of_id("tests/test_x.py::test_y[a-b]", MODELS) == "a-b"
    assert model_of_id("tests/test_x.py::test_y[x-a-b]", MODELS) == "a-b"


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
    assert model_of_id(nodeid, MODELS) is None
