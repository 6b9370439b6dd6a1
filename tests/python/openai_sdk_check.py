"""Drives moatd with the real `openai` Python SDK and compares every answer with the same request
sent directly to the upstream. Run by crates/moatd/tests/openai_sdk.rs with DIRECT_URL, DIRECT_KEY,
GATEWAY_URL and GATEWAY_KEY set; exits non-zero on the first difference."""

import os
import sys

import openai
from openai import OpenAI

direct = OpenAI(base_url=os.environ["DIRECT_URL"], api_key=os.environ["DIRECT_KEY"], max_retries=0)
via = OpenAI(base_url=os.environ["GATEWAY_URL"], api_key=os.environ["GATEWAY_KEY"], max_retries=0)
MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "compare these answers please"}]
checks = 0


def check(cond, what):
    global checks
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)
    checks += 1


# Non-streamed: same content, usage (with OpenRouter's cost) and unknown fields both ways.
d = direct.chat.completions.create(model="tiny", messages=MESSAGES, extra_body={"x_probe": {"n": 7}})
g = via.chat.completions.create(model="emu/tiny", messages=MESSAGES, extra_body={"x_probe": {"n": 7}})
check(g.choices[0].message.content == d.choices[0].message.content, "same content")
check(g.choices[0].message.content == "You said: compare these answers please", "expected content")
check(g.usage.model_dump() == d.usage.model_dump(), "same usage incl. cost")
check((g.usage.model_extra or {}).get("cost") is not None, "usage.cost preserved")
check(g.model_extra.get("x_emulator") == {"echo_unknown": {"n": 7}}, "unknown request field forwarded, unknown response field kept")
check(g.model == "tiny", "provider prefix stripped upstream")


# Streamed: same text, same usage chunk, [DONE] handled by the SDK.
def collect(client, model):
    chunks = list(client.chat.completions.create(model=model, messages=MESSAGES, stream=True, stream_options={"include_usage": True}))
    text = "".join((c.choices[0].delta.content or "") for c in chunks if c.choices)
    usage = [c.usage for c in chunks if c.usage]
    return text, usage, chunks


dt, du, dc = collect(direct, "tiny")
gt, gu, gc = collect(via, "emu/tiny")
check(gt == dt and gt.startswith("You said:"), f"same streamed text: {gt!r} vs {dt!r}")
check(len(gc) == len(dc), "same number of chunks")
check([u.model_dump() for u in gu] == [u.model_dump() for u in du] and gu, "same usage in the stream")
check(all((c.model_extra or {}).get("x_emulator") is not None for c in gc), "unknown chunk fields kept")

# Legacy completions and embeddings.
dcmp = direct.completions.create(model="tiny", prompt="hello there")
gcmp = via.completions.create(model="emu/tiny", prompt="hello there")
check(gcmp.choices[0].text == dcmp.choices[0].text, "same completion")
de = direct.embeddings.create(model="emu-embed", input=["a", "b"])
ge = via.embeddings.create(model="emu/emu-embed", input=["a", "b"])
check([x.embedding for x in ge.data] == [x.embedding for x in de.data], "same embeddings")

# Models: listed with the provider prefix.
ids = [m.id for m in via.models.list()]
check("emu/tiny" in ids, f"models listed with prefix: {ids}")

# Errors arrive as the SDK's own exception types.
try:
    via.chat.completions.create(model="nowhere/x", messages=MESSAGES)
    check(False, "unknown model must fail")
except openai.NotFoundError as e:
    check("nowhere/x" in str(e), "404 names the model")
try:
    OpenAI(base_url=os.environ["GATEWAY_URL"], api_key="wrong", max_retries=0).chat.completions.create(model="emu/tiny", messages=MESSAGES)
    check(False, "wrong key must fail")
except openai.AuthenticationError:
    check(True, "401")
try:
    via.chat.completions.create(model="emu/tiny", messages=MESSAGES, extra_body={"emulate": {"status": 400, "message": "bad thing"}})
    check(False, "upstream 400 must fail")
except openai.BadRequestError as e:
    check("bad thing" in str(e), "upstream message passed through")
try:
    list(via.chat.completions.create(model="emu/tiny", messages=MESSAGES, stream=True, extra_body={"emulate": {"reset_after_chunks": 2}}))
    check(False, "a reset stream must fail")
except openai.APIError as e:
    check("mid-stream" in str(e), f"mid-stream failure reported: {e}")

print(f"openai SDK checks passed ({checks} checks, openai {openai.__version__})")
