//! Model addressing: turns the `model` a client asked for (plus an OpenRouter-style `models` fallback
//! list) into the ordered list of `(provider, upstream model)` targets to try.
//!
//! Addressing rules, in order:
//! 1. an alias from `[[models]]` expands to its route, each entry `PROVIDER/MODEL`;
//! 2. `PROVIDER/MODEL` where PROVIDER is a configured provider: the prefix is stripped before forwarding,
//!    so `openrouter/anthropic/claude-sonnet-4` goes upstream as `anthropic/claude-sonnet-4`;
//! 3. anything else goes, unchanged, to the default provider when one is configured (this is what lets
//!    OpenRouter clients send `anthropic/claude-sonnet-4` to moatd unchanged);
//! 4. otherwise the model is unknown.

use std::collections::HashMap;

/// The most targets one request may expand to. A bound, so a hostile `models` array or a long alias
/// chain cannot make one request fan out into hundreds of upstream attempts.
pub const MAX_TARGETS: usize = 16;

/// Index of a provider in the catalog's order (the order of `[[providers]]` in the config).
pub type ProviderId = usize;

/// One upstream attempt: which provider, and the model name as that provider knows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    pub provider: ProviderId,
    pub model: String,
}

/// Why a model name could not be routed. Messages are meant for API clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("no model given: set `model` (or an OpenRouter-style `models` list)")]
    NoModel,
    #[error("model `{model}` not found: address models as PROVIDER/MODEL (providers: {providers}) or use an alias from [[models]]")]
    UnknownModel { model: String, providers: String },
    #[error("model `{0}` is empty after its provider prefix")]
    EmptyModel(String),
    #[error("too many models to try: at most {MAX_TARGETS} after expanding aliases and fallbacks")]
    TooManyTargets,
}

/// Why a catalog could not be built (these are configuration mistakes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("provider name `{0}` is used twice")]
    DuplicateProvider(String),
    #[error("model alias `{0}` is defined twice")]
    DuplicateAlias(String),
    #[error(
        "model alias `{alias}`: route entry `{entry}` must be PROVIDER/MODEL with a configured provider"
    )]
    BadRouteEntry { alias: String, entry: String },
    #[error("model alias `{0}` has an empty route")]
    EmptyRoute(String),
    #[error("model alias `{0}` routes to more than {MAX_TARGETS} targets")]
    RouteTooLong(String),
    #[error("default provider `{0}` is not a configured provider")]
    UnknownDefault(String),
}

/// The names a request may use: providers and aliases. Built once from the config.
#[derive(Debug, Clone)]
pub struct Catalog {
    providers: Vec<String>,
    by_name: HashMap<String, ProviderId>,
    aliases: HashMap<String, Vec<Target>>,
    default_provider: Option<ProviderId>,
}

impl Catalog {
    /// Builds a catalog; alias routes are validated here so a bad config fails at start, not per request.
    pub fn new<P, S, A>(
        providers: P,
        aliases: A,
        default_provider: Option<&str>,
    ) -> Result<Catalog, CatalogError>
    where
        P: IntoIterator<Item = S>,
        S: Into<String>,
        A: IntoIterator<Item = (S, Vec<String>)>,
    {
        let mut catalog = Catalog {
            providers: Vec::new(),
            by_name: HashMap::new(),
            aliases: HashMap::new(),
            default_provider: None,
        };
        for name in providers {
            let name = name.into();
            if catalog.by_name.contains_key(&name) {
                return Err(CatalogError::DuplicateProvider(name));
            }
            catalog.by_name.insert(name.clone(), catalog.providers.len());
            catalog.providers.push(name);
        }
        for (alias, route) in aliases {
            let alias = alias.into();
            if route.is_empty() {
                return Err(CatalogError::EmptyRoute(alias));
            }
            if route.len() > MAX_TARGETS {
                return Err(CatalogError::RouteTooLong(alias));
            }
            let mut targets = Vec::with_capacity(route.len());
            for entry in route {
                match catalog.split_provider(&entry) {
                    Some(target) if !target.model.is_empty() => targets.push(target),
                    _ => return Err(CatalogError::BadRouteEntry { alias, entry }),
                }
            }
            if catalog.aliases.insert(alias.clone(), targets).is_some() {
                return Err(CatalogError::DuplicateAlias(alias));
            }
        }
        if let Some(name) = default_provider {
            match catalog.by_name.get(name) {
                Some(id) => catalog.default_provider = Some(*id),
                None => return Err(CatalogError::UnknownDefault(name.to_string())),
            }
        }
        Ok(catalog)
    }

