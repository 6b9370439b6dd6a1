//! Examples from OpenAI and OpenRouter documentation, parsed and re-serialized.

use serde_json::{json, Value};

use super::*;

fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(json: &Value) -> T {
    let typed: T = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(
        &serde_json::to_value(&typed).unwrap(),
        json,
        "round trip changed the body"
    );
    typed
}

#[test]
fn openai_chat_response() {
    let json = json!({
      "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
      "object": "chat.completion",
      "created": 1741570283,
      "model": "gpt-4o-2024-08-06",
      "choices": [{
        "index": 0,
        "message": {
          "role": "assistant",
          "content": "The image shows a wooden boardwalk path.",
          "refusal": null,
          "annotations": []
        },
        "logprobs": null,
        "finish_reason": "stop"
      }],
      "usage": {
        "prompt_tokens": 1117,
        "completion_tokens": 46,
        "total_tokens": 1163,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
          "reasoning_tokens": 0, "audio_tokens": 0,
          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0
        }
      },
      "service_tier": "default",
      "system_fingerprint": "fp_fc9f1d7035"
    });
    let response: ChatCompletionResponse = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(response.model, "gpt-4o-2024-08-06");
    let choice = &response.choices[0];
    assert_eq!(choice.finish_reason.as_deref(), Some("stop"));
    assert_eq!(choice.message.role, "assistant");
    let text: Vec<&str> = choice.message.content.as_ref().unwrap().texts().collect();
    assert_eq!(text, ["The image shows a wooden boardwalk path."]);
    assert_eq!(choice.message.extra["annotations"], json!([]));
    let usage = response.usage.as_ref().unwrap();
    assert_eq!(
        (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens),
        (1117, 46, 1163)
    );
    assert_eq!(
        usage.prompt_tokens_details.as_ref().unwrap().extra["audio_tokens"],
        0
    );

    // The explicit nulls are the only thing a round trip drops.
    let mut expected = json;
    expected["choices"][0]["message"]
        .as_object_mut()
        .unwrap()
        .remove("refusal");
    expected["choices"][0].as_object_mut().unwrap().remove("logprobs");
    assert_eq!(serde_json::to_value(&response).unwrap(), expected);
}

#[test]
fn openai_stream_chunk() {
    let data = r#"{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"logprobs":null,"finish_reason":null}]}"#;
    let chunk: ChatCompletionChunk = serde_json::from_str(data).unwrap();
    assert_eq!(chunk.object, "chat.completion.chunk");
    assert_eq!(chunk.choices[0].delta.role.as_deref(), Some("assistant"));
    assert_eq!(chunk.choices[0].delta.content.as_deref(), Some("Hel"));
    assert_eq!(chunk.choices[0].finish_reason, None);
    assert_eq!(chunk.usage, None);
    assert_eq!(chunk.error, None);

    let last = json!({
      "id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1694268190,
      "model": "gpt-4o-mini", "choices": [],
      "usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21}
    });
    let chunk: ChatCompletionChunk = round_trip(&last);
    assert_eq!(chunk.usage.unwrap().total_tokens, 21);
}

#[test]
fn openrouter_usage_with_cost() {
    let json = json!({
      "prompt_tokens": 194,
      "completion_tokens": 2,
      "total_tokens": 196,
      "cost": 0.95,
      "is_byok": false,
      "cost_details": {
        "upstream_inference_cost": 19.0,
        "upstream_inference_prompt_cost": 0.5,
        "upstream_inference_completions_cost": 18.5
      },
      "prompt_tokens_details": {"cached_tokens": 128, "cache_write_tokens": 0, "audio_tokens": 0},
      "completion_tokens_details": {"reasoning_tokens": 1, "image_tokens": 0}
    });
    let usage: Usage = round_trip(&json);
    assert_eq!(usage.cost, Some(0.95));
    assert_eq!(
        usage.cost_details.as_ref().unwrap().upstream_inference_cost,
        Some(19.0)
    );
    assert_eq!(usage.cached_tokens(), 128);
    assert_eq!(usage.reasoning_tokens(), 1);
    assert_eq!(usage.extra["is_byok"], false);
}

#[test]
fn usage_counts_default_when_missing() {
    // Embeddings usage has no completion tokens.
    let usage: Usage = serde_json::from_value(json!({"prompt_tokens": 8, "total_tokens": 8})).unwrap();
    assert_eq!(
        (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens),
        (8, 0, 8)
    );
    assert_eq!(usage.cached_tokens(), 0);
    assert_eq!(Usage::new(3, 4).total_tokens, 7);
}

