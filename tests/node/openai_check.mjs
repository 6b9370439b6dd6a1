// The real `openai` npm package driving moatd: chat (whole, streamed, a tool call, structured output
// with `parse`) and the Responses API (whole, streamed, a two-turn `previous_response_id`
// conversation, a function tool over two turns, retrieve), in front of the moat-testkit emulator. Run
// by crates/moatd/tests/clients.rs with GATEWAY_URL and GATEWAY_KEY set; exits non-zero on the first
// failed check.

import OpenAI from "openai";

const client = new OpenAI({ baseURL: process.env.GATEWAY_URL, apiKey: process.env.GATEWAY_KEY, maxRetries: 0 });
const MODEL = "emu/tiny";
const WEATHER = { emulate: { tool_call: { name: "get_weather", arguments: { city: "Oslo" } } } };
let checks = 0;

function check(cond, what) {
  if (!cond) {
    console.error(`FAILED: ${what}`);
    process.exit(1);
  }
  checks += 1;
}

// Chat.
const chat = await client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "hello node" }] });
check(chat.choices[0].message.content === "You said: hello node", `chat: ${JSON.stringify(chat)}`);
let text = "";
for await (const chunk of await client.chat.completions.create({ model: MODEL, stream: true, messages: [{ role: "user", content: "stream node" }] })) {
  text += chunk.choices[0]?.delta?.content ?? "";
}
check(text === "You said: stream node", `chat stream: ${text}`);
const chatTools = [{ type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } } }];
const tooled = await client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "weather?" }], tools: chatTools, ...WEATHER });
check(tooled.choices[0].message.tool_calls?.[0]?.function.name === "get_weather", `chat tool: ${JSON.stringify(tooled)}`);
const schema = {
  type: "json_schema",
  json_schema: { name: "city", strict: true, schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"], additionalProperties: false } },
};
const parsed = await client.chat.completions.parse({
  model: MODEL,
  messages: [{ role: "user", content: "city?" }],
  response_format: schema,
  emulate: { content: '{"city": "Oslo"}' },
});
check(parsed.choices[0].message.parsed?.city === "Oslo", `chat parse: ${JSON.stringify(parsed.choices[0].message)}`);

// Responses: whole, then streamed, continuing it.
const first = await client.responses.create({ model: MODEL, instructions: "be brief", input: "hello responses" });
check(first.id.startsWith("resp_") && first.output_text === "You said: hello responses", `response: ${JSON.stringify(first)}`);
const events = [];
for await (const event of await client.responses.create({ model: MODEL, input: "and again", previous_response_id: first.id, stream: true })) {
  events.push(event);
}
const types = events.map((e) => e.type);
check(types[0] === "response.created" && types.at(-1) === "response.completed", `events: ${types}`);
const second = events.at(-1).response;
check(events.filter((e) => e.response).every((e) => e.response.id === second.id), "one id throughout");
check(second.output_text === "You said: and again" || second.output.at(-1).content[0].text === "You said: and again", `streamed: ${JSON.stringify(second)}`);
check(second.previous_response_id === first.id, "previous_response_id echoed");
const stream = client.responses.stream({ model: MODEL, input: "third", previous_response_id: second.id });
const third = await stream.finalResponse();
check(third.output_text === "You said: third", `stream helper: ${third.output_text}`);
const items = await client.responses.inputItems.list(third.id, { order: "asc" });
check(items.data.length === 5, `input items: ${JSON.stringify(items.data)}`);
const again = await client.responses.retrieve(third.id);
check(again.id === third.id && again.output[0].content[0].text === "You said: third", "retrieve");

// A function tool over two turns.
const tools = [{ type: "function", name: "get_weather", description: "Weather in a city", strict: false, parameters: { type: "object", properties: { city: { type: "string" } } } }];
const ask = await client.responses.create({ model: MODEL, input: "weather in Oslo?", tools, ...WEATHER });
const call = ask.output.find((o) => o.type === "function_call");
check(call?.name === "get_weather" && JSON.parse(call.arguments).city === "Oslo", `function call: ${JSON.stringify(ask.output)}`);
const done = await client.responses.create({
  model: MODEL,
  previous_response_id: ask.id,
  tools,
  input: [{ type: "function_call_output", call_id: call.call_id, output: "rainy" }],
  ...WEATHER,
});
check(done.status === "completed" && done.output_text.startsWith("You said:"), `after the tool: ${done.output_text}`);

// Errors are the SDK's own.
try {
  await client.responses.retrieve("resp_nope");
  check(false, "unknown ids are 404");
} catch (e) {
  check(e instanceof OpenAI.NotFoundError, `404: ${e}`);
}
check((await client.models.retrieve("emu/tiny")).id === "emu/tiny", "models.retrieve");

console.log(`openai node checks passed (${checks} checks)`);
