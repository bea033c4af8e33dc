//! The provider as the console knows it after start: its discovery document and signing keys,
//! the code exchange, and the ID token checks.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;

use super::OidcError;
use super::settings::OidcSettings;

/// Calls to the provider give up after this long.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);
/// An unknown key id makes the console fetch the provider's keys again (they rotate), but not
/// more often than this, so forged tokens cannot make it hammer the provider.
const JWKS_REFRESH_AFTER: Duration = Duration::from_secs(60);
/// Clock difference tolerated between the provider and the console.
const LEEWAY_SECS: u64 = 60;
/// Signature algorithms accepted for ID tokens: asymmetric only, so that a token's signature
/// proves it came from the provider and not from anyone who knows the client secret.
const ASYMMETRIC: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// The parts of `/.well-known/openid-configuration` the console uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    #[serde(default)]
    pub id_token_signing_alg_values_supported: Vec<String>,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Vec<String>,
}

/// What a verified ID token says about the user.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedIdToken {
    pub subject: String,
    /// `preferred_username`, else `email`, else the subject.
    pub username: String,
    /// The groups claim, when the token carries it.
    pub groups: Option<Vec<String>>,
    pub claims: BTreeMap<String, Value>,
}

/// The token endpoint's answer.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenResponse {
    pub id_token: Option<String>,
    pub access_token: Option<String>,
}

#[derive(Debug)]
struct Keys {
    set: JwkSet,
    fetched: Instant,
}

/// One configured provider, discovered and ready.
#[derive(Debug)]
pub struct OidcProvider {
    pub settings: OidcSettings,
    pub discovery: Discovery,
    http: reqwest::Client,
    keys: Mutex<Keys>,
}

impl OidcProvider {
    /// Fetches the discovery document and the signing keys. Any failure names the issuer: the
    /// console then refuses to start rather than run with a sign-in that cannot work.
    pub async fn discover(settings: OidcSettings) -> Result<Self, OidcError> {
        let http = reqwest::Client::builder()
            .timeout(PROVIDER_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| OidcError::discovery(&settings.issuer, format!("HTTP client: {e}")))?;
        let url = format!(
            "{}/.well-known/openid-configuration",
            settings.issuer.trim_end_matches('/')
        );
        let discovery: Discovery = get_json(&http, &url)
            .await
            .map_err(|problem| OidcError::discovery(&settings.issuer, problem))?;
        // OpenID Connect Discovery 1.0 §4.3: the document must name exactly this issuer.
        if discovery.issuer != settings.issuer {
            return Err(OidcError::discovery(
                &settings.issuer,
                format!(
                    "the discovery document names issuer {:?}; configure exactly that",
                    discovery.issuer
                ),
            ));
        }
        let set: JwkSet = get_json(&http, &discovery.jwks_uri)
            .await
            .map_err(|problem| OidcError::discovery(&settings.issuer, problem))?;
        if set.keys.is_empty() {
            return Err(OidcError::discovery(
                &settings.issuer,
                format!("{} lists no signing keys", discovery.jwks_uri),
            ));
        }
        tracing::info!(issuer = %settings.issuer, keys = set.keys.len(), "OIDC provider discovered");
        Ok(Self {
            settings,
            discovery,
            http,
            keys: Mutex::new(Keys {
                set,
                fetched: Instant::now(),
            }),
        })
    }

    /// The URL the browser is sent to, with the PKCE challenge, state and nonce.
    pub fn authorization_url(
        &self,
        state: &str,
        nonce: &str,
        code_challenge: &str,
    ) -> Result<String, OidcError> {
        let mut url = reqwest::Url::parse(&self.discovery.authorization_endpoint).map_err(|e| {
            OidcError::Provider(format!(
                "authorization_endpoint {:?}: {e}",
                self.discovery.authorization_endpoint
            ))
        })?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("redirect_uri", &self.settings.redirect_url)
            .append_pair("scope", &self.settings.scopes.join(" "))
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", code_challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(url.into())
    }