#[test]
fn openrouter_mid_stream_error_chunk() {
    let json = json!({
      "id": "cmpl-abc123",
      "object": "chat.completion.chunk",
      "created": 1234567890,
      "model": "gpt-3.5-turbo",
      "provider": "openai",
      "error": {"code": "server_error", "message": "Provider disconnected unexpectedly"},
      "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]
    });
    let chunk: ChatCompletionChunk = serde_json::from_value(json.clone()).unwrap();
    let error = chunk.error.as_ref().unwrap();
    assert_eq!(error.code, Some(json!("server_error")));
    assert_eq!(error.message, "Provider disconnected unexpectedly");
    assert_eq!(chunk.provider.as_deref(), Some("openai"));
    assert_eq!(chunk.choices[0].finish_reason.as_deref(), Some("error"));
    assert_eq!(chunk.choices[0].delta.content.as_deref(), Some(""));

    // Re-serialized, the error gains OpenAI's null `type` and `param`; nothing else changes.
    let mut expected = json;
    expected["error"]["type"] = Value::Null;
    expected["error"]["param"] = Value::Null;
    assert_eq!(serde_json::to_value(&chunk).unwrap(), expected);
}

#[test]
fn openrouter_models_list() {
    let json = json!({
      "data": [{
        "id": "google/gemini-2.5-flash",
        "canonical_slug": "google/gemini-2.5-flash",
        "name": "Google: Gemini 2.5 Flash",
        "created": 1750172488,
        "description": "Gemini 2.5 Flash is ...",
        "context_length": 1048576,
        "architecture": {
          "modality": "text+image->text",
          "input_modalities": ["file", "image", "text"],
          "output_modalities": ["text"],
          "tokenizer": "Gemini",
          "instruct_type": null
        },
        "pricing": {
          "prompt": "0.0000003",
          "completion": "0.0000025",
          "request": "0",
          "image": "0.001238",
          "web_search": "0",
          "internal_reasoning": "0",
          "input_cache_read": "0.000000075",
          "input_cache_write": "0.0000003833"
        },
        "top_provider": {"context_length": 1048576, "max_completion_tokens": 65535, "is_moderated": false},
        "per_request_limits": null,
        "supported_parameters": ["max_tokens", "temperature", "tools", "reasoning"]
      }]
    });
    let list: ModelList = round_trip(&json);
    assert_eq!(list.object, None);
    let model = &list.data[0];
    assert_eq!(model.id, "google/gemini-2.5-flash");
    assert_eq!(model.created, Some(1750172488));
    assert_eq!(model.owned_by, None);
    assert_eq!(model.context_length, Some(1048576));
    let pricing = model.pricing.as_ref().unwrap();
    assert_eq!(ModelPricing::usd(pricing.prompt.as_ref()), Some(0.0000003));
    assert_eq!(
        ModelPricing::usd(pricing.input_cache_read.as_ref()),
        Some(0.000000075)
    );
    assert_eq!(pricing.extra["web_search"], "0");
    assert_eq!(model.extra["top_provider"]["max_completion_tokens"], 65535);
    assert_eq!(model.extra["per_request_limits"], Value::Null);
}

#[test]
fn openai_models_list() {
    let list = ModelList::new(vec![Model::new("llama3.2:3b", 1700000000, "ollama")]);
    assert_eq!(
        serde_json::to_value(&list).unwrap(),
        json!({"object": "list", "data": [
            {"id": "llama3.2:3b", "object": "model", "created": 1700000000, "owned_by": "ollama"}
        ]})
    );
}

