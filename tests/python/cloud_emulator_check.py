"""Checks moat-testkit's emulators of the enterprise clouds with each cloud's official SDK pointed at
them: the openai SDK's AzureOpenAI client (api-key and an Entra ID token), boto3's bedrock-runtime
client with endpoint_url (the emulator verifies its SigV4 signatures), and google-genai with a custom
base URL (an API key, and Vertex AI with a service account whose JWT google-auth signs). An emulator
these clients accept is one whose answers moatd's tests can trust. Run by
crates/moatd/tests/cloud_sdk.rs with EMU_ROOT and the credentials below in the environment."""

import json
import os
import sys
import urllib.request

import boto3
import botocore.config
import botocore.exceptions
import openai
from google import genai
from google.genai import types
from google.oauth2 import service_account

ROOT = os.environ["EMU_ROOT"]
KEY = os.environ["EMU_KEY"]
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


TOOL_CALL = {"tool_call": {"name": "get_weather", "arguments": {"city": "Oslo"}}}

# --- Azure OpenAI -----------------------------------------------------------------------------------
AV = "2024-10-21"
az = openai.AzureOpenAI(azure_endpoint=ROOT, api_key=KEY, api_version=AV, max_retries=0)
q = [{"role": "user", "content": "hello emulator"}]
r = az.chat.completions.create(model="gpt-4o-prod", messages=q)
check(r.choices[0].message.content == "You said: hello emulator" and r.model == "gpt-4o-prod", f"azure: {r}")
parts = []
usage = None
for c in az.chat.completions.create(model="gpt-4o-prod", messages=q, stream=True, stream_options={"include_usage": True}):
    if c.choices and c.choices[0].delta.content:
        parts.append(c.choices[0].delta.content)
    if c.usage:
        usage = c.usage
check("".join(parts) == "You said: hello emulator" and usage.completion_tokens == 4, f"azure stream: {parts} {usage}")
t = az.chat.completions.create(model="gpt-4o-prod", messages=q, extra_body={"emulate": TOOL_CALL},
                               tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}])
check(t.choices[0].message.tool_calls[0].function.name == "get_weather", f"azure tool: {t}")
try:
    az.chat.completions.create(model="gpt-4o-prod", messages=q, extra_body={"emulate": {"content_filter": True}})
    check(False, "content filter raises")
except openai.BadRequestError as e:
    check(e.code == "content_filter" and e.status_code == 400, f"azure content filter: {e}")
tenant, client, secret = os.environ["AZURE_TENANT"], os.environ["AZURE_CLIENT"], os.environ["AZURE_SECRET"]
form = f"grant_type=client_credentials&client_id={client}&client_secret={secret}&scope=https%3A%2F%2Fcognitiveservices.azure.com%2F.default"
token = json.loads(urllib.request.urlopen(urllib.request.Request(
    f"{ROOT}/{tenant}/oauth2/v2.0/token", data=form.encode(), method="POST")).read())["access_token"]
aad = openai.AzureOpenAI(azure_endpoint=ROOT, azure_ad_token=token, api_version=AV, max_retries=0)
check(aad.chat.completions.create(model="d", messages=q).choices[0].message.content == "You said: hello emulator", "entra token")
try:
    openai.AzureOpenAI(azure_endpoint=ROOT, api_key="wrong", api_version=AV, max_retries=0).chat.completions.create(model="d", messages=q)
    check(False, "bad azure key raises")
except openai.AuthenticationError:
    check(True, "")

# --- AWS Bedrock ------------------------------------------------------------------------------------
cfg = botocore.config.Config(retries={"max_attempts": 1})
region = os.environ["AWS_REGION_EMU"]
br = boto3.client("bedrock-runtime", endpoint_url=ROOT, region_name=region, config=cfg,
                  aws_access_key_id=os.environ["AWS_KEY_EMU"], aws_secret_access_key=os.environ["AWS_SECRET_EMU"])
MODEL = "anthropic.claude-test-v1:0"
msgs = [{"role": "user", "content": [{"text": "hello emulator"}]}]
r = br.converse(modelId=MODEL, messages=msgs, system=[{"text": "be brief"}], inferenceConfig={"maxTokens": 50})
check(r["output"]["message"]["content"][0]["text"] == "You said: hello emulator" and r["stopReason"] == "end_turn", f"converse: {r}")
check(r["usage"]["outputTokens"] == 4, f"converse usage: {r['usage']}")
text, meta, stop = "", None, None
for ev in br.converse_stream(modelId=MODEL, messages=msgs)["stream"]:
    if "contentBlockDelta" in ev:
        text += ev["contentBlockDelta"]["delta"].get("text", "")
    if "messageStop" in ev:
        stop = ev["messageStop"]["stopReason"]
    if "metadata" in ev:
        meta = ev["metadata"]
