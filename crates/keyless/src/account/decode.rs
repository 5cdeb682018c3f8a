//! `keyless token decode [FILE|-] [--verify]`: a JWT's header and claims, offline — the
//! safe replacement for pasting tokens into a website. `--verify` fetches the issuer's
//! public keys and checks the signature and the validity window.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use clap::Args;
use keyless_jose::{Alg, JwkSet, UnverifiedJwt, VerifyingKey};
use serde_json::{Map, Value, json};

use super::session::Session;
use super::times;
use crate::manage::session::{AdminFile, admin_file_path};

/// Largest token accepted (a JWT carrying many claims is a few KiB).
const MAX_TOKEN: usize = 1024 * 1024;
/// Largest discovery document or JWKS read.
const MAX_DOCUMENT: usize = 1024 * 1024;
/// Most keys considered in a JWKS.
const MAX_KEYS: usize = 100;
/// Claims holding NumericDate times.
const TIME_CLAIMS: [&str; 4] = ["iat", "nbf", "exp", "auth_time"];

/// Options of `keyless token decode`.
#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// File holding the token, or - for standard input (the default). A token given
    /// directly (starting with eyJ) is decoded too, but then sits in the shell history.
    pub token: Option<String>,
    /// Also check the signature against the issuer's published keys
    /// ({iss}/.well-known/openid-configuration's jwks_uri, else {iss}/discovery/keys)
    /// and that the token is within its validity window; fails otherwise.
    #[arg(long)]
    pub verify: bool,
    /// JWKS URL to verify with, instead of discovering it from the token's issuer.
    #[arg(long, value_name = "URL", requires = "verify")]
    pub jwks_uri: Option<String>,
    /// CA certificate (PEM) trusted, besides the system roots, when fetching the
    /// issuer's keys [default: the signed-in account's CA, else the admin file's, if any].
    #[arg(long, value_name = "PATH", requires = "verify")]
    pub ca_file: Option<PathBuf>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = DecodeFormat::Text)]
    pub output: DecodeFormat,
}

/// `--output` of `token decode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DecodeFormat {
    /// Header and claims as indented JSON, then the times and the signature status.
    Text,
    /// One JSON object: `header`, `claims`, `times`, `expired`, `signature`.
    Json,
}

/// A JWT taken apart (nothing verified).
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The compact token, trimmed.
    pub raw: String,
    /// The JOSE header.
    pub header: Map<String, Value>,
    /// The claims.
    pub claims: Map<String, Value>,
    /// Length of the signature in bytes.
    pub signature_len: usize,
}

/// Takes a compact JWS apart, leniently (any `alg`, padded or unpadded base64url), with
/// an error that says what the input is instead.
pub fn decode(input: &str) -> Result<Decoded> {
    let mut text = input.trim();
    if let Some(rest) = text
        .get(..7)
        .filter(|p| p.eq_ignore_ascii_case("bearer "))
        .and_then(|_| text.get(7..))
    {
        text = rest.trim();
    }
    if text.is_empty() {
        bail!("no token: the input is empty (expected a JWT: header.payload.signature)");
    }
    if text.len() > MAX_TOKEN {
        bail!(
            "not a JWT: the input is {} bytes, more than {MAX_TOKEN}",
            text.len()
        );
    }
    let parts: Vec<&str> = text.split('.').collect();
    let (header, payload, signature) = match parts.as_slice() {
        [h, p, s] => (*h, *p, *s),
        [_, _, _, _, _] => bail!(
            "an encrypted token (JWE, five parts): its claims cannot be read without the \
             recipient's key; only signed tokens (JWS) can be decoded"
        ),
        _ => bail!(
            "not a JWT: expected three dot-separated base64url parts (header.payload.signature), found {}",
            parts.len()
        ),
    };
    let header = object(header, "header")?;
    let claims = object(payload, "payload")?;
    let signature_len = b64(signature, "signature")?.len();
    Ok(Decoded {
        raw: text.to_owned(),
        header,
        claims,
        signature_len,
    })
}

fn b64(part: &str, name: &str) -> Result<Vec<u8>> {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    LENIENT
        .decode(part)
        .map_err(|e| anyhow!("not a JWT: the {name} is not base64url ({e})"))
}

fn object(part: &str, name: &str) -> Result<Map<String, Value>> {
    if part.is_empty() {
        bail!("not a JWT: the {name} is empty");
    }
    let bytes = b64(part, name)?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => bail!("not a JWT: the {name} is JSON but not an object"),
        Err(e) => bail!("not a JWT: the {name} is not JSON ({e})"),
    }
}

/// A NumericDate claim as whole seconds.
fn seconds(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.is_finite() && f.abs() < 1e17)
            .map(|f| f.trunc() as i64)
    })
}

