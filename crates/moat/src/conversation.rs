//! The last conversation of each terminal, so `-c` can continue it: one JSON file per terminal
//! (tmux pane, else TTY) under `$XDG_STATE_HOME/moat/conversations/`, written 0600 since prompts are
//! private. `--private` never calls [`save`].

use std::fs;
use std::path::{Path, PathBuf};

use moat_wire::openai::ChatMessage;
use serde::{Deserialize, Serialize};

use crate::keys::write_private;
use crate::paths::Env;
use crate::Error;

/// Bumped when the format changes incompatibly; older files are then ignored, not misread.
const FORMAT_VERSION: u32 = 1;

/// What `-c` needs to carry on: where, with which model and provider choice, and every turn so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub version: u32,
    pub base_url: String,
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<String>,
    pub messages: Vec<ChatMessage>,
}

impl Conversation {
    pub fn new(base_url: &str, model: &str, sort: Option<String>, providers: Vec<String>) -> Conversation {
        Conversation {
            version: FORMAT_VERSION,
            base_url: base_url.to_owned(),
            model: model.to_owned(),
            sort,
            providers,
            messages: Vec::new(),
        }
    }
}

/// Which terminal this is: `MOAT_SESSION` if set, else the tmux pane (panes share a TTY-less
/// server, so the pane is the finer unit), else the controlling TTY's path, else `default`.
pub fn session_id(env: &Env, tty: Option<&str>) -> String {
    if let Some(s) = env.get("MOAT_SESSION") {
        return format!("s-{}", sanitize(s));
    }
    if let (Some(pane), Some(server)) = (env.get("TMUX_PANE"), env.get("TMUX")) {
        // $TMUX is "socket,pid,session"; the socket tells servers apart.
        let socket = server.split(',').next().unwrap_or_default();
        return format!("tmux-{:08x}-{}", fnv1a(socket.as_bytes()) as u32, sanitize(pane));
    }
    match tty {
        Some(path) => format!("tty-{}", sanitize(path.trim_start_matches("/dev/"))),
        None => "default".to_owned(),
    }
}

/// The terminal device behind stdin, stdout or stderr (whichever is one), on Linux.
pub fn tty_name() -> Option<String> {
    (0..3).find_map(|fd| {
        let target = fs::read_link(format!("/proc/self/fd/{fd}")).ok()?;
        let target = target.to_str()?;
        let is_tty = target.starts_with("/dev/pts/") || target.starts_with("/dev/tty");
        is_tty.then(|| target.to_owned())
    })
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect()
}

/// A stable, dependency-free hash for file names (not for security).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The file of a session.
pub fn path(env: &Env, session: &str) -> Result<PathBuf, Error> {
    Ok(env
        .state_dir()?
        .join("conversations")
        .join(format!("{session}.json")))
}

/// The saved conversation, if there is a readable one of this format.
pub fn load(path: &Path) -> Result<Option<Conversation>, Error> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    };
    Ok(serde_json::from_str::<Conversation>(&text)
        .ok()
        .filter(|c| c.version == FORMAT_VERSION))
}

pub fn save(path: &Path, conversation: &Conversation) -> Result<(), Error> {
    let json = serde_json::to_vec(conversation)
        .map_err(|e| Error::usage(format!("cannot encode the conversation: {e}")))?;
    write_private(path, &json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids() {
        let env = Env::from_pairs([
            ("MOAT_SESSION", "my test/1"),
            ("TMUX_PANE", "%3"),
            ("TMUX", "/tmp/s,1,0"),
        ]);
        assert_eq!(session_id(&env, Some("/dev/pts/1")), "s-my_test_1");
        let env = Env::from_pairs([("TMUX_PANE", "%3"), ("TMUX", "/tmp/s,1,0")]);
        let id = session_id(&env, Some("/dev/pts/1"));
        assert!(id.starts_with("tmux-") && id.ends_with("-_3"), "{id}");
        assert_eq!(session_id(&Env::default(), Some("/dev/pts/7")), "tty-pts_7");
        assert_eq!(session_id(&Env::default(), None), "default");
    }

    #[test]
    fn round_trip_and_version_gate() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c").join("x.json");
        let mut c = Conversation::new("https://h/v1", "m", Some("price".into()), vec![]);
        c.messages.push(ChatMessage::user("hi"));
        save(&p, &c).unwrap();
        assert_eq!(load(&p).unwrap(), Some(c.clone()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        }
        c.version = 99;
        save(&p, &c).unwrap();
        assert_eq!(load(&p).unwrap(), None);
        assert_eq!(load(&dir.path().join("none.json")).unwrap(), None);
    }
}
