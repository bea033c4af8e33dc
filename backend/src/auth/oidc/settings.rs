//! The `oidc` section of the configuration: which provider, which client, how the provider's
//! groups become talos-dr roles, and who may still sign in with a local password.
//!
//! ```yaml
//! oidc:
//!   issuer: https://login.example.com/realms/sre
//!   client_id: talos-dr
//!   client_secret_file: /etc/talos-dr/oidc-client-secret
//!   redirect_url: https://talos-dr.example.com/api/auth/oidc/callback
//!   provider_name: Example SSO        # on the button; the issuer's host otherwise
//!   scopes: [openid, profile, email, groups]
//!   groups_claim: groups
//!   roles:                            # provider group -> talos-dr roles
//!     sre-oncall: [operator]
//!     sre-leads: [approver]
//!     platform-admins: [admin]
//!   local_sign_in: break_glass        # or everyone (the default)
//!   break_glass_accounts: [admin]
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::Deserialize;
use talos_dr_shared::Role;
use talos_dr_shared::sign_in::LocalSignIn;

use crate::config::Secret;

pub const DEFAULT_GROUPS_CLAIM: &str = "groups";
pub const DEFAULT_SCOPES: [&str; 4] = ["openid", "profile", "email", "groups"];

/// The OIDC settings after every layer is applied and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct OidcSettings {
    /// Exactly as the provider writes it in its discovery document's `issuer`.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// The console's public callback URL, registered at the provider.
    pub redirect_url: String,
    pub provider_name: String,
    pub scopes: Vec<String>,
    pub groups_claim: String,
    /// Provider group → the talos-dr roles its members get.
    pub roles: BTreeMap<String, BTreeSet<Role>>,
    pub local_sign_in: LocalSignIn,
    pub break_glass_accounts: BTreeSet<String>,
}

impl OidcSettings {
    /// The roles a user in `groups` gets; empty means no access.
    pub fn roles_for(&self, groups: &[String]) -> Vec<Role> {
        let mut roles: BTreeSet<Role> = BTreeSet::new();
        for group in groups {
            if let Some(mapped) = self.roles.get(group) {
                roles.extend(mapped.iter().copied());
            }
        }
        roles.into_iter().collect()
    }

    /// Whether `username` may sign in with a local password.
    pub fn local_sign_in_allowed(&self, username: &str) -> bool {
        match self.local_sign_in {
            LocalSignIn::Everyone => true,
            LocalSignIn::BreakGlass => self.break_glass_accounts.contains(username),
        }
    }
}

/// The `oidc:` section as written in the config file.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcFileSection {
    issuer: Option<String>,
    client_id: Option<String>,
    client_secret_file: Option<PathBuf>,
    redirect_url: Option<String>,
    provider_name: Option<String>,
    scopes: Option<Vec<String>>,
    groups_claim: Option<String>,
    #[serde(default)]
    roles: BTreeMap<String, Vec<Role>>,
    local_sign_in: Option<LocalSignIn>,
    #[serde(default)]
    break_glass_accounts: Vec<String>,
}

/// OIDC flags; each also reads the environment variable named here.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct OidcArgs {
    /// OpenID Connect issuer URL; turns on sign-in through that provider.
    #[arg(long, env = "TALOS_DR_OIDC_ISSUER", value_name = "URL")]
    pub oidc_issuer: Option<String>,
    /// The console's client id at the provider.
    #[arg(long, env = "TALOS_DR_OIDC_CLIENT_ID", value_name = "ID")]
    pub oidc_client_id: Option<String>,
    /// The client secret (prefer --oidc-client-secret-file: flags show up in process lists).
    #[arg(
        long,
        env = "TALOS_DR_OIDC_CLIENT_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub oidc_client_secret: Option<String>,
    /// File holding the client secret.
    #[arg(long, env = "TALOS_DR_OIDC_CLIENT_SECRET_FILE", value_name = "PATH")]
    pub oidc_client_secret_file: Option<PathBuf>,
    /// The console's public callback URL, e.g. https://talos-dr.example.com/api/auth/oidc/callback.
    #[arg(long, env = "TALOS_DR_OIDC_REDIRECT_URL", value_name = "URL")]
    pub oidc_redirect_url: Option<String>,
    /// Name on the sign-in button [default: the issuer's host].
    #[arg(long, env = "TALOS_DR_OIDC_PROVIDER_NAME", value_name = "NAME")]
    pub oidc_provider_name: Option<String>,
    /// Claim holding the user's groups [default: groups].
    #[arg(long, env = "TALOS_DR_OIDC_GROUPS_CLAIM", value_name = "CLAIM")]
    pub oidc_groups_claim: Option<String>,
    /// Scopes to ask for, comma-separated [default: openid,profile,email,groups].
    #[arg(
        long,
        env = "TALOS_DR_OIDC_SCOPES",
        value_name = "SCOPES",
        value_delimiter = ','
    )]
    pub oidc_scopes: Option<Vec<String>>,
    /// A provider group and the roles its members get; repeat for several groups.
    #[arg(long = "oidc-role", value_name = "GROUP=ROLE[,ROLE]", value_parser = parse_role_flag)]
    pub oidc_roles: Vec<(String, Vec<Role>)>,
    /// Who may sign in with a local password: everyone, or break_glass accounts only.
    #[arg(long, env = "TALOS_DR_LOCAL_SIGN_IN", value_name = "WHO", value_parser = parse_local_sign_in)]
    pub local_sign_in: Option<LocalSignIn>,
    /// A local account that may sign in with its password when local sign-in is break_glass;
    /// repeat for several.
    #[arg(long = "break-glass-account", value_name = "USERNAME")]
    pub break_glass_accounts: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum OidcConfigError {
    #[error("oidc.{field}: {message}")]
    Field {
        field: &'static str,
        message: String,
    },
    #[error("oidc: {0} is required once an OIDC issuer is set")]
    Missing(&'static str),
    #[error(
        "local_sign_in break_glass needs an OIDC provider (oidc.issuer): nobody else could sign in"
    )]
    BreakGlassWithoutOidc,
}