/// The time claims, each with dates and its relation to `now`.
fn times_json(claims: &Map<String, Value>, now: i64) -> Map<String, Value> {
    TIME_CLAIMS
        .iter()
        .filter_map(|name| {
            let t = seconds(claims.get(*name)?)?;
            let relative = if *name == "exp" {
                times::expiry(t, now)
            } else {
                times::relative(t, now)
            };
            Some((
                (*name).to_owned(),
                json!({"unix": t, "utc": times::utc(t), "local": times::local(t), "relative": relative}),
            ))
        })
        .collect()
}

/// The outcome of `--verify`.
#[derive(Debug, Clone)]
enum Verification {
    NotRequested,
    Valid {
        alg: String,
        kid: Option<String>,
        jwks_uri: String,
    },
    Failed {
        reason: String,
        jwks_uri: Option<String>,
    },
}

impl Verification {
    fn json(&self) -> Value {
        match self {
            Verification::NotRequested => json!({"verified": false, "checked": false}),
            Verification::Valid { alg, kid, jwks_uri } => {
                json!({"verified": true, "checked": true, "alg": alg, "kid": kid, "jwksUri": jwks_uri})
            }
            Verification::Failed { reason, jwks_uri } => {
                json!({"verified": false, "checked": true, "error": reason, "jwksUri": jwks_uri})
            }
        }
    }
}

/// Renders the text output.
fn render_text(d: &Decoded, now: i64, verification: &Verification) -> String {
    let pretty = |m: &Map<String, Value>| {
        serde_json::to_string_pretty(m).unwrap_or_else(|_| Value::Object(m.clone()).to_string())
    };
    let mut out = format!(
        "Header\n{}\n\nClaims\n{}\n",
        pretty(&d.header),
        pretty(&d.claims)
    );
    let times = times_json(&d.claims, now);
    if !times.is_empty() {
        out.push_str("\nTimes\n");
        for (name, t) in &times {
            out.push_str(&format!(
                "  {name:<9} {}  ({})\n",
                t["local"].as_str().unwrap_or_default(),
                t["relative"].as_str().unwrap_or_default()
            ));
        }
    }
    out.push('\n');
    out.push_str(&match verification {
        Verification::NotRequested => format!(
            "Signature: not checked ({} bytes; decoded offline — pass --verify to check it against the issuer's keys)\n",
            d.signature_len
        ),
        Verification::Valid { alg, kid, jwks_uri } => format!(
            "Signature: valid ({alg}, key {} from {jwks_uri}); the token is within its validity window (the audience is not checked)\n",
            kid.as_deref().unwrap_or("without kid")
        ),
        Verification::Failed { reason, .. } => format!("Signature: NOT VERIFIED: {reason}\n"),
    });
    out
}

fn render_json(d: &Decoded, now: i64, verification: &Verification) -> Value {
    let expired = d.claims.get("exp").and_then(seconds).map(|exp| exp <= now);
    json!({
        "header": d.header,
        "claims": d.claims,
        "times": times_json(&d.claims, now),
        "expired": expired,
        "signature": verification.json(),
    })
}

/// Reads the token: a file, `-`/nothing for stdin, or a token given inline.
fn read_input(arg: Option<&str>) -> Result<String> {
    match arg {
        None | Some("-") => {
            let mut stdin = std::io::stdin();
            if stdin.is_terminal() {
                eprintln!("reading a token from standard input (end with Ctrl-D)...");
            }
            let mut text = String::new();
            stdin
                .by_ref()
                .take(MAX_TOKEN as u64 + 1)
                .read_to_string(&mut text)
                .context("reading the token from standard input")?;
            Ok(text)
        }
        Some(arg) => {
            let path = Path::new(arg);
            if !path.exists() && arg.trim_start().starts_with("eyJ") && arg.contains('.') {
                return Ok(arg.to_owned());
            }
            let mut text = String::new();
            std::fs::File::open(path)
                .and_then(|f| f.take(MAX_TOKEN as u64 + 1).read_to_string(&mut text))
                .with_context(|| format!("cannot read the token file {arg}"))?;
            Ok(text)
        }
    }
}

/// Runs `keyless token decode`.
pub async fn run(args: DecodeArgs) -> Result<()> {
    let input = read_input(args.token.as_deref())?;
    let decoded = decode(&input)?;
    let now = times::now_unix();
    let verification = if args.verify {
        verify(&decoded, &args, now).await
    } else {
        Verification::NotRequested
    };
    let text = match args.output {
        DecodeFormat::Text => render_text(&decoded, now, &verification),
        DecodeFormat::Json => {
            serde_json::to_string_pretty(&render_json(&decoded, now, &verification))
                .context("rendering JSON")?
                + "\n"
        }
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other.context("writing to stdout")?,
    }
    match verification {
        Verification::Failed { reason, .. } => bail!("the token did not verify: {reason}"),
        _ => Ok(()),
    }
}

