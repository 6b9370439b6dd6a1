"""Drives moatd's `POST /v1/messages` with the real `anthropic` Python SDK, in front of an
OpenAI-compatible upstream (the moat-testkit emulator): text, streaming, a tool call and its result,
and errors as the SDK's own exceptions. Run by crates/moatd/tests/translate_sdk.rs with GATEWAY_ROOT
and GATEWAY_KEY set; exits non-zero on the first failed check."""

import os
import sys

import anthropic
from anthropic import Anthropic

client = Anthropic(base_url=os.environ["GATEWAY_ROOT"], api_key=os.environ["GATEWAY_KEY"], max_retries=0)
MODEL = "emu/tiny"
checks = 0


def check(cond, what):
    global checks
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)
    checks += 1


# Text.
m = client.messages.create(
    model=MODEL, max_tokens=100, system="be brief", messages=[{"role": "user", "content": "hello from anthropic"}]
)
check(m.type == "message" and m.role == "assistant", f"a message: {m}")
check([b.type for b in m.content] == ["text"], f"one text block: {m.content}")
check(m.content[0].text == "You said: hello from anthropic", f"echoed text: {m.content[0].text!r}")
check(m.stop_reason == "end_turn", f"stop_reason: {m.stop_reason}")
check(m.usage.output_tokens == 5 and m.usage.input_tokens > 0, f"usage: {m.usage}")
check(m.model == MODEL, f"model echoed: {m.model}")

# Streaming, through the SDK's own event accumulation.
with client.messages.stream(
    model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "stream this please"}]
) as stream:
    text = "".join(stream.text_stream)
    final = stream.get_final_message()
check(text == "You said: stream this please", f"streamed text: {text!r}")
check(final.content[0].text == text, "final message holds the text")
check(final.stop_reason == "end_turn", f"streamed stop_reason: {final.stop_reason}")
check(final.usage.output_tokens == 5, f"streamed usage: {final.usage}")

# Raw stream events arrive in the documented order.
events = [e.type for e in client.messages.create(
    model=MODEL, max_tokens=100, stream=True, messages=[{"role": "user", "content": "one two"}]
)]
check(events[0] == "message_start" and events[-2:] == ["message_delta", "message_stop"], f"event order: {events}")
check("content_block_start" in events and "content_block_stop" in events, f"block events: {events}")

# A tool call, then its result sent back.
TOOLS = [{
    "name": "get_weather",
    "description": "Current weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}]
CALL = {"emulate": {"tool_call": {"name": "get_weather", "arguments": {"city": "Oslo"}}}}
question = {"role": "user", "content": "weather in Oslo?"}
t = client.messages.create(model=MODEL, max_tokens=100, tools=TOOLS, messages=[question], extra_body=CALL)
uses = [b for b in t.content if b.type == "tool_use"]
check(t.stop_reason == "tool_use", f"tool stop_reason: {t.stop_reason}")
check(len(uses) == 1 and uses[0].name == "get_weather" and uses[0].input == {"city": "Oslo"}, f"tool_use: {t.content}")
with client.messages.stream(model=MODEL, max_tokens=100, tools=TOOLS, messages=[question], extra_body=CALL) as s:
    streamed_call = s.get_final_message()
suses = [b for b in streamed_call.content if b.type == "tool_use"]
check(len(suses) == 1 and suses[0].input == {"city": "Oslo"}, f"streamed tool_use: {streamed_call.content}")
check(streamed_call.stop_reason == "tool_use", "streamed tool stop_reason")
after = client.messages.create(
    model=MODEL,
    max_tokens=100,
    tools=TOOLS,
    messages=[
        question,
        {"role": "assistant", "content": t.content},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": uses[0].id, "content": "rainy, 12 degrees"},
            {"type": "text", "text": "so, an umbrella?"},
        ]},
    ],
)
check(after.content[0].text == "You said: so, an umbrella?", f"answer after the tool result: {after.content}")

# Errors as the SDK's exceptions.
try:
    client.messages.create(
        model=MODEL, max_tokens=10, messages=[question], extra_body={"emulate": {"status": 429, "message": "slow down"}}
    )
    check(False, "a 429 raises")
except anthropic.RateLimitError as e:
    check(e.status_code == 429 and "slow down" in str(e), f"rate limit error: {e}")
try:
    Anthropic(base_url=os.environ["GATEWAY_ROOT"], api_key="wrong", max_retries=0).messages.create(
        model=MODEL, max_tokens=10, messages=[question]
    )
    check(False, "a wrong key raises")
except anthropic.AuthenticationError as e:
    check(e.status_code == 401, "authentication error")
try:
    client.messages.create(model="nobody/nothing", max_tokens=10, messages=[question])
    check(False, "an unknown model raises")
except anthropic.NotFoundError as e:
    check(e.status_code == 404, "not found")

# Models, listed in Anthropic's shape.
ids = [m.id for m in client.models.list()]
check("emu/tiny" in ids, f"models: {ids}")

# Token counting (Claude Code asks before each turn): moatd's local estimate in front of a
# non-Anthropic provider, ⌈35 bytes of text / 3⌉ + 4 per message + 3.
n = client.messages.count_tokens(
    model=MODEL, system="be brief", messages=[{"role": "user", "content": "count these words please"}]
)
check(n.input_tokens == 19, f"count_tokens: {n}")

print(f"anthropic SDK checks passed ({checks})")
