"""Drives moatd with the real `openai` Python SDK the way applications do today: chat (whole,
streamed, tools, structured output with `parse`) and the Responses API (whole, streamed, a two-turn
`previous_response_id` conversation, a function tool over two turns, structured output, retrieve,
input items, delete), in front of an OpenAI-compatible upstream (the moat-testkit emulator). Run by
crates/moatd/tests/clients.rs with GATEWAY_URL and GATEWAY_KEY set; exits non-zero on the first
failed check."""

import json
import os
import sys

import openai
from openai import OpenAI
from pydantic import BaseModel

client = OpenAI(base_url=os.environ["GATEWAY_URL"], api_key=os.environ["GATEWAY_KEY"], max_retries=0)
MODEL = "emu/tiny"
WEATHER = {"emulate": {"tool_call": {"name": "get_weather", "arguments": {"city": "Oslo"}}}}
CITY_JSON = {"emulate": {"content": '{"city": "Oslo", "rainy": true}'}}
checks = 0


def check(cond, what):
    global checks
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)
    checks += 1


class City(BaseModel):
    city: str
    rainy: bool


# Chat: whole, streamed, a tool call, structured output.
c = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hello chat"}])
check(c.choices[0].message.content == "You said: hello chat", f"chat: {c}")
text = "".join(
    (k.choices[0].delta.content or "")
    for k in client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi stream"}], stream=True)
    if k.choices
)
check(text == "You said: hi stream", f"chat stream: {text!r}")
CHAT_TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
t = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "weather?"}], tools=CHAT_TOOLS, extra_body=WEATHER)
check(t.choices[0].message.tool_calls[0].function.name == "get_weather", f"chat tool call: {t}")
p = client.chat.completions.parse(model=MODEL, messages=[{"role": "user", "content": "city?"}], response_format=City, extra_body=CITY_JSON)
check(p.choices[0].message.parsed == City(city="Oslo", rainy=True), f"chat parse: {p}")

# Responses: whole.
r = client.responses.create(model=MODEL, instructions="be brief", input="hello responses")
check(r.id.startswith("resp_") and r.status == "completed", f"response: {r}")
check(r.output_text == "You said: hello responses", f"output_text: {r.output_text!r}")
check(r.usage.input_tokens > 0 and r.usage.output_tokens == 4, f"usage: {r.usage}")
check(r.model == MODEL, f"model echoed: {r.model}")

# Responses: streamed, with the SDK's own event handling, continuing the first turn at once.
events = list(client.responses.create(model=MODEL, input="and again", previous_response_id=r.id, stream=True))
kinds = [e.type for e in events]
check(kinds[0] == "response.created" and kinds[-1] == "response.completed", f"event order: {kinds}")
check("response.output_text.delta" in kinds, f"text deltas: {kinds}")
check([e.sequence_number for e in events] == list(range(len(events))), "sequence numbers")
second = events[-1].response
check(all(getattr(e, "response", second).id == second.id for e in events), "one id throughout")
check(second.output_text == "You said: and again", f"streamed text: {second.output_text!r}")
check(second.previous_response_id == r.id, "previous_response_id echoed")

# The stream helper accumulates the same answer.
with client.responses.stream(model=MODEL, input="third turn", previous_response_id=second.id) as stream:
    streamed = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
    third = stream.get_final_response()
check(streamed == "You said: third turn" == third.output_text, f"stream helper: {streamed!r}")

# The conversation is moatd's: the third turn's input holds every earlier turn.
items = client.responses.input_items.list(third.id, order="asc")
texts = [part.text for item in items.data if item.type == "message" for part in item.content]
check(texts == ["hello responses", "You said: hello responses", "and again", "You said: and again", "third turn"], f"input items: {texts}")
check(client.responses.retrieve(third.id).output_text == third.output_text, "retrieve")

# A function tool over two turns.
TOOLS = [{"type": "function", "name": "get_weather", "description": "Weather in a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
ask = client.responses.create(model=MODEL, input="weather in Oslo?", tools=TOOLS, extra_body=WEATHER)
calls = [o for o in ask.output if o.type == "function_call"]
check(len(calls) == 1 and calls[0].name == "get_weather", f"function call: {ask.output}")
check(json.loads(calls[0].arguments) == {"city": "Oslo"}, f"arguments: {calls[0].arguments}")
done = client.responses.create(
    model=MODEL, previous_response_id=ask.id, tools=TOOLS, extra_body=WEATHER,
    input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": "rainy, 12 degrees"}],
)
# The emulator answers a tool result in text (crates/moatd/tests/clients.rs checks what it received).
check(done.status == "completed" and done.output_text.startswith("You said:"), f"after the tool: {done.output_text!r}")
check(not [o for o in done.output if o.type == "function_call"], "no second call")
streamed_call = [e for e in client.responses.create(model=MODEL, input="weather?", tools=TOOLS, extra_body=WEATHER, stream=True)
                 if e.type == "response.function_call_arguments.done"]
check(streamed_call and json.loads(streamed_call[0].arguments) == {"city": "Oslo"}, "streamed function call")

# Structured output.
parsed = client.responses.parse(model=MODEL, input="city?", text_format=City, extra_body=CITY_JSON)
check(parsed.output_parsed == City(city="Oslo", rainy=True), f"responses parse: {parsed.output_parsed}")

# Unkept turns and deletion; errors are the SDK's own exceptions.
gone = client.responses.create(model=MODEL, input="forget me", store=False)
try:
    client.responses.retrieve(gone.id)
    check(False, "store=False keeps nothing")
except openai.NotFoundError:
    check(True, "404")
client.responses.delete(third.id)
try:
    client.responses.create(model=MODEL, input="x", previous_response_id=third.id)
    check(False, "a deleted response cannot be continued")
except openai.NotFoundError:
    check(True, "404")
try:
    client.responses.create(model=MODEL, input="x", tools=[{"type": "web_search"}])
    check(False, "built-in tools are refused")
except openai.BadRequestError as e:
    check("web_search" in str(e), f"names the tool: {e}")

# models.retrieve.
check(client.models.retrieve("emu/tiny").id == "emu/tiny", "models.retrieve")

print(f"openai SDK responses checks passed ({checks} checks, openai {openai.__version__})")
