//! `moat login`: read a key from a no-echo prompt (or piped stdin) and store it for a profile.

use std::io::{self, BufRead, IsTerminal};

use crate::cli::Common;
use crate::config::ConfigFile;
use crate::keys::{self, KeySource};
use crate::paths::Env;
use crate::Error;

pub fn run(env: &Env, common: &Common) -> Result<(), Error> {
    let config = ConfigFile::load(env)?;
    let (profile_name, _) = config.select(common.profile.as_deref())?;
    let raw = if io::stdin().is_terminal() {
        rpassword::prompt_password(format!("API key for profile '{profile_name}' (input hidden): "))
            .map_err(|e| Error::io("reading the key from the terminal", e))?
    } else {
        let mut line = String::new();
        io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Error::io("reading the key from stdin", e))?;
        line
    };
    let key = keys::parse_key(&raw)?;
    let stored = keys::store(env, &profile_name, &key)?;
    let note = match &stored {
        KeySource::File(_) => " (mode 0600; no OS keyring was reachable or MOAT_KEYRING=off)",
        _ => "",
    };
    println!("Stored the key for profile '{profile_name}' in the {stored}{note}.");
    println!("Check it with `moat doctor`: it also tells you whether the key has a spend limit.");
    Ok(())
}