#[test]
fn multimodal_content_parts() {
    let json = json!({
      "model": "openai/gpt-4o",
      "messages": [{
        "role": "user",
        "content": [
          {"type": "text", "text": "What is in this image?"},
          {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}},
          {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
          {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}
        ]
      }]
    });
    let request: ChatCompletionRequest = round_trip(&json);
    let Some(MessageContent::Parts(parts)) = &request.messages[0].content else {
        panic!("expected parts, got {:?}", request.messages[0].content);
    };
    assert_eq!(parts.len(), 4);
    assert_eq!(
        parts[1].image_url.as_ref().unwrap().detail.as_deref(),
        Some("low")
    );
    assert_eq!(parts[2].r#type, "input_audio");
    assert_eq!(parts[2].extra["input_audio"]["format"], "wav");
    assert_eq!(parts[3].extra["cache_control"]["type"], "ephemeral");
    let texts: Vec<&str> = request.messages[0].content.as_ref().unwrap().texts().collect();
    assert_eq!(texts, ["What is in this image?", "Be brief."]);

    let built = ChatMessage {
        content: Some(MessageContent::Parts(vec![
            ContentPart::text("hi"),
            ContentPart::image_url("https://example.com/a.png"),
        ])),
        ..ChatMessage::user("")
    };
    assert_eq!(
        serde_json::to_value(&built).unwrap(),
        json!({"role": "user", "content": [
            {"type": "text", "text": "hi"},
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
        ]})
    );
}

#[test]
fn tool_calls_request_response_and_stream() {
    let request = json!({
      "model": "gpt-4o",
      "messages": [
        {"role": "user", "content": "Weather in Boston?"},
        {"role": "assistant", "tool_calls": [{
          "id": "call_abc123", "type": "function",
          "function": {"name": "get_current_weather", "arguments": "{\"location\": \"Boston, MA\"}"}
        }]},
        {"role": "tool", "tool_call_id": "call_abc123", "content": "{\"temperature\": 22}"}
      ],
      "tools": [{
        "type": "function",
        "function": {
          "name": "get_current_weather",
          "description": "Get the current weather in a given location",
          "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["location"]
          }
        }
      }],
      "tool_choice": "auto"
    });
    let request: ChatCompletionRequest = round_trip(&request);
    assert_eq!(request.tool_choice, Some(json!("auto")));
    let tools = request.tools.as_ref().unwrap();
    assert_eq!(tools[0].function.as_ref().unwrap().name, "get_current_weather");
    let call = &request.messages[1].tool_calls.as_ref().unwrap()[0];
    assert_eq!(call.function.arguments, "{\"location\": \"Boston, MA\"}");
    assert_eq!(request.messages[1].content, None);
    assert_eq!(request.messages[2].tool_call_id.as_deref(), Some("call_abc123"));

    let first = json!({
      "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
      "choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [
        {"index": 0, "id": "call_abc123", "type": "function", "function": {"name": "get_current_weather", "arguments": ""}}
      ]}}]
    });
    let next = json!({
      "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
      "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"loc"}}]}}]
    });
    let first: ChatCompletionChunk = round_trip(&first);
    let next: ChatCompletionChunk = round_trip(&next);
    let fragment = &first.choices[0].delta.tool_calls.as_ref().unwrap()[0];
    assert_eq!(fragment.id.as_deref(), Some("call_abc123"));
    let fragment = &next.choices[0].delta.tool_calls.as_ref().unwrap()[0];
    assert_eq!((fragment.index, fragment.id.as_deref()), (0, None));
    assert_eq!(
        fragment.function.as_ref().unwrap().arguments.as_deref(),
        Some("{\"loc")
    );
}

#[test]
fn openrouter_request_extensions() {
    let json = json!({
      "models": ["anthropic/claude-sonnet-4", "openai/gpt-4o"],
      "messages": [{"role": "user", "content": "hi"}],
      "provider": {
        "order": ["anthropic", "amazon-bedrock"],
        "allow_fallbacks": false,
        "require_parameters": true,
        "data_collection": "deny",
        "zdr": true,
        "ignore": ["deepinfra"],
        "quantizations": ["fp8"],
        "sort": "throughput",
        "max_price": {"prompt": 1, "completion": "2.5"}
      },
      "reasoning": {"effort": "high", "exclude": true},
      "usage": {"include": true},
      "transforms": ["middle-out"],
      "stream": true,
      "stream_options": {"include_usage": true}
    });
    let request: ChatCompletionRequest = round_trip(&json);
    assert_eq!(request.model, None);
    assert_eq!(request.models.as_deref().unwrap().len(), 2);
    assert!(request.is_stream());
    let provider = request.provider.as_ref().unwrap();
    assert_eq!(provider.allow_fallbacks, Some(false));
    assert_eq!(provider.data_collection.as_deref(), Some("deny"));
    let max_price = provider.max_price.as_ref().unwrap();
    assert_eq!(max_price.prompt.as_ref().and_then(MaxPrice::as_usd), Some(1.0));
    assert_eq!(
        max_price.completion.as_ref().and_then(MaxPrice::as_usd),
        Some(2.5)
    );
    assert_eq!(
        request.reasoning.as_ref().unwrap().effort.as_deref(),
        Some("high")
    );
    assert_eq!(request.usage.as_ref().unwrap().include, Some(true));
    assert_eq!(request.stream_options.as_ref().unwrap().include_usage, Some(true));
    assert_eq!(request.extra["transforms"], json!(["middle-out"]));
}