async fn verify(d: &Decoded, args: &DecodeArgs, now: i64) -> Verification {
    let mut jwks_uri = None;
    let result = async {
        let http = verify_client(args.ca_file.as_deref())?;
        let uri = match &args.jwks_uri {
            Some(uri) => uri.clone(),
            None => discover_jwks_uri(&http, &d.claims).await?,
        };
        jwks_uri = Some(uri.clone());
        let keys = fetch_keys(&http, &uri).await?;
        let jwt = UnverifiedJwt::parse(&d.raw, MAX_TOKEN)
            .map_err(|e| anyhow!("the token cannot be verified: {e}"))?;
        let key = jwt
            .verify_with(&keys, Alg::ASSERTION_ALLOWLIST)
            .map_err(|e| anyhow!("{e} (keys from {uri})"))?;
        let kid = key.kid().map(str::to_owned);
        if let Some(exp) = d.claims.get("exp").and_then(seconds)
            && exp <= now
        {
            bail!(
                "the signature is valid, but the token {}",
                times::expiry(exp, now)
            );
        }
        if let Some(nbf) = d.claims.get("nbf").and_then(seconds)
            && nbf > now
        {
            bail!(
                "the signature is valid, but the token is not valid until {} ({})",
                times::local(nbf),
                times::relative(nbf, now)
            );
        }
        Ok::<_, anyhow::Error>((jwt.alg().to_string(), kid, uri))
    }
    .await;
    match result {
        Ok((alg, kid, jwks_uri)) => Verification::Valid { alg, kid, jwks_uri },
        Err(e) => Verification::Failed {
            reason: format!("{e:#}"),
            jwks_uri,
        },
    }
}

/// The CA to add: `--ca-file`, else the signed-in account's, else the admin file's
/// (when present). Added to the system roots: public issuers keep working.
fn verify_client(ca_file: Option<&Path>) -> Result<reqwest::Client> {
    let ca = match ca_file {
        Some(ca) => Some(ca.to_path_buf()),
        None => Session::load()
            .ok()
            .and_then(|s| s.profile.ca_file)
            .or_else(|| {
                let path = admin_file_path(None, std::env::var_os("KEYLESS_DATA_DIR"));
                path.exists()
                    .then(|| AdminFile::load(&path).ok().and_then(|a| a.ca_file))
                    .flatten()
            }),
    };
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("keyless-cli/", env!("CARGO_PKG_VERSION")))
        .https_only(true)
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30));
    if let Some(ca) = ca {
        let pem = std::fs::read(&ca)
            .with_context(|| format!("cannot read the CA file {}", ca.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("{} is not a PEM certificate", ca.display()))?;
        if certs.is_empty() {
            bail!("{} holds no PEM certificate", ca.display());
        }
        builder = builder.tls_certs_merge(certs);
    }
    builder.build().context("cannot set up the HTTP client")
}

/// `{iss}/.well-known/openid-configuration`'s `jwks_uri`, else Keyless' (and Entra's
/// v1) `{iss}/discovery/keys`.
async fn discover_jwks_uri(http: &reqwest::Client, claims: &Map<String, Value>) -> Result<String> {
    let iss = claims.get("iss").and_then(Value::as_str).ok_or_else(|| {
        anyhow!("the token has no iss claim to find its keys from; pass --jwks-uri")
    })?;
    let parsed = reqwest::Url::parse(iss)
        .map_err(|e| anyhow!("the issuer '{iss}' is not a URL ({e}); pass --jwks-uri"))?;
    if parsed.scheme() != "https" {
        bail!(
            "the issuer '{iss}' is not an https URL; keys are only fetched over https (pass --jwks-uri)"
        );
    }
    let base = iss.trim_end_matches('/');
    let discovery = format!("{base}/.well-known/openid-configuration");
    match get_json(http, &discovery).await {
        Ok(doc) => match doc.get("jwks_uri").and_then(Value::as_str) {
            Some(uri) => Ok(uri.to_owned()),
            None => Ok(format!("{base}/discovery/keys")),
        },
        Err(_) => Ok(format!("{base}/discovery/keys")),
    }
}

