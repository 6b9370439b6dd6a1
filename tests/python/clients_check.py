"""The clients people run today, pointed at moatd as their OpenAI base URL: LangChain's `ChatOpenAI`
(chat completions, and the Responses API with `use_responses_api=True`), `litellm.responses`, and the
OpenAI Agents SDK in its default Responses mode running a function tool. The upstream is the
moat-testkit emulator (its `emulate.tool_call` directive makes the model call the tool until it has
the result). Run by crates/moatd/tests/clients.rs with GATEWAY_URL and GATEWAY_KEY set; exits
non-zero on the first failed check."""

import asyncio
import os
import sys

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ["OPENAI_AGENTS_DISABLE_TRACING"] = "1"

URL = os.environ["GATEWAY_URL"]
KEY = os.environ["GATEWAY_KEY"]
MODEL = "emu/tiny"
WEATHER = {"emulate": {"tool_call": {"name": "get_weather", "arguments": {"city": "Oslo"}}}}
checks = 0


def check(cond, what):
    global checks
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)
    checks += 1


# LangChain, both wires.
from langchain_openai import ChatOpenAI  # noqa: E402

for responses in (False, True):
    llm = ChatOpenAI(model=MODEL, base_url=URL, api_key=KEY, max_retries=0, use_responses_api=responses)
    msg = llm.invoke("hello langchain")
    check(msg.text == "You said: hello langchain", f"langchain invoke (responses={responses}): {msg!r}")
    streamed = "".join(chunk.text for chunk in llm.stream("stream langchain"))
    check(streamed == "You said: stream langchain", f"langchain stream (responses={responses}): {streamed!r}")
    tooled = llm.bind_tools(
        [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
    ).invoke("weather in Oslo?", extra_body=WEATHER)
    check(tooled.tool_calls and tooled.tool_calls[0]["name"] == "get_weather", f"langchain tool call (responses={responses}): {tooled!r}")
    check(tooled.tool_calls[0]["args"] == {"city": "Oslo"}, f"langchain tool args: {tooled.tool_calls}")

# LiteLLM's Responses API, through its OpenAI-compatible route.
import litellm  # noqa: E402

r = litellm.responses(model=f"openai/{MODEL}", input="hello litellm", api_base=URL, api_key=KEY)
text = "".join(part.text for item in r.output if getattr(item, "type", "") == "message" for part in item.content)
check(text == "You said: hello litellm", f"litellm.responses: {r}")
follow = litellm.responses(model=f"openai/{MODEL}", input="and again", previous_response_id=r.id, api_base=URL, api_key=KEY)
check(follow.id != r.id and follow.id.startswith("resp_"), f"litellm continues: {follow.id}")
events = list(litellm.responses(model=f"openai/{MODEL}", input="stream litellm", stream=True, api_base=URL, api_key=KEY))
check(any(getattr(e, "type", "") == "response.completed" for e in events), f"litellm stream: {[getattr(e, 'type', e) for e in events]}")

# The OpenAI Agents SDK, default (Responses) mode, with a function tool.
from agents import Agent, ModelSettings, OpenAIResponsesModel, Runner, function_tool  # noqa: E402
from openai import AsyncOpenAI  # noqa: E402

calls = []


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    calls.append(city)
    return f"rainy in {city}"


async def run_agent():
    client = AsyncOpenAI(base_url=URL, api_key=KEY, max_retries=0)
    agent = Agent(
        name="weather",
        instructions="Answer with the weather.",
        tools=[get_weather],
        model=OpenAIResponsesModel(model=MODEL, openai_client=client),
        model_settings=ModelSettings(extra_body=WEATHER),
    )
    result = await Runner.run(agent, "What is the weather in Oslo?")
    streamed = Runner.run_streamed(agent, "And streamed?")
    async for _ in streamed.stream_events():
        pass
    return result, streamed


result, streamed = asyncio.run(run_agent())
check(calls == ["Oslo", "Oslo"], f"the tool ran once per run: {calls}")
check(result.final_output.startswith("You said:"), f"agent final output: {result.final_output!r}")
check(streamed.final_output.startswith("You said:"), f"streamed agent output: {streamed.final_output!r}")
kinds = [type(i).__name__ for i in result.new_items]
check("ToolCallItem" in kinds and "ToolCallOutputItem" in kinds and kinds[-1] == "MessageOutputItem", f"agent items: {kinds}")

print(f"client checks passed ({checks} checks)")