#[test]
fn request_rejects_wrong_types_and_missing_messages() {
    assert!(serde_json::from_value::<ChatCompletionRequest>(json!({"model": "m"})).is_err());
    let bad = json!({"model": "m", "messages": [], "max_tokens": "lots"});
    assert!(serde_json::from_value::<ChatCompletionRequest>(bad).is_err());
    let null_ok = json!({"model": "m", "messages": [], "stop": null, "temperature": null});
    let request: ChatCompletionRequest = serde_json::from_value(null_ok).unwrap();
    assert_eq!(
        serde_json::to_value(&request).unwrap(),
        json!({"model": "m", "messages": []})
    );
}

#[test]
fn stop_and_prompt_shapes() {
    let one: Stop = serde_json::from_value(json!("\n")).unwrap();
    assert_eq!(one, Stop::One("\n".to_owned()));
    let many: Stop = serde_json::from_value(json!(["a", "b"])).unwrap();
    assert_eq!(many, Stop::Many(vec!["a".to_owned(), "b".to_owned()]));

    let cases = [
        (json!("text"), PromptInput::Text("text".to_owned())),
        (
            json!(["a", "b"]),
            PromptInput::Texts(vec!["a".to_owned(), "b".to_owned()]),
        ),
        (json!([1, 2]), PromptInput::Tokens(vec![1, 2])),
        (
            json!([[1], [2, 3]]),
            PromptInput::TokenBatches(vec![vec![1], vec![2, 3]]),
        ),
        (
            json!([{"image": "x"}]),
            PromptInput::Other(json!([{"image": "x"}])),
        ),
    ];
    for (json, expected) in cases {
        let parsed: PromptInput = round_trip(&json);
        assert_eq!(parsed, expected);
    }
    let input = PromptInput::from("x");
    let texts: Vec<&str> = input.texts().collect();
    assert_eq!(texts, ["x"]);
    assert_eq!(PromptInput::Tokens(vec![1]).texts().count(), 0);
}

#[test]
fn completions_and_embeddings() {
    let request = json!({"model": "gpt-3.5-turbo-instruct", "prompt": "Say this is a test", "max_tokens": 7, "temperature": 0.0});
    let request: CompletionRequest = round_trip(&request);
    assert_eq!(
        request.prompt,
        Some(PromptInput::Text("Say this is a test".to_owned()))
    );

    let response = json!({
      "id": "cmpl-uqkvlQyYK7bGYrRHQ0eXlWi7", "object": "text_completion", "created": 1589478378,
      "model": "gpt-3.5-turbo-instruct", "system_fingerprint": "fp_44709d6fcb",
      "choices": [{"text": "\n\nThis is indeed a test", "index": 0, "finish_reason": "length"}],
      "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}
    });
    let response: CompletionResponse = round_trip(&response);
    assert_eq!(response.choices[0].text, "\n\nThis is indeed a test");

    let request = json!({"input": "The food was delicious", "model": "text-embedding-3-small", "encoding_format": "float"});
    let request: EmbeddingRequest = round_trip(&request);
    assert_eq!(
        request,
        EmbeddingRequest {
            encoding_format: Some("float".to_owned()),
            ..EmbeddingRequest::new("text-embedding-3-small", "The food was delicious")
        }
    );

    let response = json!({
      "object": "list",
      "data": [{"object": "embedding", "embedding": [0.0023064255, -0.009327292, -0.0028842222], "index": 0}],
      "model": "text-embedding-3-small",
      "usage": {"prompt_tokens": 8, "total_tokens": 8}
    });
    let parsed: EmbeddingResponse = serde_json::from_value(response).unwrap();
    assert_eq!(
        parsed.data[0].embedding,
        EmbeddingVector::Float(vec![0.0023064255, -0.009327292, -0.0028842222])
    );
    let b64: Embedding =
        serde_json::from_value(json!({"object": "embedding", "embedding": "AAAA", "index": 1})).unwrap();
    assert_eq!(b64.embedding, EmbeddingVector::Base64("AAAA".to_owned()));
}

#[test]
fn constructors() {
    let request = ChatCompletionRequest::new("m", vec![ChatMessage::system("s"), ChatMessage::user("u")]);
    assert_eq!(
        serde_json::to_value(&request).unwrap(),
        json!({"model": "m", "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]})
    );
    assert!(!request.is_stream());
    assert_eq!(ChatMessage::assistant("a").role, "assistant");
}
