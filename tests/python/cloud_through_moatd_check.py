"""The openai SDK through a real moatd in front of the enterprise clouds' emulators, each provider
authenticated the way production would be: Azure with an Entra ID client secret, Bedrock with SigV4
from AWS keys in moatd's environment, Gemini on Vertex AI with a service account. Plain, streamed
(with usage), tool calls, and errors in OpenAI's shape. Run by crates/moatd/tests/cloud_sdk.rs with
GATEWAY_ROOT, GATEWAY_KEY and EMU_ROOT (for scripting the emulator) in the environment."""

import json
import os
import sys
import urllib.request

import openai

ROOT = os.environ["EMU_ROOT"]
checks = 0


def check(cond, what):
    global checks
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)
    checks += 1


def directive(d):
    req = urllib.request.Request(f"{ROOT}/_emulator/directive", data=json.dumps(d).encode(), method="POST")
    urllib.request.urlopen(req).read()


c = openai.OpenAI(base_url=os.environ["GATEWAY_ROOT"] + "/v1", api_key=os.environ["GATEWAY_KEY"], max_retries=0)
q = [{"role": "user", "content": "hello cloud"}]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
for model in ["azure/gpt-4o-prod", "aws/anthropic.claude-test-v1:0", "vertex/gemini-test"]:
    directive(None)
    r = c.chat.completions.create(model=model, messages=q)
    check(r.choices[0].message.content == "You said: hello cloud", f"{model}: {r}")
    check(r.usage.prompt_tokens > 0 and r.usage.completion_tokens == 4, f"{model} usage: {r.usage}")
    parts, usage = [], None
    for ch in c.chat.completions.create(model=model, messages=q, stream=True, stream_options={"include_usage": True}):
        if ch.choices and ch.choices[0].delta.content:
            parts.append(ch.choices[0].delta.content)
        if ch.usage:
            usage = ch.usage
    check("".join(parts) == "You said: hello cloud" and usage and usage.completion_tokens == 4, f"{model} stream: {parts} {usage}")
    directive({"tool_call": {"name": "get_weather", "arguments": {"city": "Oslo"}}})
    t = c.chat.completions.create(model=model, messages=q, tools=TOOLS)
    call = t.choices[0].message.tool_calls[0]
    check(call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Oslo"}, f"{model} tool: {t}")
    check(t.choices[0].finish_reason == "tool_calls", f"{model} finish: {t}")
    follow = q + [t.choices[0].message.model_dump(exclude_none=True), {"role": "tool", "tool_call_id": call.id, "content": "rain"}]
    directive(None)
    r = c.chat.completions.create(model=model, messages=follow, tools=TOOLS)
    check(r.choices[0].message.content.startswith("You said:"), f"{model} tool result turn: {r}")
    directive({"status": 429, "message": "slow down"})
    try:
        c.chat.completions.create(model=model, messages=q)
        check(False, f"{model}: 429 raises")
    except openai.RateLimitError as e:
        check(e.status_code == 429 and "slow down" in str(e), f"{model} 429: {e}")
    directive(None)

print(f"cloud through moatd checks passed ({checks})")
