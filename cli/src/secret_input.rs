//! Where `put` takes the password from. `--password` is the simplest, but the value shows in
//! `ps` to every user of the machine and stays in the shell's history; `--password-stdin` (the
//! first line of standard input) and `PWCACHE_PASSWORD` do not.

use std::io::BufRead;

use clap::Args;

use crate::exit::Failure;

/// The environment variable read when neither option is given.
pub const PASSWORD_VAR: &str = "PWCACHE_PASSWORD";

#[derive(Args, Clone, Debug)]
#[group(multiple = false)]
pub struct PasswordInput {
    /// The proxy's password (stored encrypted). Shown to other users by `ps` and kept in shell
    /// history: prefer --password-stdin or $PWCACHE_PASSWORD.
    #[arg(long, value_name = "PASSWORD")]
    password: Option<String>,
    /// Read the password from the first line of standard input (its line ending removed).
    #[arg(long)]
    password_stdin: bool,
}

impl PasswordInput {
    /// The password: --password, else --password-stdin, else $PWCACHE_PASSWORD, else none.
    pub fn read(&self) -> Result<Option<String>, Failure> {
        if let Some(password) = &self.password {
            return Ok(Some(password.clone()));
        }
        if self.password_stdin {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).map_err(|e| {
                Failure::new(1, format!("cannot read the password from stdin: {e}"))
            })?;
            let password = line.strip_suffix('\n').unwrap_or(&line);
            let password = password.strip_suffix('\r').unwrap_or(password);
            if password.is_empty() {
                return Err(Failure::new(
                    1,
                    "--password-stdin: standard input held no password (an empty first line)",
                ));
            }
            return Ok(Some(password.to_string()));
        }
        match std::env::var(PASSWORD_VAR) {
            Ok(password) if !password.is_empty() => Ok(Some(password)),
            Ok(_) | Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(Failure::new(
                1,
                format!("{PASSWORD_VAR} is not valid UTF-8"),
            )),
        }
    }
}
