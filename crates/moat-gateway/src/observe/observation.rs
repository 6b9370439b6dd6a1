//! One request's observation: its id, its server span, and the GenAI facts the forwarding path
//! learns as it goes (operation, model, provider, team, tokens, cost). Shared between the layer,
//! which records metrics when the response ends, and the handler, which fills it in through the
//! audit trail. Names, numbers and ids only: never a key, a prompt or an answer.

use std::sync::{Mutex, MutexGuard, PoisonError};

use tracing::Span;

/// What one request is known to be, so far.
#[derive(Debug, Default, Clone)]
pub(crate) struct Facts {
    /// `chat`, `text_completion`, `embeddings`: set only for GenAI requests.
    pub(crate) operation: Option<&'static str>,
    /// The model the client asked for (bounded when used as a label).
    pub(crate) request_model: Option<String>,
    /// The provider that answered, by its configured name.
    pub(crate) provider: Option<String>,
    /// The upstream model that answered.
    pub(crate) response_model: Option<String>,
    /// The paying key's team, by name.
    pub(crate) team: Option<String>,
    pub(crate) input_tokens: Option<u64>,
    pub(crate) output_tokens: Option<u64>,
    pub(crate) cost_nanos: Option<u64>,
}

#[derive(Debug)]
pub(crate) struct Observation {
    pub(crate) request_id: String,
    /// The request's server span; the forwarding path's spans are its children.
    pub(crate) span: Span,
    facts: Mutex<Facts>,
}

impl Observation {
    pub(crate) fn new(request_id: String, span: Span) -> Observation {
        Observation {
            request_id,
            span,
            facts: Mutex::new(Facts::default()),
        }
    }

    fn facts(&self) -> MutexGuard<'_, Facts> {
        self.facts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn snapshot(&self) -> Facts {
        self.facts().clone()
    }

    pub(crate) fn operation(&self, op: &'static str) {
        self.facts().operation = Some(op);
        self.span.record("gen_ai.operation.name", op);
    }

    pub(crate) fn request_model(&self, model: &str) {
        self.facts().request_model = Some(model.to_string());
        self.span.record("gen_ai.request.model", model);
    }

    pub(crate) fn team(&self, team: Option<&str>) {
        self.facts().team = team.map(str::to_string);
        if let Some(t) = team {
            self.span.record("moat.team", t);
        }
    }

    pub(crate) fn answered_by(&self, provider: &str, model: &str) {
        let mut f = self.facts();
        f.provider = Some(provider.to_string());
        f.response_model = Some(model.to_string());
        drop(f);
        self.span.record("gen_ai.provider.name", provider);
        self.span.record("gen_ai.response.model", model);
    }

    pub(crate) fn usage(&self, input: u64, output: u64, cost_nanos: u64) {
        let mut f = self.facts();
        f.input_tokens = Some(input);
        f.output_tokens = Some(output);
        f.cost_nanos = Some(cost_nanos);
        drop(f);
        self.span.record("gen_ai.usage.input_tokens", input);
        self.span.record("gen_ai.usage.output_tokens", output);
    }
}
