//! `moat models [--json] [FILTER]`: the endpoint's models with context length and prices per million
//! tokens (OpenRouter publishes prices per token as decimal strings).

use moat_wire::openai::{Model, ModelList, ModelPricing};

use crate::cli::{Common, ModelsArgs};
use crate::net::Client;
use crate::paths::Env;
use crate::Error;

pub fn run(env: &Env, common: &Common, args: &ModelsArgs) -> Result<(), Error> {
    let (client, _, _) = Client::for_profile(env, common)?;
    let bytes = client.get("/models")?;
    let list: ModelList = serde_json::from_slice(&bytes)
        .map_err(|e| Error::Network(format!("the model list is not in OpenAI's shape: {e}")))?;
    let models = filter(list.data, args.filter.as_deref());
    if args.json {
        let text = serde_json::to_string_pretty(&models)
            .map_err(|e| Error::Network(format!("cannot encode the list: {e}")))?;
        println!("{text}");
    } else {
        print!("{}", table(&models));
    }
    Ok(())
}

/// Models whose id or name contains `filter`, case-insensitively, sorted by id.
pub fn filter(models: Vec<Model>, filter: Option<&str>) -> Vec<Model> {
    let needle = filter.map(str::to_lowercase);
    let mut kept: Vec<Model> = models
        .into_iter()
        .filter(|m| match &needle {
            None => true,
            Some(n) => {
                m.id.to_lowercase().contains(n)
                    || m.name
                        .as_deref()
                        .is_some_and(|name| name.to_lowercase().contains(n))
            }
        })
        .collect();
    kept.sort_by(|a, b| a.id.cmp(&b.id));
    kept
}

/// A price per token as dollars per million tokens: `-` unknown, `free` zero.
pub fn per_million(price: Option<&serde_json::Value>) -> String {
    match ModelPricing::usd(price) {
        None => "-".to_owned(),
        Some(0.0) => "free".to_owned(),
        Some(p) if p < 0.0 => "varies".to_owned(),
        Some(p) => {
            let m = p * 1_000_000.0;
            if m >= 10.0 {
                format!("${m:.1}")
            } else {
                format!("${m:.3}")
            }
        }
    }
}

/// The aligned table.
pub fn table(models: &[Model]) -> String {
    let rows: Vec<[String; 4]> = models
        .iter()
        .map(|m| {
            let pricing = m.pricing.as_ref();
            [
                m.id.clone(),
                m.context_length
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "-".into()),
                per_million(pricing.and_then(|p| p.prompt.as_ref())),
                per_million(pricing.and_then(|p| p.completion.as_ref())),
            ]
        })
        .collect();
    let header = [
        "MODEL".to_owned(),
        "CONTEXT".into(),
        "$/M IN".into(),
        "$/M OUT".into(),
    ];
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let line = format!(
            "{:<w0$}  {:>w1$}  {:>w2$}  {:>w3$}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn models() -> Vec<Model> {
        serde_json::from_value(json!([
            {"id": "tiny", "name": "Tiny", "context_length": 4096, "pricing": {"prompt": "0.000001", "completion": "0.000002"}},
            {"id": "a/free", "name": "Free One", "pricing": {"prompt": "0", "completion": 0}},
            {"id": "local-llama"}
        ]))
        .unwrap()
    }

    #[test]
    fn filters_and_sorts() {
        let ids: Vec<_> = filter(models(), None).into_iter().map(|m| m.id).collect();
        assert_eq!(ids, ["a/free", "local-llama", "tiny"]);
        let ids: Vec<_> = filter(models(), Some("FREE")).into_iter().map(|m| m.id).collect();
        assert_eq!(ids, ["a/free"]);
        assert!(filter(models(), Some("tin")).len() == 1);
    }

    #[test]
    fn table_cells() {
        let t = table(&filter(models(), None));
        let lines: Vec<_> = t.lines().collect();
        assert_eq!(lines[0], "MODEL        CONTEXT  $/M IN  $/M OUT");
        assert_eq!(lines[1], "a/free             -    free     free");
        assert_eq!(lines[3], "tiny            4096  $1.000   $2.000");
        assert_eq!(per_million(Some(&json!("0.000015"))), "$15.0");
        assert_eq!(per_million(Some(&json!("-1"))), "varies");
    }
}
