//! The chat request a bridged Responses turn becomes, as the forwarding path sees it: a chat request
//! in every respect, plus the size of the conversation it replays, so the budget reservation covers
//! the replayed turns as well as the body the client sent.

use moat_wire::openai::{ChatCompletionRequest, ProviderPreferences};
use serde::{Deserialize, Serialize};

use moat_upstream::adapter::WireRequest;

use crate::handlers::request_kinds::Forward;

/// Serialized exactly as its chat request.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct BridgedChat {
    pub(crate) chat: ChatCompletionRequest,
    /// Bytes of replayed conversation (stored input and output) not in the client's body.
    #[serde(skip)]
    pub(crate) replayed: usize,
}

impl Forward for BridgedChat {
    const PATH: &'static str = ChatCompletionRequest::PATH;
    fn wire(&self) -> WireRequest<'_> {
        self.chat.wire()
    }
    fn model(&self) -> Option<&str> {
        self.chat.model()
    }
    fn set_model(&mut self, model: String) {
        self.chat.set_model(model)
    }
    fn take_fallbacks(&mut self) -> Vec<String> {
        self.chat.take_fallbacks()
    }
    fn wants_stream(&self) -> bool {
        self.chat.wants_stream()
    }
    fn max_output_tokens(&self) -> Option<u64> {
        self.chat.max_output_tokens()
    }
    fn ask_stream_usage(&mut self) {
        self.chat.ask_stream_usage()
    }
    fn texts_mut(&mut self) -> Vec<&mut String> {
        self.chat.texts_mut()
    }
    fn provider_prefs(&mut self) -> &mut Option<ProviderPreferences> {
        self.chat.provider_prefs()
    }
    fn take_partition_field(&mut self, field: &'static str) -> Result<Option<String>, String> {
        self.chat.take_partition_field(field)
    }
    fn set_partition_field(&mut self, field: &'static str, value: String) {
        self.chat.set_partition_field(field, value)
    }
    fn set_cache_prompt(&mut self, on: bool) {
        self.chat.set_cache_prompt(on)
    }
    fn replayed_bytes(&self) -> usize {
        self.replayed
    }
}
