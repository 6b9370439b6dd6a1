//! Assembling the prompt text from the words on the command line, `@FILE`s, and piped stdin.
//!
//! Pure apart from the file reader it is handed, so the joining rules are tested without files.

use std::io::{self, Read};
use std::path::Path;

use crate::Error;

/// A prompt larger than this is refused before anything is sent: most likely a wrong file.
pub const MAX_PROMPT_BYTES: usize = 32 * 1024 * 1024;

/// Reads all of piped stdin.
pub fn read_stdin() -> Result<String, Error> {
    let mut bytes = Vec::new();
    io::stdin()
        .lock()
        .take(MAX_PROMPT_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io("reading stdin", e))?;
    if bytes.len() > MAX_PROMPT_BYTES {
        return Err(Error::usage("stdin is larger than 32 MiB"));
    }
    String::from_utf8(bytes).map_err(|_| Error::usage("stdin is not UTF-8 text"))
}

/// The prompt: runs of plain words joined by spaces, each `@FILE` as its own paragraph (`@@x` is the
/// literal word `@x`), and piped stdin last, after a blank line. An empty prompt is a usage error.
pub fn assemble(
    words: &[String],
    stdin: Option<&str>,
    read_file: &dyn Fn(&Path) -> io::Result<String>,
) -> Result<String, Error> {
    let mut paragraphs: Vec<String> = Vec::new();
    let mut run: Vec<&str> = Vec::new();
    for word in words {
        match word.strip_prefix('@') {
            Some(name) if !name.is_empty() && !name.starts_with('@') => {
                if !run.is_empty() {
                    paragraphs.push(run.join(" "));
                    run.clear();
                }
                let text = read_file(Path::new(name))
                    .map_err(|e| Error::usage(format!("cannot read @{name}: {e}")))?;
                paragraphs.push(text.trim_end().to_owned());
            }
            Some(literal) if literal.starts_with('@') => run.push(literal),
            _ => run.push(word),
        }
    }
    if !run.is_empty() {
        paragraphs.push(run.join(" "));
    }
    if let Some(text) = stdin.map(str::trim_end).filter(|t| !t.trim().is_empty()) {
        paragraphs.push(text.to_owned());
    }
    let prompt = paragraphs.join("\n\n");
    if prompt.trim().is_empty() {
        return Err(Error::usage(
            "no prompt: give it as arguments, @FILE or on stdin (see moat --help)",
        ));
    }
    if prompt.len() > MAX_PROMPT_BYTES {
        return Err(Error::usage("the prompt is larger than 32 MiB"));
    }
    Ok(prompt)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| (*s).to_owned()).collect()
    }

    fn files(path: &Path) -> io::Result<String> {
        match path.to_str() {
            Some("trace.txt") => Ok("line 1\nline 2\n".to_owned()),
            _ => Err(io::Error::new(io::ErrorKind::NotFound, "no such file")),
        }
    }

    #[test]
    fn words_files_and_stdin() {
        let p = assemble(
            &words(&["explain", "this", "@trace.txt", "briefly"]),
            Some("piped\n"),
            &files,
        );
        assert_eq!(p.unwrap(), "explain this\n\nline 1\nline 2\n\nbriefly\n\npiped");
        assert_eq!(
            assemble(&words(&["mail", "@@bob"]), None, &files).unwrap(),
            "mail @bob"
        );
        assert_eq!(assemble(&[], Some("only stdin\n"), &files).unwrap(), "only stdin");
        assert_eq!(assemble(&words(&["q"]), Some("  \n"), &files).unwrap(), "q");
    }

    #[test]
    fn failures_are_usage_errors() {
        let e = assemble(&words(&["@missing"]), None, &files).unwrap_err();
        assert!(e.to_string().contains("@missing") && e.exit_code() == 2);
        assert_eq!(assemble(&[], None, &files).unwrap_err().exit_code(), 2);
        assert_eq!(
            assemble(&words(&[" "]), Some(""), &files)
                .unwrap_err()
                .exit_code(),
            2
        );
    }
}
