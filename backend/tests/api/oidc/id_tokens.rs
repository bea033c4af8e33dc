//! ID tokens the console must refuse: changed claims, a flipped signature, `alg` none or HS256,
//! a foreign key, another audience or nonce, and a tampered token delivered at the callback.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Url;
use serde_json::{Value, json};
use talos_dr::auth::oidc::pending::{pkce_challenge, random_token};
use talos_dr::auth::oidc::{OidcError, OidcProvider};

use super::provider::*;
use super::*;

/// The console's own provider client, for getting real ID tokens out of the provider.
pub(super) async fn real_id_token(
    oidc: &OidcProvider,
    console: &str,
    user: &str,
) -> (String, String) {
    let (state, nonce, verifier) = (random_token(), random_token(), random_token());
    let authorize = oidc
        .authorization_url(&state, &nonce, &pkce_challenge(&verifier))
        .expect("authorization url");
    let http = browser();
    let callback =
        sign_in_at_provider(&http, Url::parse(&authorize).expect("url"), console, user).await;
    let query: std::collections::HashMap<_, _> = callback.query_pairs().into_owned().collect();
    assert_eq!(query["state"], state);
    let tokens = oidc
        .exchange_code(&query["code"], &verifier)
        .await
        .expect("code exchanged");
    (tokens.id_token.expect("an ID token"), nonce)
}

fn segments(token: &str) -> (Value, Value, String) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let decode = |s: &str| -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(s).expect("base64url")).expect("json")
    };
    (decode(parts[0]), decode(parts[1]), parts[2].to_string())
}

fn assemble(header: &Value, payload: &Value, signature: &str) -> String {
    let encode = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json"));
    format!("{}.{}.{signature}", encode(header), encode(payload))
}

fn assert_refused(result: Result<talos_dr::auth::oidc::VerifiedIdToken, OidcError>, what: &str) {
    match result {
        Err(OidcError::InvalidToken(reason)) => eprintln!("{what}: refused: {reason}"),
        other => panic!("{what}: expected a refusal, got {other:?}"),
    }
}

