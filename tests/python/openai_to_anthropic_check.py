"""Drives moatd with the real `openai` Python SDK in front of an Anthropic-wire upstream (the
moat-testkit emulator of the Messages API): text, streaming with usage, tool calls (whole and
streamed) and errors. Run by crates/moatd/tests/translate_sdk.rs with GATEWAY_URL and GATEWAY_KEY
set; exits non-zero on the first failed check."""

import json
import os
import sys

import openai
from openai import OpenAI

client = OpenAI(base_url=os.environ["GATEWAY_URL"], api_key=os.environ["GATEWAY_KEY"], max_retries=0)
MODEL = "claude/claude-test"
MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello from openai"}]
checks = 0


def check(cond, what):
    global checks
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)
    checks += 1


# Text.
r = client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=100)
check(r.object == "chat.completion", f"object: {r.object}")
check(r.choices[0].message.content == "You said: hello from openai", f"content: {r.choices[0].message.content!r}")
check(r.choices[0].finish_reason == "stop", f"finish_reason: {r.choices[0].finish_reason}")
check(r.usage.completion_tokens == 5 and r.usage.prompt_tokens > 0, f"usage: {r.usage}")
check(r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens, "total tokens")

# Truncation maps max_tokens → length.
short = client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=2)
check(short.choices[0].finish_reason == "length" and short.choices[0].message.content == "You said:", f"truncated: {short}")

# Streaming, with usage at the end.
chunks = list(client.chat.completions.create(
    model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
))
text = "".join((c.choices[0].delta.content or "") for c in chunks if c.choices)
check(text == "You said: hello from openai", f"streamed text: {text!r}")
check(chunks[0].choices[0].delta.role == "assistant", "role first")
finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
check(finishes == ["stop"], f"one finish reason: {finishes}")
usage = [c.usage for c in chunks if c.usage]
check(len(usage) == 1 and usage[0].completion_tokens == 5, f"stream usage: {usage}")

# Tool calls, whole and streamed.
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}}]
CALL = {"emulate": {"tool_call": {"name": "get_weather", "arguments": {"city": "Oslo"}}}}
ask = [{"role": "user", "content": "weather in Oslo?"}]
t = client.chat.completions.create(model=MODEL, messages=ask, tools=TOOLS, extra_body=CALL)
calls = t.choices[0].message.tool_calls
check(t.choices[0].finish_reason == "tool_calls", f"tool finish_reason: {t.choices[0].finish_reason}")
check(len(calls) == 1 and calls[0].function.name == "get_weather", f"tool call: {calls}")
check(json.loads(calls[0].function.arguments) == {"city": "Oslo"}, f"arguments: {calls[0].function.arguments}")
streamed = list(client.chat.completions.create(model=MODEL, messages=ask, tools=TOOLS, stream=True, extra_body=CALL))
fragments = [tc for c in streamed if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
check(fragments and (fragments[0].id or "").startswith("toolu_"), f"first fragment has the call id: {fragments}")
check(fragments[0].function.name == "get_weather", "first fragment has the name")
args = "".join(f.function.arguments or "" for f in fragments)
check(json.loads(args) == {"city": "Oslo"}, f"streamed arguments: {args!r}")
check(all(f.index == 0 for f in fragments), "one call, index 0")

# The result goes back as a tool message.
after = client.chat.completions.create(model=MODEL, tools=TOOLS, messages=ask + [
    {"role": "assistant", "content": None, "tool_calls": [c.model_dump() for c in calls]},
    {"role": "tool", "tool_call_id": calls[0].id, "content": "rainy"},
])
check(after.choices[0].message.content == "You said: rainy", f"after tool result: {after.choices[0].message.content!r}")

# Anthropic's 529 overloaded arrives as a 503.
try:
    client.chat.completions.create(model=MODEL, messages=ask, extra_body={"emulate": {"status": 529}})
    check(False, "529 raises")
except openai.InternalServerError as e:
    check(e.status_code == 503 and "Overloaded" in str(e), f"overloaded: {e}")

# The model list comes from Anthropic's.
ids = [m.id for m in client.models.list()]
check("claude/claude-test" in ids, f"models: {ids}")

print(f"openai SDK via Anthropic checks passed ({checks})")
