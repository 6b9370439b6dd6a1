"""Checks moat-testkit's emulators of other wires with those wires' own official clients: the
`anthropic` SDK against the Anthropic Messages emulator (ANTHROPIC_ROOT, ANTHROPIC_KEY) and the `ollama`
client against the Ollama native emulator (OLLAMA_ROOT). An emulator these clients accept is one whose
answers moatd's translation tests can trust. Run by crates/moatd/tests/translate_sdk.rs."""

import os
import sys

import anthropic
import ollama

checks = 0


def check(cond, what):
    global checks
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)
    checks += 1


# Anthropic Messages.
a = anthropic.Anthropic(base_url=os.environ["ANTHROPIC_ROOT"], api_key=os.environ["ANTHROPIC_KEY"], max_retries=0)
q = [{"role": "user", "content": "hello emulator"}]
m = a.messages.create(model="claude-test", max_tokens=50, messages=q)
check(m.content[0].text == "You said: hello emulator" and m.stop_reason == "end_turn", f"message: {m}")
check(m.usage.output_tokens == 4 and m.usage.input_tokens > 0, f"usage: {m.usage}")
with a.messages.stream(model="claude-test", max_tokens=50, messages=q) as s:
    text = "".join(s.text_stream)
    final = s.get_final_message()
check(text == "You said: hello emulator" and final.usage.output_tokens == 4, f"stream: {text!r} {final.usage}")
short = a.messages.create(model="claude-test", max_tokens=2, messages=q)
check(short.stop_reason == "max_tokens" and short.content[0].text == "You said:", f"truncated: {short}")
CALL = {"emulate": {"tool_call": {"name": "get_weather", "arguments": {"city": "Oslo"}}}}
TOOLS = [{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]
t = a.messages.create(model="claude-test", max_tokens=50, messages=q, tools=TOOLS, extra_body=CALL)
check(t.stop_reason == "tool_use" and t.content[0].type == "tool_use" and t.content[0].input == {"city": "Oslo"}, f"tool: {t}")
with a.messages.stream(model="claude-test", max_tokens=50, messages=q, tools=TOOLS, extra_body=CALL) as s:
    ts = s.get_final_message()
check(ts.content[0].type == "tool_use" and ts.content[0].input == {"city": "Oslo"}, f"streamed tool: {ts}")
ids = [x.id for x in a.models.list()]
check(ids == ["claude-test"], f"models: {ids}")
try:
    a.messages.create(model="claude-test", max_tokens=50, messages=q, extra_body={"emulate": {"status": 529}})
    check(False, "529 raises")
except anthropic.APIStatusError as e:
    check(e.status_code == 529 and e.body["error"]["type"] == "overloaded_error", f"overloaded: {e}")
try:
    anthropic.Anthropic(base_url=os.environ["ANTHROPIC_ROOT"], api_key="wrong", max_retries=0).messages.create(
        model="claude-test", max_tokens=5, messages=q
    )
    check(False, "a wrong key raises")
except anthropic.AuthenticationError:
    check(True, "wrong key")

# Ollama native.
o = ollama.Client(host=os.environ["OLLAMA_ROOT"])
r = o.chat(model="llama3.2:latest", messages=q, stream=False, options={"num_predict": 50})
check(r.message.content == "You said: hello emulator" and r.done and r.done_reason == "stop", f"chat: {r}")
check(r.eval_count == 4 and r.prompt_eval_count > 0, f"counts: {r}")
parts = list(o.chat(model="llama3.2:latest", messages=q, stream=True))
check("".join(p.message.content for p in parts) == "You said: hello emulator", f"stream: {parts}")
check(parts[-1].done and parts[-1].eval_count == 4 and not any(p.done for p in parts[:-1]), "one final part")
models = [m.model for m in o.list().models]
check(models == ["llama3.2:latest"], f"tags: {models}")
print(f"emulator wire checks passed ({checks})")