    /// Trades the authorization code (and the PKCE verifier) for tokens.
    pub async fn exchange_code(
        &self,
        code: &str,
        code_verifier: &str,
    ) -> Result<TokenResponse, OidcError> {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.settings.redirect_url.as_str()),
            ("code_verifier", code_verifier),
        ];
        let secret = self.settings.client_secret.expose();
        let methods = &self.discovery.token_endpoint_auth_methods_supported;
        // RFC 6749 §2.3.1: Basic unless the provider only takes the secret in the body.
        let basic = methods.is_empty() || methods.iter().any(|m| m == "client_secret_basic");
        let mut request = self.http.post(&self.discovery.token_endpoint);
        if basic {
            request = request.basic_auth(
                form_encode(&self.settings.client_id),
                Some(form_encode(secret)),
            );
        } else {
            form.push(("client_id", self.settings.client_id.as_str()));
            form.push(("client_secret", secret));
        }
        let response = request
            .form(&form)
            .send()
            .await
            .map_err(|e| OidcError::Provider(format!("token endpoint: {e}")))?;
        let status = response.status();
        if !status.is_success() {
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let reason = body["error"].as_str().unwrap_or("no error code");
            return Err(OidcError::Provider(format!(
                "token endpoint answered {status} ({reason})"
            )));
        }
        response
            .json()
            .await
            .map_err(|e| OidcError::Provider(format!("token endpoint: unreadable answer: {e}")))
    }

    /// The user's claims from the userinfo endpoint, for providers that keep the groups out of
    /// the ID token. The answer must be about the same subject as the ID token.
    pub async fn userinfo(
        &self,
        access_token: &str,
        subject: &str,
    ) -> Result<BTreeMap<String, Value>, OidcError> {
        let Some(endpoint) = &self.discovery.userinfo_endpoint else {
            return Err(OidcError::Provider(
                "the provider has no userinfo endpoint".into(),
            ));
        };
        let response = self
            .http
            .get(endpoint)
            .bearer_auth(access_token)
            .send()
            .await
            .map_err(|e| OidcError::Provider(format!("userinfo endpoint: {e}")))?;
        if !response.status().is_success() {
            return Err(OidcError::Provider(format!(
                "userinfo endpoint answered {}",
                response.status()
            )));
        }
        let claims: BTreeMap<String, Value> = response
            .json()
            .await
            .map_err(|e| OidcError::Provider(format!("userinfo endpoint: {e}")))?;
        if claims.get("sub").and_then(Value::as_str) != Some(subject) {
            return Err(OidcError::InvalidToken(
                "userinfo is about another subject than the ID token".into(),
            ));
        }
        Ok(claims)
    }

    /// Checks an ID token: signature against the provider's keys, issuer, audience (and
    /// authorized party), expiry, and that its nonce is the one this sign-in sent.
    pub async fn verify_id_token(
        &self,
        token: &str,
        expected_nonce: &str,
    ) -> Result<VerifiedIdToken, OidcError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| OidcError::InvalidToken(format!("unreadable header: {e}")))?;
        let alg = header.alg;
        if !ASYMMETRIC.contains(&alg) {
            return Err(OidcError::InvalidToken(format!(
                "signature algorithm {alg:?} is not accepted"
            )));
        }
        let advertised = &self.discovery.id_token_signing_alg_values_supported;
        let alg_name = format!("{alg:?}");
        if !advertised.is_empty() && !advertised.contains(&alg_name) {
            return Err(OidcError::InvalidToken(format!(
                "the provider does not sign with {alg_name}"
            )));
        }
        let jwk = match self.find_key(header.kid.as_deref(), alg) {
            Some(jwk) => jwk,
            None => {
                self.refresh_keys().await?;
                self.find_key(header.kid.as_deref(), alg).ok_or_else(|| {
                    OidcError::InvalidToken(format!(
                        "no signing key {:?} at the provider",
                        header.kid
                    ))
                })?
            }
        };
        let key = DecodingKey::from_jwk(&jwk)
            .map_err(|e| OidcError::InvalidToken(format!("signing key: {e}")))?;
        let mut validation = Validation::new(alg);
        validation.leeway = LEEWAY_SECS;
        validation.set_issuer(&[self.settings.issuer.as_str()]);
        validation.set_audience(&[self.settings.client_id.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<BTreeMap<String, Value>>(token, &key, &validation)
            .map_err(|e| OidcError::InvalidToken(e.to_string()))?;
        let claims = data.claims;
        // OpenID Connect Core §3.1.3.7: with several audiences, azp must be this client.
        let audiences = claims.get("aud").and_then(Value::as_array).map(Vec::len);
        if audiences.is_some_and(|n| n > 1)
            && claims.get("azp").and_then(Value::as_str) != Some(self.settings.client_id.as_str())
        {
            return Err(OidcError::InvalidToken(
                "several audiences and azp is not this client".into(),
            ));
        }
        let nonce = claims.get("nonce").and_then(Value::as_str).unwrap_or("");
        if !crate::auth::session::tokens_match(nonce, expected_nonce) || nonce.is_empty() {
            return Err(OidcError::InvalidToken(
                "the nonce is not the one this sign-in sent".into(),
            ));
        }
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| OidcError::InvalidToken("no subject".into()))?
            .to_string();
        let username = ["preferred_username", "email"]
            .iter()
            .find_map(|c| claims.get(*c).and_then(Value::as_str))
            .filter(|s| !s.is_empty())
            .unwrap_or(&subject)
            .to_string();
        let groups = groups_of(&claims, &self.settings.groups_claim)?;
        Ok(VerifiedIdToken {
            subject,
            username,
            groups,
            claims,
        })
    }

    fn find_key(&self, kid: Option<&str>, alg: Algorithm) -> Option<Jwk> {
        let keys = self.keys.lock().ok()?;
        let fits = |jwk: &&Jwk| {
            jwk.common
                .key_algorithm
                .is_none_or(|a| format!("{a:?}") == format!("{alg:?}"))
                && jwk
                    .common
                    .public_key_use
                    .as_ref()
                    .is_none_or(|u| *u == jsonwebtoken::jwk::PublicKeyUse::Signature)
        };
        match kid {
            Some(kid) => keys
                .set
                .keys
                .iter()
                .filter(fits)
                .find(|k| k.common.key_id.as_deref() == Some(kid))
                .cloned(),
            // Without a key id, only an unambiguous key will do.
            None => {
                let mut candidates = keys.set.keys.iter().filter(fits);
                match (candidates.next(), candidates.next()) {
                    (Some(only), None) => Some(only.clone()),
                    _ => None,
                }
            }
        }
    }

    async fn refresh_keys(&self) -> Result<(), OidcError> {
        let due = self
            .keys
            .lock()
            .map(|k| k.fetched.elapsed() >= JWKS_REFRESH_AFTER)
            .unwrap_or(false);
        if !due {
            return Ok(());
        }
        let set: JwkSet = get_json(&self.http, &self.discovery.jwks_uri)
            .await
            .map_err(OidcError::Provider)?;
        if let Ok(mut keys) = self.keys.lock() {
            *keys = Keys {
                set,
                fetched: Instant::now(),
            };
        }
        Ok(())
    }
}

