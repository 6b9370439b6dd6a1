//! Drawing on the terminal: the spinner on stderr until the first token, reasoning dimmed on stderr,
//! the answer on stdout as it streams, labelled answers of several models, errors as one line, and a
//! clean exit on Ctrl-C. Nothing here decides anything; it only writes.

use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::answer::Piece;
use crate::Error;

const FRAMES: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
const TICK: Duration = Duration::from_millis(80);
const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";
const CLEAR_LINE: &str = "\r\x1b[2K";

/// Which of our outputs are terminals; decides spinner, colour and stats.
#[derive(Debug, Clone, Copy, Default)]
pub struct Term {
    pub stdout_tty: bool,
    pub stderr_tty: bool,
}

impl Term {
    pub fn detect() -> Term {
        Term {
            stdout_tty: io::stdout().is_terminal(),
            stderr_tty: io::stderr().is_terminal(),
        }
    }
}

/// A spinner on stderr, drawn by its own thread until stopped; a no-op when stderr is not a terminal.
pub struct Spinner {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Spinner {
    pub fn start(label: String, enabled: bool) -> Spinner {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = enabled.then(|| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut err = io::stderr();
                for frame in FRAMES.iter().cycle() {
                    if stop.load(Ordering::Acquire) {
                        break;
                    }
                    let _ = write!(err, "{CLEAR_LINE}{frame} {label}");
                    let _ = err.flush();
                    std::thread::park_timeout(TICK);
                }
                let _ = write!(err, "{CLEAR_LINE}");
                let _ = err.flush();
            })
        });
        Spinner { stop, thread }
    }

    /// Stops and erases the spinner; returns once the line is clear, so output can follow.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Writes one model's answer as it streams: the spinner goes at the first piece, reasoning (if
/// shown) goes dimmed to stderr, the answer to stdout, flushed per piece.
pub struct Live {
    spinner: Spinner,
    term: Term,
    show_reasoning: bool,
    in_reasoning: bool,
    wrote_content: bool,
    ends_with_newline: bool,
}

impl Live {
    pub fn new(spinner: Spinner, term: Term, show_reasoning: bool) -> Live {
        Live {
            spinner,
            term,
            show_reasoning,
            in_reasoning: false,
            wrote_content: false,
            ends_with_newline: true,
        }
    }

    pub fn stop_spinner(&mut self) {
        self.spinner.stop();
    }

    pub fn piece(&mut self, piece: Piece<'_>) -> Result<(), Error> {
        if matches!(piece, Piece::Reasoning(_)) && !self.show_reasoning {
            return Ok(()); // hidden reasoning: the spinner keeps saying "still working"
        }
        self.spinner.stop();
        match piece {
            Piece::Reasoning(text) if self.show_reasoning => {
                let mut err = io::stderr().lock();
                if !self.in_reasoning && self.term.stderr_tty {
                    let _ = write!(err, "{DIM}");
                }
                self.in_reasoning = true;
                let _ = write!(err, "{text}");
                let _ = err.flush();
            }
            Piece::Reasoning(_) => {}
            Piece::Content(text) => {
                self.end_reasoning();
                let mut out = io::stdout().lock();
                out.write_all(text.as_bytes()).map_err(stdout_error)?;
                out.flush().map_err(stdout_error)?;
                self.wrote_content = true;
                self.ends_with_newline = text.ends_with('\n');
            }
        }
        Ok(())
    }

    fn end_reasoning(&mut self) {
        if self.in_reasoning {
            let reset = if self.term.stderr_tty { RESET } else { "" };
            eprintln!("{reset}");
            self.in_reasoning = false;
        }
    }

    /// Ends the answer with a newline so the shell prompt starts on its own line.
    pub fn finish(&mut self) -> Result<(), Error> {
        self.spinner.stop();
        self.end_reasoning();
        if self.wrote_content && !self.ends_with_newline {
            let mut out = io::stdout().lock();
            out.write_all(b"\n").map_err(stdout_error)?;
            out.flush().map_err(stdout_error)?;
        }
        Ok(())
    }
}

fn stdout_error(e: io::Error) -> Error {
    Error::io("writing the answer", e)
}

/// One finished answer of several: a label line, the reasoning if asked, the text.
pub fn labelled(model: &str, reasoning: &str, content: &str, term: Term) -> Result<(), Error> {
    let mut out = io::stdout().lock();
    let label = match term.stdout_tty {
        true => format!("\x1b[1m── {model} ──{RESET}\n"),
        false => format!("── {model} ──\n"),
    };
    out.write_all(label.as_bytes()).map_err(stdout_error)?;
    if !reasoning.is_empty() {
        let (dim, reset) = if term.stdout_tty { (DIM, RESET) } else { ("", "") };
        writeln!(out, "{dim}{}{reset}", reasoning.trim_end()).map_err(stdout_error)?;
    }
    out.write_all(content.as_bytes()).map_err(stdout_error)?;
    let end = if content.ends_with('\n') { "\n" } else { "\n\n" };
    out.write_all(end.as_bytes()).map_err(stdout_error)?;
    out.flush().map_err(stdout_error)
}

/// A stats or note line on stderr, dimmed on a terminal.
pub fn note(line: &str, term: Term) {
    match term.stderr_tty {
        true => eprintln!("{DIM}{line}{RESET}"),
        false => eprintln!("{line}"),
    }
}

/// Errors are one line on stderr, prefixed so they stand out from an answer.
pub fn report_error(e: &Error) {
    let text = e.to_string().replace(['\n', '\r'], " ");
    eprintln!("moat: {text}");
}

/// On Ctrl-C: erase the spinner, undo any dimming, say so, and exit 130 without saving a half turn.
pub fn install_interrupt_handler() {
    let _ = ctrlc::set_handler(|| {
        let mut err = io::stderr();
        if err.is_terminal() {
            let _ = write!(err, "{CLEAR_LINE}{RESET}");
        }
        let _ = writeln!(err, "moat: interrupted");
        let _ = err.flush();
        std::process::exit(130);
    });
}