/// A 2048-bit RSA key nobody published (PKCS#1 DER), made by node's crypto.
async fn foreign_rsa_key() -> Vec<u8> {
    let script = "const {generateKeyPairSync} = require('node:crypto'); \
        const {privateKey} = generateKeyPairSync('rsa', {modulusLength: 2048}); \
        process.stdout.write(privateKey.export({type: 'pkcs1', format: 'der'}).toString('base64'));";
    let out = tokio::process::Command::new("node")
        .args(["-e", script])
        .output()
        .await
        .expect("node runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    base64::engine::general_purpose::STANDARD
        .decode(&out.stdout)
        .expect("base64 key")
}

#[tokio::test]
async fn tampered_id_tokens_are_refused() {
    // Two clients at one provider: the console and another application.
    let console = "http://127.0.0.1:9";
    let callback = callback_url(console);
    let provider = start_provider(
        json!([
            {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": [callback]},
            {"client_id": "other-app", "client_secret": CLIENT_SECRET, "redirect_uris": [callback]},
        ]),
        test_users(),
        true,
    )
    .await;
    let oidc = OidcProvider::discover(provider::settings(&provider.issuer, &callback, CLIENT_ID))
        .await
        .expect("discovered");
    let (token, nonce) = real_id_token(&oidc, console, "olive").await;

    let verified = oidc
        .verify_id_token(&token, &nonce)
        .await
        .expect("the real token passes");
    assert_eq!(verified.username, "olive");
    assert_eq!(verified.groups, Some(vec!["sre-oncall".to_string()]));

    let (header, payload, signature) = segments(&token);
    let mut promoted = payload.clone();
    promoted["groups"] = json!(["platform-admins"]);
    assert_refused(
        oidc.verify_id_token(&assemble(&header, &promoted, &signature), &nonce)
            .await,
        "groups changed",
    );
    let mut renamed = payload.clone();
    renamed["sub"] = json!("ada");
    assert_refused(
        oidc.verify_id_token(&assemble(&header, &renamed, &signature), &nonce)
            .await,
        "subject changed",
    );
    let mut flipped = signature.clone().into_bytes();
    flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
    assert_refused(
        oidc.verify_id_token(
            &assemble(
                &header,
                &payload,
                &String::from_utf8(flipped).expect("ascii"),
            ),
            &nonce,
        )
        .await,
        "signature altered",
    );
    let mut unsigned = header.clone();
    unsigned["alg"] = json!("none");
    assert_refused(
        oidc.verify_id_token(&assemble(&unsigned, &payload, ""), &nonce)
            .await,
        "alg none",
    );
    let mut symmetric = header.clone();
    symmetric["alg"] = json!("HS256");
    assert_refused(
        oidc.verify_id_token(&assemble(&symmetric, &payload, &signature), &nonce)
            .await,
        "alg HS256",
    );
    assert_refused(
        oidc.verify_id_token(&token, &random_token()).await,
        "another sign-in's nonce",
    );

    // Signed, by a key the provider does not publish, under the provider's key id.
    let foreign = rcgen::KeyPair::generate().expect("a P-256 key");
    let mut foreign_header = header.clone();
    foreign_header["alg"] = json!("ES256");
    let claims: std::collections::BTreeMap<String, Value> =
        serde_json::from_value(payload.clone()).expect("claims");
    let mut jwt_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    jwt_header.kid = header["kid"].as_str().map(str::to_string);
    let forged = jsonwebtoken::encode(
        &jwt_header,
        &claims,
        &jsonwebtoken::EncodingKey::from_ec_der(&foreign.serialize_der()),
    )
    .expect("forged token");
    assert_refused(
        oidc.verify_id_token(&forged, &nonce).await,
        "foreign EC key",
    );
    // The same with the provider's own algorithm, RS256, and a fresh RSA key.
    let rsa_der = foreign_rsa_key().await;
    let mut rs_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    rs_header.kid = header["kid"].as_str().map(str::to_string);
    let mut promoted_claims = claims.clone();
    promoted_claims.insert("groups".into(), json!(["platform-admins"]));
    let forged = jsonwebtoken::encode(
        &rs_header,
        &promoted_claims,
        &jsonwebtoken::EncodingKey::from_rsa_der(&rsa_der),
    )
    .expect("forged token");
    assert_refused(
        oidc.verify_id_token(&forged, &nonce).await,
        "foreign RSA key",
    );

    // A genuine token, issued to another application.
    let other =
        OidcProvider::discover(provider::settings(&provider.issuer, &callback, "other-app"))
            .await
            .expect("discovered");
    let (other_token, other_nonce) = real_id_token(&other, console, "ada").await;
    other
        .verify_id_token(&other_token, &other_nonce)
        .await
        .expect("valid for its own audience");
    assert_refused(
        oidc.verify_id_token(&other_token, &other_nonce).await,
        "another audience",
    );
}

#[tokio::test]
async fn a_tampered_id_token_at_the_callback_signs_nobody_in() {
    let console = provider::bind_console().await;
    let callback = callback_url(&provider::console_address(&console));
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let proxy_url = format!("http://{}", proxy.local_addr().expect("addr"));
    let upstream = provider::start_provider_as(
        provider::console_client(&callback),
        test_users(),
        true,
        Some(&proxy_url),
    )
    .await;
    let _proxy = tamper::spawn_tampering_proxy(proxy, &upstream.listening);
    let app = provider::serve_console(console, upstream, |_| {}).await;

    let (olive, next) = oidc_sign_in(&app, "olive").await;

    assert_eq!(next, "/login?oidc_error=invalid");
    assert_eq!(session_of(&app, &olive).await.status(), 401);
    let trail = audit_entries(&app).await;
    let refused = trail
        .iter()
        .find(|e| e.action == "login_refused")
        .expect("a refusal entry");
    assert_eq!(
        refused.outcome,
        "refused: ID token refused: InvalidSignature"
    );
    assert!(!trail.iter().any(|e| e.action == "login"));
}
