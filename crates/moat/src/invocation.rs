//! Step one of a question: check what was typed, without touching the system, into [`Flags`].
//!
//! Every rule about flags lives here (how many models, which efforts, what `-rr` means) so it can be
//! tested with plain values; files named by flags are only read later, by [`crate::ask`].

use std::path::PathBuf;

use crate::cli::AskArgs;
use crate::Error;

/// More parallel models than this is refused: it is a comparison, not a load test.
pub const MAX_MODELS: usize = 10;
const EFFORTS: [&str; 5] = ["none", "minimal", "low", "medium", "high"];
const SORTS: [&str; 3] = ["price", "throughput", "latency"];

/// How hard the model should think.
#[derive(Debug, Clone, PartialEq)]
pub enum Effort {
    /// One of `none|minimal|low|medium|high`.
    Level(String),
    /// A reasoning token budget.
    Tokens(u64),
}

/// A value given either inline or as `@FILE`.
#[derive(Debug, Clone, PartialEq)]
pub enum TextOrFile {
    Text(String),
    File(PathBuf),
}

/// An image to attach.
#[derive(Debug, Clone, PartialEq)]
pub enum Image {
    /// Sent as is; the server fetches it.
    Url(String),
    /// Read and sent inline as a `data:` URL.
    File(PathBuf),
}

/// The validated flags of one question.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Flags {
    pub models: Vec<String>,
    pub system: Option<TextOrFile>,
    pub effort: Option<Effort>,
    pub show_reasoning: bool,
    pub continue_last: bool,
    pub images: Vec<Image>,
    pub sort: Option<String>,
    pub providers: Vec<String>,
    pub max_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub quiet: bool,
    pub force_stats: bool,
    pub json: bool,
    pub private: bool,
    /// The prompt words as typed; [`crate::prompt::assemble`] expands `@FILE`s and adds stdin.
    pub words: Vec<String>,
}

/// Checks a question's flags.
pub fn validate(args: &AskArgs) -> Result<Flags, Error> {
    if args.models.len() > MAX_MODELS {
        return Err(Error::usage(format!(
            "at most {MAX_MODELS} models can answer at once ({} given)",
            args.models.len()
        )));
    }
    if let Some(empty) = args.models.iter().find(|m| m.trim().is_empty()) {
        return Err(Error::usage(format!("empty model name '{empty}'")));
    }
    let (effort, show) = reasoning(&args.reasoning)?;
    if let Some(t) = args.temperature {
        if !(0.0..=2.0).contains(&t) {
            return Err(Error::usage(format!(
                "--temperature must be between 0 and 2, not {t}"
            )));
        }
    }
    if args.max_tokens == Some(0) {
        return Err(Error::usage("--max-tokens must be at least 1"));
    }
    let sort = args.sort.as_deref().map(check_sort).transpose()?;
    Ok(Flags {
        models: args.models.clone(),
        system: args.system.as_deref().map(text_or_file),
        effort,
        show_reasoning: show || args.show_reasoning,
        continue_last: args.continue_last,
        images: args.images.iter().map(|i| image(i)).collect::<Result<_, _>>()?,
        sort,
        providers: args.providers.clone(),
        max_tokens: args.max_tokens,
        temperature: args.temperature,
        quiet: args.quiet,
        force_stats: args.stats,
        json: args.json,
        private: args.private,
        words: args.prompt.clone(),
    })
}

/// `-r` values: `r` (what clap makes of `-rr`) means "show reasoning"; anything else is an effort,
/// at most one.
fn reasoning(values: &[String]) -> Result<(Option<Effort>, bool), Error> {
    let mut show = false;
    let mut effort = None;
    for value in values {
        if value == "r" {
            show = true;
            continue;
        }
        if effort.is_some() {
            return Err(Error::usage("give -r EFFORT only once"));
        }
        effort = Some(parse_effort(value)?);
    }
    Ok((effort, show))
}

pub fn parse_effort(value: &str) -> Result<Effort, Error> {
    let lower = value.to_ascii_lowercase();
    if EFFORTS.contains(&lower.as_str()) {
        return Ok(Effort::Level(lower));
    }
    match value.parse::<u64>() {
        Ok(0) | Err(_) => Err(Error::usage(format!(
            "reasoning effort '{value}' is not one of {} or a token count",
            EFFORTS.join("|")
        ))),
        Ok(tokens) => Ok(Effort::Tokens(tokens)),
    }
}

/// A provider sort from `-p` or a profile.
pub fn check_sort(value: &str) -> Result<String, Error> {
    let lower = value.to_ascii_lowercase();
    match SORTS.contains(&lower.as_str()) {
        true => Ok(lower),
        false => Err(Error::usage(format!(
            "sort '{value}' is not one of {}",
            SORTS.join("|")
        ))),
    }
}

fn text_or_file(value: &str) -> TextOrFile {
    match value.strip_prefix('@') {
        Some(rest) if !rest.is_empty() && !rest.starts_with('@') => TextOrFile::File(PathBuf::from(rest)),
        Some(rest) if rest.starts_with('@') => TextOrFile::Text(rest.to_owned()),
        _ => TextOrFile::Text(value.to_owned()),
    }
}

fn image(value: &str) -> Result<Image, Error> {
    if value.starts_with("https://") || value.starts_with("http://") || value.starts_with("data:") {
        return Ok(Image::Url(value.to_owned()));
    }
    if value.is_empty() {
        return Err(Error::usage("-f needs a file or a URL"));
    }
    Ok(Image::File(PathBuf::from(value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> AskArgs {
        AskArgs {
            prompt: vec!["hi".into()],
            ..AskArgs::default()
        }
    }

    #[test]
    fn reasoning_values() {
        let a = AskArgs {
            reasoning: vec!["r".into(), "HIGH".into()],
            ..args()
        };
        let f = validate(&a).unwrap();
        assert_eq!(f.effort, Some(Effort::Level("high".into())));
        assert!(f.show_reasoning);
        assert_eq!(parse_effort("2048").unwrap(), Effort::Tokens(2048));
        for bad in ["0", "extreme", "-3"] {
            assert!(parse_effort(bad).is_err(), "{bad}");
        }
        let twice = AskArgs {
            reasoning: vec!["low".into(), "high".into()],
            ..args()
        };
        assert_eq!(validate(&twice).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn limits() {
        let many = AskArgs {
            models: (0..11).map(|i| format!("m{i}")).collect(),
            ..args()
        };
        assert!(validate(&many).unwrap_err().to_string().contains("at most 10"));
        let hot = AskArgs {
            temperature: Some(2.5),
            ..args()
        };
        assert!(validate(&hot).is_err());
        let zero = AskArgs {
            max_tokens: Some(0),
            ..args()
        };
        assert!(validate(&zero).is_err());
        let sort = AskArgs {
            sort: Some("cheap".into()),
            ..args()
        };
        assert!(validate(&sort).is_err());
        assert_eq!(check_sort("Latency").unwrap(), "latency");
    }

    #[test]
    fn files_and_urls() {
        assert_eq!(text_or_file("@sys.txt"), TextOrFile::File("sys.txt".into()));
        assert_eq!(text_or_file("@@literal"), TextOrFile::Text("@literal".into()));
        assert_eq!(text_or_file("be brief"), TextOrFile::Text("be brief".into()));
        assert_eq!(
            image("https://x/y.png").unwrap(),
            Image::Url("https://x/y.png".into())
        );
        assert_eq!(image("a.png").unwrap(), Image::File("a.png".into()));
    }
}