fn field(field: &'static str, message: impl Into<String>) -> OidcConfigError {
    OidcConfigError::Field {
        field,
        message: message.into(),
    }
}

fn parse_role_flag(text: &str) -> Result<(String, Vec<Role>), String> {
    let bad = || {
        format!(
            "{text:?}: expected GROUP=ROLE[,ROLE] with roles viewer, operator, approver or admin"
        )
    };
    let (group, roles) = text.split_once('=').ok_or_else(bad)?;
    let roles = roles
        .split(',')
        .map(|r| Role::parse(r.trim()).ok_or_else(bad))
        .collect::<Result<Vec<_>, _>>()?;
    if group.is_empty() {
        return Err(bad());
    }
    Ok((group.to_string(), roles))
}

fn parse_local_sign_in(text: &str) -> Result<LocalSignIn, String> {
    match text {
        "everyone" => Ok(LocalSignIn::Everyone),
        "break_glass" => Ok(LocalSignIn::BreakGlass),
        _ => Err(format!("{text:?}: use everyone or break_glass")),
    }
}

/// A URL the console will call or send browsers to: absolute http(s) with a host.
fn check_url(name: &'static str, value: &str) -> Result<(), OidcConfigError> {
    let url = reqwest::Url::parse(value).map_err(|e| field(name, format!("{value:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(field(name, format!("{value:?} is not an http(s) URL")));
    }
    Ok(())
}

/// Joins the file section and the flags (flags win) into checked settings; `None` when no
/// issuer is set anywhere.
pub fn resolve(
    file: Option<OidcFileSection>,
    args: &OidcArgs,
) -> Result<Option<OidcSettings>, OidcConfigError> {
    let file = file.unwrap_or_default();
    let local_sign_in = args
        .local_sign_in
        .or(file.local_sign_in)
        .unwrap_or_default();
    let Some(issuer) = args.oidc_issuer.clone().or(file.issuer) else {
        if local_sign_in == LocalSignIn::BreakGlass {
            return Err(OidcConfigError::BreakGlassWithoutOidc);
        }
        return Ok(None);
    };
    check_url("issuer", &issuer)?;
    let client_id = args
        .oidc_client_id
        .clone()
        .or(file.client_id)
        .filter(|id| !id.is_empty())
        .ok_or(OidcConfigError::Missing("client_id"))?;
    let client_secret = match (&args.oidc_client_secret, &args.oidc_client_secret_file) {
        (Some(secret), _) => secret.clone(),
        (None, Some(path)) => read_secret(path)?,
        (None, None) => match &file.client_secret_file {
            Some(path) => read_secret(path)?,
            None => return Err(OidcConfigError::Missing("client_secret_file")),
        },
    };
    if client_secret.is_empty() {
        return Err(field("client_secret_file", "the client secret is empty"));
    }
    let redirect_url = args
        .oidc_redirect_url
        .clone()
        .or(file.redirect_url)
        .ok_or(OidcConfigError::Missing("redirect_url"))?;
    check_url("redirect_url", &redirect_url)?;
    let provider_name = match args.oidc_provider_name.clone().or(file.provider_name) {
        Some(name) => name,
        None => reqwest::Url::parse(&issuer)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_else(|| issuer.clone()),
    };
    let scopes = args
        .oidc_scopes
        .clone()
        .or(file.scopes)
        .unwrap_or_else(|| DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect());
    if !scopes.iter().any(|s| s == "openid") {
        return Err(field("scopes", "must include openid"));
    }
    let groups_claim = args
        .oidc_groups_claim
        .clone()
        .or(file.groups_claim)
        .unwrap_or_else(|| DEFAULT_GROUPS_CLAIM.to_string());
    let mut roles: BTreeMap<String, BTreeSet<Role>> = BTreeMap::new();
    let flag_roles = args.oidc_roles.iter().cloned();
    for (group, mapped) in file.roles.into_iter().chain(flag_roles) {
        if mapped.is_empty() {
            return Err(field("roles", format!("group {group:?} maps to no role")));
        }
        roles.entry(group).or_default().extend(mapped);
    }
    if roles.is_empty() {
        return Err(field(
            "roles",
            "map at least one provider group to a role, or nobody can sign in through the provider",
        ));
    }
    let break_glass_accounts: BTreeSet<String> = file
        .break_glass_accounts
        .into_iter()
        .chain(args.break_glass_accounts.iter().cloned())
        .collect();
    if local_sign_in == LocalSignIn::Everyone && !break_glass_accounts.is_empty() {
        return Err(field(
            "break_glass_accounts",
            "only used with local_sign_in: break_glass (every local account may sign in now)",
        ));
    }
    Ok(Some(OidcSettings {
        issuer,
        client_id,
        client_secret: Secret::new(client_secret),
        redirect_url,
        provider_name,
        scopes,
        groups_claim,
        roles,
        local_sign_in,
        break_glass_accounts,
    }))
}

fn read_secret(path: &std::path::Path) -> Result<String, OidcConfigError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| {
            field(
                "client_secret_file",
                format!("cannot read {}: {e}", path.display()),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(yaml: &str) -> OidcFileSection {
        serde_yaml::from_str(yaml).expect("test yaml parses")
    }

    fn args_with_secret() -> OidcArgs {
        OidcArgs {
            oidc_client_secret: Some("s3cret".into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_full_section_resolves() {
        let s = section(
            "issuer: https://id.example.com/realms/sre\nclient_id: talos-dr\nredirect_url: https://dr.example.com/api/auth/oidc/callback\nroles: {sre: [operator, viewer], leads: [approver]}\nlocal_sign_in: break_glass\nbreak_glass_accounts: [admin]\n",
        );
        let mut args = args_with_secret();
        args.oidc_roles = vec![parse_role_flag("sre=admin").expect("parses")];
        let settings = resolve(Some(s), &args).expect("resolves").expect("on");
        assert_eq!(settings.provider_name, "id.example.com");
        assert_eq!(settings.groups_claim, "groups");
        assert_eq!(settings.scopes, DEFAULT_SCOPES.map(String::from).to_vec());
        assert_eq!(
            settings.roles_for(&["sre".into(), "unknown".into()]),
            vec![Role::Viewer, Role::Operator, Role::Admin]
        );
        assert!(settings.roles_for(&["unknown".into()]).is_empty());
        assert!(settings.local_sign_in_allowed("admin"));
        assert!(!settings.local_sign_in_allowed("alice"));
        assert_eq!(format!("{:?}", settings.client_secret), "Secret(..)");
    }

    #[test]
    fn without_an_issuer_oidc_is_off() {
        assert_eq!(resolve(None, &OidcArgs::default()).expect("ok"), None);
        let args = OidcArgs {
            local_sign_in: Some(LocalSignIn::BreakGlass),
            ..Default::default()
        };
        assert!(matches!(
            resolve(None, &args),
            Err(OidcConfigError::BreakGlassWithoutOidc)
        ));
    }

    #[test]
    fn bad_sections_name_the_field() {
        let base = "client_id: c\nredirect_url: https://dr/cb\nroles: {g: [admin]}\n";
        let cases = [
            (format!("issuer: ftp://x\n{base}"), "oidc.issuer"),
            (format!("issuer: not a url\n{base}"), "oidc.issuer"),
            (
                "issuer: https://i\nclient_id: c\nredirect_url: https://dr/cb\n".to_string(),
                "oidc.roles",
            ),
            (
                "issuer: https://i\nredirect_url: https://dr/cb\nroles: {g: [admin]}\n".to_string(),
                "client_id",
            ),
            (
                format!("issuer: https://i\n{base}scopes: [profile]\n"),
                "oidc.scopes",
            ),
            (
                format!("issuer: https://i\n{base}break_glass_accounts: [root]\n"),
                "oidc.break_glass_accounts",
            ),
        ];
        for (yaml, named) in cases {
            let err = resolve(Some(section(&yaml)), &args_with_secret()).expect_err(&yaml);
            assert!(err.to_string().contains(named), "{yaml}: {err}");
        }
        let no_secret = section(&format!("issuer: https://i\n{base}"));
        let err = resolve(Some(no_secret), &OidcArgs::default()).expect_err("no secret");
        assert!(err.to_string().contains("client_secret_file"), "{err}");
        assert!(
            serde_yaml::from_str::<OidcFileSection>("issuer: x\nroles: {g: [root]}\n").is_err()
        );
        assert!(parse_role_flag("g=superuser").is_err());
        assert!(parse_role_flag("=admin").is_err());
    }
}