check(text == "You said: hello emulator" and stop == "end_turn" and meta["usage"]["outputTokens"] == 4, f"converse stream: {text!r} {meta}")
TOOLS = {"tools": [{"toolSpec": {"name": "get_weather", "inputSchema": {"json": {"type": "object"}}}}]}
directive(TOOL_CALL)
r = br.converse(modelId=MODEL, messages=msgs, toolConfig=TOOLS)
use = r["output"]["message"]["content"][0]["toolUse"]
check(r["stopReason"] == "tool_use" and use["name"] == "get_weather" and use["input"] == {"city": "Oslo"}, f"converse tool: {r}")
args = ""
for ev in br.converse_stream(modelId=MODEL, messages=msgs, toolConfig=TOOLS)["stream"]:
    if "contentBlockDelta" in ev and "toolUse" in ev["contentBlockDelta"]["delta"]:
        args += ev["contentBlockDelta"]["delta"]["toolUse"]["input"]
check(json.loads(args) == {"city": "Oslo"}, f"converse stream tool: {args!r}")
directive({"status": 429, "message": "Too many requests"})
try:
    br.converse(modelId=MODEL, messages=msgs)
    check(False, "throttled raises")
except botocore.exceptions.ClientError as e:
    check(e.response["Error"]["Code"] == "ThrottlingException", f"throttled: {e.response}")
directive(None)
try:
    bad = boto3.client("bedrock-runtime", endpoint_url=ROOT, region_name=region, config=cfg,
                       aws_access_key_id=os.environ["AWS_KEY_EMU"], aws_secret_access_key="wrong-secret")
    bad.converse(modelId=MODEL, messages=msgs)
    check(False, "a bad signature raises")
except botocore.exceptions.ClientError as e:
    check(e.response["Error"]["Code"] == "InvalidSignatureException", f"bad signature: {e.response}")
try:
    br.converse(modelId=MODEL, messages=[{"role": "assistant", "content": [{"text": "hi"}]}])
    check(False, "assistant-first raises")
except botocore.exceptions.ClientError as e:
    check(e.response["Error"]["Code"] == "ValidationException", f"validation: {e.response}")

# --- Google Gemini / Vertex -------------------------------------------------------------------------
g = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=ROOT))
r = g.models.generate_content(model="gemini-test", contents="hello emulator")
check(r.text == "You said: hello emulator" and r.usage_metadata.candidates_token_count == 4, f"gemini: {r}")
text = "".join(c.text or "" for c in g.models.generate_content_stream(model="gemini-test", contents="hello emulator"))
check(text == "You said: hello emulator", f"gemini stream: {text!r}")
directive(TOOL_CALL)
cfg = types.GenerateContentConfig(
    tools=[types.Tool(function_declarations=[types.FunctionDeclaration(name="get_weather", parameters_json_schema={"type": "object"})])],
    automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True))
r = g.models.generate_content(model="gemini-test", contents="weather?", config=cfg)
check(r.function_calls[0].name == "get_weather" and r.function_calls[0].args == {"city": "Oslo"}, f"gemini tool: {r}")
directive({"status": 429})
try:
    g.models.generate_content(model="gemini-test", contents="hi")
    check(False, "gemini 429 raises")
except genai.errors.APIError as e:
    check(e.code == 429 and e.status == "RESOURCE_EXHAUSTED", f"gemini 429: {e}")
directive(None)
names = [m.name for m in g.models.list()]
check("models/gpt-4o-mini" in names or len(names) > 0, f"gemini models: {names}")
creds = service_account.Credentials.from_service_account_file(
    os.environ["GOOGLE_SA_FILE"], scopes=["https://www.googleapis.com/auth/cloud-platform"])
v = genai.Client(vertexai=True, project="moat-test", location="us-central1", credentials=creds,
                 http_options=types.HttpOptions(base_url=ROOT))
r = v.models.generate_content(model="gemini-test", contents="hello vertex")
check(r.text == "You said: hello vertex", f"vertex: {r}")

print(f"cloud emulator checks passed ({checks})")
