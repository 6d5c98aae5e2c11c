//! The operator's commands on a supervisor's store, from this machine
//! (they open the data directory; a running supervisor sees their changes
//! within seconds): tokens, and agents' and modules' certificates.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use vcp_common::identity::Role;
use vcp_store::accounts::rfc3339;
use vcp_store::Store;

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a token for an account and print it (it is stored hashed and
    /// cannot be shown again).
    Create {
        /// The account: `operator`, a customer id or a vendor id.
        #[arg(long)]
        account: String,
        /// operator, customer, vendor, or enrol: a join token for agents
        /// whose id is in `--account` (an id, `prefix-*` or `*`), or for
        /// remote modules with `module:` before that (`module:acme-*`).
        #[arg(long)]
        role: vcp_store::accounts::Role,
        /// A join token's enrolments at most (no bound without).
        #[arg(long)]
        uses: Option<u32>,
        /// How long the token lives: `3s`, `1h`, `30d`…, or `never`
        /// (operator only).
        #[arg(long, default_value = "90d")]
        ttl: vcp_store::accounts::Ttl,
        /// The supervisor's data directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The supervisor's configuration: when given, the account must
        /// exist there with that role.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// List the tokens (never their secrets).
    List {
        /// The supervisor's data directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Revoke a token by its id (from `vcp token list`); a running
    /// supervisor refuses it within seconds.
    Revoke {
        id: String,
        /// The supervisor's data directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

/// `vcp agent …` and `vcp module …`.
#[derive(Subcommand, Debug)]
pub enum CredentialCommand {
    /// Every certificate seen at a handshake or issued: id, serial, expiry,
    /// last seen and state.
    List {
        /// The supervisor's data directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Revoke every certificate of this id recorded so far: its live
    /// session is closed within seconds and the certificate refused at
    /// every later handshake (a new enrolment issues a new one).
    Revoke {
        id: String,
        /// Also this certificate (PEM, as `vcp certs` wrote it), even if it
        /// was never presented: it is refused from its first handshake.
        #[arg(long)]
        cert: Option<PathBuf>,
        /// The supervisor's data directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

/// Who runs this command, for the audit trail.
fn cli_actor() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown user".into());
    format!("cli ({user})")
}

fn store(data_dir: Option<PathBuf>) -> anyhow::Result<Store> {
    let dir = data_dir.unwrap_or_else(vcp_supervisor::config::default_data_dir);
    let (store, _) =
        Store::open(&dir).with_context(|| format!("opening the store in {}", dir.display()))?;
    Ok(store)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub fn tokens(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create {
            account,
            role,
            uses,
            ttl,
            data_dir,
            config,
        } => create_token(&account, role, (ttl, uses), data_dir, config),
        TokenCommand::List { data_dir } => list_tokens(data_dir),
        TokenCommand::Revoke { id, data_dir } => revoke_token(&id, data_dir),
    }
}

fn create_token(
    account: &str,
    role: vcp_store::accounts::Role,
    (ttl, uses): (vcp_store::accounts::Ttl, Option<u32>),
    data_dir: Option<PathBuf>,
    config: Option<PathBuf>,
) -> anyhow::Result<()> {
    use vcp_store::accounts::{Role, Ttl};
    use vcp_supervisor::config::check_account;
    if account == vcp_core::plane::OPERATOR && role != Role::Operator {
        anyhow::bail!("account {account:?} is the operator's: use --role operator");
    }
    if let Some(path) = config {
        let file = vcp_supervisor::config::SupervisorFile::load(&path)?;
        check_account(&file, account, role).map_err(anyhow::Error::msg)?;
    } else if role == Role::Operator {
        check_account(&Default::default(), account, role).map_err(anyhow::Error::msg)?;
    }
    if ttl == Ttl::Never {
        tracing::warn!("this token never expires: revoke it with `vcp token revoke` when done");
    }
    if uses.is_some() && role != Role::Enrol {
        anyhow::bail!("--uses bounds a join token's enrolments: use it with --role enrol");
    }
    let accounts = store(data_dir)?.accounts();
    let issued = match role {
        Role::Enrol => accounts.issue_join(account, ttl, uses, &cli_actor())?,
        _ => accounts.issue(account, role, ttl, &cli_actor())?,
    };
    println!("{}", issued.token);
    Ok(())
}

fn list_tokens(data_dir: Option<PathBuf>) -> anyhow::Result<()> {
    let time = |ms: Option<i64>, none: &str| ms.map_or(none.to_owned(), rfc3339);
    println!(
        "{:<12}  {:<16}  {:<8}  {:<20}  {:<20}  {:<20}  state",
        "id", "account", "role", "created", "expires", "last used"
    );
    let now = now_ms();
    for t in store(data_dir)?.accounts().list()? {
        let state = match (t.revoked_ms, t.expires_ms, t.uses_left) {
            (Some(at), _, _) => format!("revoked {}", rfc3339(at)),
            (None, Some(e), _) if e <= now => "expired".to_owned(),
            (None, _, Some(0)) => "spent".to_owned(),
            (None, _, Some(n)) => format!("valid, {n} enrolment(s) left"),
            _ => "valid".to_owned(),
        };
        println!(
            "{:<12}  {:<16}  {:<8}  {:<20}  {:<20}  {:<20}  {state}",
            t.id,
            t.account,
            t.role.as_str(),
            rfc3339(t.created_ms),
            time(t.expires_ms, "never"),
            time(t.last_used_ms, "never"),
        );
    }
    Ok(())
}

fn revoke_token(id: &str, data_dir: Option<PathBuf>) -> anyhow::Result<()> {
    let t = store(data_dir)?.accounts().revoke(id, &cli_actor())?;
    let at = t.revoked_ms.map_or_else(String::new, rfc3339);
    println!("revoked {} ({} {}) at {at}", t.id, t.role, t.account);
    Ok(())
}

pub fn credentials(role: Role, command: CredentialCommand) -> anyhow::Result<()> {
    match command {
        CredentialCommand::List { data_dir } => {
            println!(
                "{:<24}  {:<40}  {:<20}  {:<20}  state",
                role.name(),
                "serial",
                "expires",
                "last seen"
            );
            let now = now_ms();
            for c in store(data_dir)?.credentials().list()? {
                if c.role != role.name() {
                    continue;
                }
                let state = match c.revoked_ms {
                    Some(at) => format!("revoked {}", rfc3339(at)),
                    None if c.not_after_ms <= now => "expired".to_owned(),
                    None => "valid".to_owned(),
                };
                println!(
                    "{:<24}  {:<40}  {:<20}  {:<20}  {state}",
                    c.id,
                    c.serial,
                    rfc3339(c.not_after_ms),
                    rfc3339(c.last_seen_ms),
                );
            }
            Ok(())
        }
        CredentialCommand::Revoke { id, cert, data_dir } => {
            let credentials = store(data_dir)?.credentials();
            let n = match cert {
                None => credentials.revoke(role, &id, &cli_actor())?,
                Some(path) => {
                    let facts = certificate_of(&path, role, &id)?;
                    let which = (facts.serial.as_str(), facts.not_after_ms);
                    credentials.revoke_certificate(role, &id, which, &cli_actor())?
                }
            };
            println!("revoked {n} certificate(s) of {} {id}", role.name());
            Ok(())
        }
    }
}

/// The certificate in `path`, which must name `id` in `role`.
fn certificate_of(
    path: &std::path::Path,
    role: Role,
    id: &str,
) -> anyhow::Result<vcp_transport::cert::Facts> {
    let chain = vcp_common::identity::certs_from_pem_file(path)?;
    let leaf = chain
        .first()
        .with_context(|| format!("{}: no certificate", path.display()))?;
    let facts =
        vcp_transport::cert::facts(leaf).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let names = facts.dns_names.iter().map(String::as_str);
    let named = vcp_common::identity::identity_in(names, role)
        .with_context(|| format!("{}", path.display()))?;
    anyhow::ensure!(
        named == id,
        "{} is {} {named}'s certificate, not {id}'s",
        path.display(),
        role.name()
    );
    Ok(facts)
}
