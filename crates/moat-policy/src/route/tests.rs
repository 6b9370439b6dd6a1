use super::*;
use proptest::prelude::*;

fn catalog(default: Option<&str>) -> Catalog {
    Catalog::new(
        ["openrouter", "local"],
        [
            (
                "fast",
                vec![
                    "local/tiny".to_string(),
                    "openrouter/openai/gpt-4o-mini".to_string(),
                ],
            ),
            ("deep", vec!["openrouter/anthropic/claude-sonnet-4".to_string()]),
        ],
        default,
    )
    .unwrap()
}

#[test]
fn prefix_is_stripped_and_rest_kept_whole() {
    let c = catalog(None);
    let t = c.resolve("openrouter/anthropic/claude-sonnet-4").unwrap();
    assert_eq!(
        t,
        vec![Target {
            provider: 0,
            model: "anthropic/claude-sonnet-4".into()
        }]
    );
}

#[test]
fn alias_expands_in_order() {
    let c = catalog(None);
    let t = c.resolve("fast").unwrap();
    assert_eq!(c.provider_name(t[0].provider), "local");
    assert_eq!(t[0].model, "tiny");
    assert_eq!(t[1].model, "openai/gpt-4o-mini");
}

#[test]
fn unknown_model_names_providers() {
    let c = catalog(None);
    let err = c.resolve("anthropic/claude-sonnet-4").unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("anthropic/claude-sonnet-4") && msg.contains("openrouter, local"),
        "{msg}"
    );
}

#[test]
fn default_provider_takes_unprefixed_names_unchanged() {
    let c = catalog(Some("openrouter"));
    let t = c.resolve("anthropic/claude-sonnet-4").unwrap();
    assert_eq!(
        t,
        vec![Target {
            provider: 0,
            model: "anthropic/claude-sonnet-4".into()
        }]
    );
}

#[test]
fn empty_model_after_prefix_is_refused() {
    assert_eq!(
        catalog(None).resolve("local/"),
        Err(RouteError::EmptyModel("local/".into()))
    );
}

#[test]
fn plan_orders_model_then_fallbacks_without_duplicates() {
    let c = catalog(None);
    let t = plan(&c, Some("local/tiny"), &["fast".into(), "deep".into()]).unwrap();
    let names: Vec<String> = t
        .iter()
        .map(|t| format!("{}/{}", c.provider_name(t.provider), t.model))
        .collect();
    assert_eq!(
        names,
        [
            "local/tiny",
            "openrouter/openai/gpt-4o-mini",
            "openrouter/anthropic/claude-sonnet-4"
        ]
    );
}

#[test]
fn plan_without_model_uses_models_list() {
    let c = catalog(None);
    let t = plan(&c, None, &["deep".into()]).unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(plan(&c, None, &[]), Err(RouteError::NoModel));
}

#[test]
fn an_unknown_name_is_skipped_when_the_fallback_list_names_a_good_one() {
    let c = catalog(None);
    let t = plan(
        &c,
        Some("gpt-nowhere"),
        &["nowhere/x".into(), "local/tiny".into()],
    )
    .unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(c.provider_name(t[0].provider), "local");
    assert!(matches!(
        plan(&c, Some("gpt-nowhere"), &["nowhere/x".into()]),
        Err(RouteError::UnknownModel { model, .. }) if model == "gpt-nowhere"
    ));
    assert!(matches!(
        plan(&c, Some("gpt-nowhere"), &[]),
        Err(RouteError::UnknownModel { .. })
    ));
}

#[test]
fn plan_is_bounded() {
    let c = catalog(None);
    let many: Vec<String> = (0..40).map(|i| format!("local/m{i}")).collect();
    assert_eq!(plan(&c, None, &many), Err(RouteError::TooManyTargets));
}

#[test]
fn bad_catalogs_are_refused() {
    let dup = Catalog::new(["a", "a"], Vec::<(&str, Vec<String>)>::new(), None);
    assert_eq!(dup.unwrap_err(), CatalogError::DuplicateProvider("a".into()));
    let bad = Catalog::new(["a"], [("x", vec!["b/m".to_string()])], None);
    assert!(matches!(bad.unwrap_err(), CatalogError::BadRouteEntry { .. }));
    let empty = Catalog::new(["a"], [("x", vec![])], None);
    assert_eq!(empty.unwrap_err(), CatalogError::EmptyRoute("x".into()));
    let def = Catalog::new(["a"], Vec::<(&str, Vec<String>)>::new(), Some("b"));
    assert_eq!(def.unwrap_err(), CatalogError::UnknownDefault("b".into()));
}

proptest! {
    #[test]
    fn resolving_a_prefixed_name_forwards_exactly_the_rest(rest in "[a-zA-Z0-9._:/-]{1,40}") {
        let c = catalog(None);
        let t = c.resolve(&format!("local/{rest}")).unwrap();
        prop_assert_eq!(t, vec![Target { provider: 1, model: rest }]);
    }

    #[test]
    fn plan_never_repeats_and_never_exceeds_bound(names in proptest::collection::vec(
        prop_oneof![Just("fast".to_string()), Just("deep".to_string()), "local/[a-c]{1,2}"], 0..30)) {
        let c = catalog(None);
        if let Ok(t) = plan(&c, None, &names) {
            prop_assert!(t.len() <= MAX_TARGETS);
            for (i, a) in t.iter().enumerate() {
                prop_assert!(!t[i + 1..].contains(a));
            }
        }
    }
}
