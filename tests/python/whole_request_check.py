"""Drives moatd with the real `openai` Python SDK: privacy covers every member a client can send,
metering leaves streams as the client asked for them, and provider credentials never come back in
errors. Run by crates/moatd/tests/whole_request.rs with GATEWAY_URL, GATEWAY_KEY (a metered key),
PROVIDER_KEY (the key moatd sends upstream) and MODEL set; moatd runs with `secrets = "block"`.
Exits non-zero on the first failed check."""

import base64
import os
import sys

import openai
from openai import OpenAI

via = OpenAI(base_url=os.environ["GATEWAY_URL"], api_key=os.environ["GATEWAY_KEY"], max_retries=0)
MODEL = os.environ["MODEL"]
PROVIDER_KEY = os.environ["PROVIDER_KEY"]
AWS = "AKIAQ3EGRTPRZ5J4KF6D"
HI = [{"role": "user", "content": "say hi"}]
checks = 0


def check(cond, what):
    global checks
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)
    checks += 1


# Metering: a metered key's stream carries usage only when the client asked for it, so the SDK's
# canonical loop works whether the client said nothing or `include_usage: false`.
for options in [None, {"include_usage": False}]:
    extra = {} if options is None else {"stream_options": options}
    text = ""
    for chunk in via.chat.completions.create(model=MODEL, messages=HI, stream=True, **extra):
        text += chunk.choices[0].delta.content or ""
        check(chunk.usage is None, f"no usage in a stream that did not ask ({options})")
    check(text == "You said: say hi", f"streamed text ({options}): {text!r}")
chunks = list(via.chat.completions.create(model=MODEL, messages=HI, stream=True, stream_options={"include_usage": True}))
usage = [c.usage for c in chunks if c.usage]
check(len(usage) == 1 and usage[0].completion_tokens > 0, f"usage when asked: {usage}")
check(chunks[-1].choices == [], "the usage chunk is the last one, as OpenAI sends it")


def refused(what, call, code="policy_blocked"):
    try:
        call()
    except openai.PermissionDeniedError as e:
        body = e.body or {}
        check(body.get("code") == code, f"{what}: error code {body}")
        check(AWS not in str(e) and AWS[4:] not in str(e), f"{what}: the error echoes no secret")
        return
    check(False, f"{what}: the request went through")


def data_url(text):
    return "data:text/plain;base64," + base64.b64encode(text.encode()).decode()


chat = via.chat.completions.create
refused("tool description", lambda: chat(model=MODEL, messages=HI, tools=[{"type": "function", "function": {"name": "f", "description": f"deploy with {AWS}"}}]))
refused("tool parameters", lambda: chat(model=MODEL, messages=HI, tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"k": {"type": "string", "description": AWS}}}}}]))
refused("metadata", lambda: chat(model=MODEL, messages=HI, metadata={"deploy": AWS}))
refused("stop", lambda: chat(model=MODEL, messages=HI, stop=[AWS]))
refused("prediction", lambda: chat(model=MODEL, messages=HI, prediction={"type": "content", "content": f"key {AWS}"}))
refused("response_format", lambda: chat(model=MODEL, messages=HI, response_format={"type": "json_schema", "json_schema": {"name": "s", "schema": {"type": "object", "description": AWS}}}))
refused("unknown member", lambda: chat(model=MODEL, messages=HI, extra_body={"instructions": f"key {AWS}"}))
refused("message name", lambda: chat(model=MODEL, messages=[{"role": "user", "name": AWS, "content": "hi"}]))
refused("image URL query", lambda: chat(model=MODEL, messages=[{"role": "user", "content": [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": f"https://img.example.org/a.png?k={AWS}"}}]}]))
refused("text file part", lambda: chat(model=MODEL, messages=[{"role": "user", "content": [{"type": "text", "text": "read"}, {"type": "file", "file": {"filename": "a.txt", "file_data": data_url(f"aws_access_key_id = {AWS}")}}]}]))
refused("split across messages", lambda: chat(model=MODEL, messages=[{"role": "user", "content": f"key {AWS[:9]}"}, {"role": "user", "content": f"{AWS[9:]} ok"}]))
refused("zero-width characters", lambda: chat(model=MODEL, messages=[{"role": "user", "content": f"key {AWS[:7]}\u200b{AWS[7:]}"}]))
refused("completion suffix", lambda: via.completions.create(model=MODEL, prompt="hi", suffix=f"key {AWS}"))
refused("embedding inputs", lambda: via.embeddings.create(model=MODEL, input=["fine", f"key {AWS}"]))
png = "data:image/png;base64," + base64.b64encode(bytes([0x89]) + b"PNG\r\n\x1a\n" + bytes(range(64))).decode()
refused("an image", lambda: chat(model=MODEL, messages=[{"role": "user", "content": [{"type": "text", "text": "what is this"}, {"type": "image_url", "image_url": {"url": png}}]}]), "policy_uninspectable")

# Without the secret, the same kind of request is answered.
r = chat(model=MODEL, messages=HI, tools=[{"type": "function", "function": {"name": "f", "description": "deploy"}}], metadata={"deploy": "prod"})
check(r.choices[0].message.content == "You said: say hi", "a clean request goes through")

# Credentials: a provider that quotes the key it was sent in a 401 does not hand it to the client.
try:
    chat(model=MODEL, messages=HI, extra_body={"emulate": {"status": 401, "echo_auth": True, "message": "Incorrect API key provided"}})
    check(False, "the 401 came back as a success")
except openai.AuthenticationError as e:
    check(PROVIDER_KEY not in str(e) and PROVIDER_KEY[8:] not in str(e), f"the provider key leaked: {e}")
    check("[REDACTED]" in str(e) and "Incorrect API key provided" in str(e), f"the message is kept: {e}")

print(f"whole-request checks passed ({checks} checks)")