async fn get_json(http: &reqwest::Client, url: &str) -> Result<Value> {
    let parsed = reqwest::Url::parse(url).map_err(|e| anyhow!("'{url}' is not a URL ({e})"))?;
    let mut response = http
        .get(parsed.clone())
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| anyhow::Error::new(e).context(format!("GET {url} failed")))?;
    let status = response.status();
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .with_context(|| format!("reading {url}"))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_DOCUMENT {
            bail!("{url} answered with more than {MAX_DOCUMENT} bytes");
        }
    }
    if !status.is_success() {
        bail!("{url} answered HTTP {status}");
    }
    serde_json::from_slice(&body).map_err(|e| anyhow!("{url} did not answer JSON ({e})"))
}

async fn fetch_keys(http: &reqwest::Client, uri: &str) -> Result<Vec<VerifyingKey>> {
    let doc = get_json(http, uri).await?;
    let bytes = serde_json::to_vec(&doc).context("re-encoding the JWKS")?;
    let set =
        JwkSet::parse(&bytes, MAX_KEYS).map_err(|e| anyhow!("{uri} is not a usable JWKS: {e}"))?;
    let (keys, _skipped) = VerifyingKey::from_jwk_set(&set);
    if keys.is_empty() {
        bail!("{uri} publishes no usable signing key");
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64url(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    fn token(header: &Value, claims: &Value) -> String {
        format!(
            "{}.{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes()),
            b64url(&[1, 2, 3])
        )
    }

    #[test]
    fn decodes_any_signed_token_with_bearer_and_whitespace() {
        let t = token(
            &json!({"alg": "HS256", "typ": "JWT"}),
            &json!({"sub": "x", "exp": 2_000_000_000}),
        );
        let d = decode(&format!("  Bearer {t}\n")).unwrap_or_else(|e| unreachable!("{e:#}"));
        assert_eq!(d.header.get("alg"), Some(&json!("HS256")));
        assert_eq!(d.claims.get("sub"), Some(&json!("x")));
        assert_eq!(d.signature_len, 3);
        assert_eq!(d.raw, t);
        // Padded base64 is accepted too.
        let padded = format!(
            "{}.{}.AQID",
            base64::engine::general_purpose::URL_SAFE.encode(br#"{"alg":"RS256"}"#),
            base64::engine::general_purpose::URL_SAFE.encode(br#"{"sub":"x"}"#)
        );
        assert!(padded.contains('='));
        assert!(decode(&padded).is_ok());
    }

    #[test]
    fn malformed_input_gets_a_clear_error() {
        let h = b64url(br#"{"alg":"RS256"}"#);
        let p = b64url(br#"{"sub":"x"}"#);
        let cases = [
            ("", "the input is empty"),
            ("   \n", "the input is empty"),
            ("hello", "found 1"),
            ("a.b", "found 2"),
            ("a.b.c.d", "found 4"),
            ("a.b.c.d.e", "encrypted token (JWE"),
            (&format!("{h}.{p}.***"), "signature is not base64url"),
            (&format!("!!.{p}.c2ln"), "header is not base64url"),
            (
                &format!("{}.{p}.c2ln", b64url(b"not json")),
                "header is not JSON",
            ),
            (
                &format!("{h}.{}.c2ln", b64url(b"[1,2]")),
                "payload is JSON but not an object",
            ),
            (&format!("{h}..c2ln"), "payload is empty"),
        ];
        for (input, needle) in cases {
            match decode(input) {
                Ok(d) => unreachable!("{input:?} decoded: {d:?}"),
                Err(e) => assert!(format!("{e:#}").contains(needle), "{input:?}: {e:#}"),
            }
        }
    }

    #[test]
    fn text_output_shows_dates_and_expiry() {
        let now = 1_735_732_800;
        let t = token(
            &json!({"alg": "ES256", "kid": "k1", "typ": "JWT"}),
            &json!({"iss": "https://i", "iat": now - 60, "nbf": now - 60, "exp": now + 3540, "sub": "s"}),
        );
        let d = decode(&t).unwrap_or_else(|e| unreachable!("{e:#}"));
        let text = render_text(&d, now, &Verification::NotRequested);
        assert!(
            text.starts_with("Header\n{\n  \"alg\": \"ES256\""),
            "{text}"
        );
        assert!(text.contains("\nClaims\n{"), "{text}");
        assert!(text.contains("(expires in 59 min)"), "{text}");
        assert!(
            text.contains("iat") && text.contains("(1 min ago)"),
            "{text}"
        );
        assert!(text.contains("Signature: not checked"), "{text}");
        let json = render_json(&d, now + 4000, &Verification::NotRequested);
        assert_eq!(json["expired"], json!(true));
        assert_eq!(
            json["times"]["exp"]["relative"],
            json!("expired 7 min 40 s ago")
        );
        assert_eq!(json["times"]["exp"]["utc"], json!("2025-01-01T12:59:00Z"));
        assert_eq!(json["signature"]["checked"], json!(false));
    }
}