/// The groups claim as a list: providers send an array of strings, some a single string.
pub fn groups_of(
    claims: &BTreeMap<String, Value>,
    claim: &str,
) -> Result<Option<Vec<String>>, OidcError> {
    match claims.get(claim) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(one)) => Ok(Some(vec![one.clone()])),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str().map(str::to_string).ok_or_else(|| {
                    OidcError::InvalidToken(format!("claim {claim:?} holds a non-string"))
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(OidcError::InvalidToken(format!(
            "claim {claim:?} is neither a string nor a list"
        ))),
    }
}

async fn get_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
) -> Result<T, String> {
    let response = http
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| format!("GET {url}: {}", error_chain(&e)))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("GET {url}: answered {status}"));
    }
    response
        .json()
        .await
        .map_err(|e| format!("GET {url}: not the expected JSON: {}", error_chain(&e)))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// `application/x-www-form-urlencoded`, as RFC 6749 §2.3.1 wants for Basic credentials.
fn form_encode(text: &str) -> String {
    reqwest::Url::parse_with_params("x:", [("v", text)])
        .ok()
        .and_then(|u| u.query().map(|q| q.trim_start_matches("v=").to_string()))
        .unwrap_or_else(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_come_as_a_list_or_one_string() {
        let mut claims = BTreeMap::new();
        assert_eq!(groups_of(&claims, "groups").expect("ok"), None);
        claims.insert("groups".into(), serde_json::json!(["a", "b"]));
        assert_eq!(
            groups_of(&claims, "groups").expect("ok"),
            Some(vec!["a".into(), "b".into()])
        );
        claims.insert("roles".into(), serde_json::json!("ops"));
        assert_eq!(
            groups_of(&claims, "roles").expect("ok"),
            Some(vec!["ops".into()])
        );
        claims.insert("bad".into(), serde_json::json!([1]));
        assert!(groups_of(&claims, "bad").is_err());
    }

    #[test]
    fn basic_credentials_are_form_encoded() {
        assert_eq!(form_encode("a b:c"), "a+b%3Ac");
        assert_eq!(form_encode("plain"), "plain");
    }
}
