"""Checks of your own: `pytest --models=KEY examples/test_own_model.py` runs each per model."""

import pytest

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
SLUGIFY = (
    "Write a Python function `slugify(title)` that lowercases the title and joins its words "
    "with hyphens, dropping punctuation. Answer with one ```python block."
)


def test_extracts_fields_as_json(llm):
    answer = llm.ask(
        'From "Ada Lovelace, 36, London" extract name, age and city. '
        "Reply with a JSON object with the keys name, age and city, and nothing else."
    )
    assert answer.json() == {"name": "Ada Lovelace", "age": 36, "city": "London"}


def test_calls_the_weather_tool(llm):
    answer = llm.ask("What is the weather in Paris right now?", tools=[WEATHER_TOOL])
    [(name, arguments)] = answer.calls()
    assert name == "get_weather"
    assert arguments is not None and arguments["city"].lower() == "paris"


@pytest.mark.llmbench_prompts(SLUGIFY)  # known before the test runs: generated ahead
def test_writes_a_working_slugify(llm):
    code = llm.ask(SLUGIFY).code()
    assert code is not None, "no python block in the answer"
    # The model's code runs in the sandbox, never in this process.
    assert llm.run_python(code, "slugify", "Hello, World!") == "hello-world"
    assert llm.run_python(code, "slugify", "  Local models   rock ") == "local-models-rock"
