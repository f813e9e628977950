"""How real servers judge the `messages` of a chat request, so that fakes refuse what they refuse.

Every server we drive takes OpenAI's message shape; they differ in one place that breaks tool
chains: the assistant turn that carried tool calls. OpenAI, LM Studio, Ollama, vLLM and
llama.cpp's `llama-server` accept `content: null` there; llama-cpp-python's server declares the
field `NotRequired[str]` and answers a null with HTTP 422. All of them accept `content: ""`.
"""

from __future__ import annotations

from typing import Any

ROLES = ("system", "developer", "user", "assistant", "tool")


def message_problem(messages: Any, *, null_content: bool = True) -> str | None:
    """Why a server would refuse these messages, or None when it takes them.

    `null_content`: whether an assistant turn with tool calls may carry `content: null`.
    """
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty array"
    call_ids: set[str] = set()
    for n, message in enumerate(messages):
        where = f"messages[{n}]"
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            return f"{where}: not a message with a known role"
        role = message["role"]
        content = message.get("content")
        if role == "assistant":
            calls = message.get("tool_calls") or []
            problem = _calls_problem(calls, where)
            if problem:
                return problem
            call_ids.update(str(c["id"]) for c in calls)
            if content is None and not calls:
                return f"{where}: an assistant turn needs content or tool_calls"
            if content is None and "content" in message and not null_content:
                return f"{where}.content: Input should be a valid string (got null)"
            if content is not None and not isinstance(content, (str, list)):
                return f"{where}.content: must be a string or an array of parts"
        elif role == "tool":
            if message.get("tool_call_id") not in call_ids:
                return f"{where}: a tool message must answer an earlier tool call by its id"
            if not isinstance(content, str):
                return f"{where}.content: a tool result must be a string"
        elif not isinstance(content, (str, list)):
            return f"{where}.content: must be a string or an array of parts"
    return None


def _calls_problem(calls: Any, where: str) -> str | None:
    if not isinstance(calls, list):
        return f"{where}.tool_calls: must be an array"
    for i, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if (
            not isinstance(function, dict)
            or call.get("type") != "function"
            or not isinstance(call.get("id"), str)
            or not isinstance(function.get("name"), str)
            or not isinstance(function.get("arguments"), str)
        ):
            return f"{where}.tool_calls[{i}]: needs id, type 'function', name and arguments"
    return None