    /// The provider's configured name. Panics never: ids only come from this catalog.
    pub fn provider_name(&self, id: ProviderId) -> &str {
        self.providers.get(id).map(String::as_str).unwrap_or("?")
    }

    /// Number of providers.
    pub fn len(&self) -> usize {
        self.providers.len()
    }

    /// True when no provider is configured.
    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }

    /// Alias names with their routes, for listing (`/v1/models`, `check-config`).
    pub fn aliases(&self) -> impl Iterator<Item = (&str, &[Target])> {
        self.aliases.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// The provider that takes unprefixed model names, if any.
    pub fn default_provider(&self) -> Option<&str> {
        self.default_provider.map(|id| self.provider_name(id))
    }

    /// Looks a provider up by name.
    pub fn provider_id(&self, name: &str) -> Option<ProviderId> {
        self.by_name.get(name).copied()
    }

    fn split_provider(&self, model: &str) -> Option<Target> {
        let (prefix, rest) = model.split_once('/')?;
        let provider = self.provider_id(prefix)?;
        Some(Target {
            provider,
            model: rest.to_string(),
        })
    }

    /// Resolves one model name to its targets (see the module docs for the rules).
    pub fn resolve(&self, model: &str) -> Result<Vec<Target>, RouteError> {
        if let Some(route) = self.aliases.get(model) {
            return Ok(route.clone());
        }
        if let Some(target) = self.split_provider(model) {
            if target.model.is_empty() {
                return Err(RouteError::EmptyModel(model.to_string()));
            }
            return Ok(vec![target]);
        }
        match self.default_provider {
            Some(provider) if !model.is_empty() => Ok(vec![Target {
                provider,
                model: model.to_string(),
            }]),
            _ => Err(RouteError::UnknownModel {
                model: model.to_string(),
                providers: if self.providers.is_empty() {
                    "none configured".to_string()
                } else {
                    self.providers.join(", ")
                },
            }),
        }
    }
}

/// The ordered, de-duplicated targets for a request: `model` first (when given), then each entry of the
/// OpenRouter-style `models` fallback list. A name nothing serves is skipped when another name of the
/// list resolves (that is what a fallback list is for, the first model included); the request is
/// refused as unknown only when none does.
pub fn plan(catalog: &Catalog, model: Option<&str>, fallbacks: &[String]) -> Result<Vec<Target>, RouteError> {
    let names = model.into_iter().chain(fallbacks.iter().map(String::as_str));
    let mut out: Vec<Target> = Vec::new();
    let mut any = false;
    let mut unknown = None;
    for name in names {
        any = true;
        let targets = match catalog.resolve(name) {
            Ok(t) => t,
            Err(e @ RouteError::UnknownModel { .. }) => {
                unknown.get_or_insert(e);
                continue;
            }
            Err(e) => return Err(e),
        };
        for target in targets {
            if !out.contains(&target) {
                if out.len() == MAX_TARGETS {
                    return Err(RouteError::TooManyTargets);
                }
                out.push(target);
            }
        }
    }
    if !any {
        return Err(RouteError::NoModel);
    }
    match unknown {
        Some(e) if out.is_empty() => Err(e),
        _ => Ok(out),
    }
}

#[cfg(test)]
mod tests;
