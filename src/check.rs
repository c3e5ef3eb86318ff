//! `credfresh check`: proves that a profile's credentials work, the way a person would by
//! hand — who they are (STS `GetCallerIdentity`) and, with a bucket, the S3 round trip the
//! setup guides use (put, list, head, get and delete a small object) — and says for every
//! step that fails which IAM action, bucket or endpoint is the problem.
//!
//! Credentials come from the running daemon (`GET /v1/credentials/{name}`), or are fetched
//! directly like `credential-process` does when no daemon runs, so `check` never needs one.
//! Every SDK client makes one attempt with short timeouts (the settings of
//! [`crate::sources::AwsFetcher`]); nothing here prints a secret.

use crate::api::{ProcessCredentials, Status};
use crate::client::{self, ClientError};
use crate::config;
use crate::creds::{account_from_arn, TempCredentials};
use crate::env::Environment;
use crate::output::{bad_reply, fail, reply_error, short, CliError, EXIT_FAILURE, EXIT_USAGE};
use crate::sources::{self, AwsFetcher, FALLBACK_REGION};
use aws_config::SdkConfig;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_types::region::Region;
use hyper::Method;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The bucket (and optional key prefix) of `--bucket s3://BUCKET[/PREFIX]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketArg {
    /// The bucket name.
    pub bucket: String,
    /// Where under the bucket the probe object goes: empty, or ending in `/`.
    pub prefix: String,
}

/// Parses `s3://BUCKET` or `s3://BUCKET/PREFIX` (clap's value parser, so anything else is a
/// usage error). BUCKET follows S3's naming rules: 3–63 lowercase letters, digits, `-` and `.`,
/// starting and ending with a letter or digit, no `..`.
pub fn parse_bucket(arg: &str) -> Result<BucketArg, String> {
    let usage = || {
        format!(
            "\"{arg}\" is not an S3 bucket URL; write it like s3://my-bucket or s3://my-bucket/some/prefix"
        )
    };
    let rest = arg.strip_prefix("s3://").ok_or_else(usage)?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let edge = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && edge(bucket.bytes().next())
        && edge(bucket.bytes().last())
        && !bucket.contains("..");
    if !ok {
        return Err(usage());
    }
    let prefix = prefix.trim_matches('/');
    Ok(BucketArg {
        bucket: bucket.to_owned(),
        prefix: if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        },
    })
}

/// How one step ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It worked; what was seen.
    Ok(String),
    /// It failed; the reason, starting with the error code (`AccessDenied: …`).
    Failed(String),
    /// Not tried, because an earlier step failed.
    Skipped(String),
}

/// One line of `check` output: `MARK PROFILE: STEP: DETAIL`. Marks are ✓/✗/- on a terminal
/// without `NO_COLOR`, else `ok`/`FAILED`/`skipped`, so scripts and logs can grep them.
pub fn line(profile: &str, step: &str, outcome: &Outcome, tty: bool) -> String {
    let (mark, detail) = match (outcome, tty) {
        (Outcome::Ok(d), true) => ("\x1b[32m✓\x1b[0m", d),
        (Outcome::Failed(d), true) => ("\x1b[31m✗\x1b[0m", d),
        (Outcome::Skipped(d), true) => ("-", d),
        (Outcome::Ok(d), false) => ("ok     ", d),
        (Outcome::Failed(d), false) => ("FAILED ", d),
        (Outcome::Skipped(d), false) => ("skipped", d),
    };
    format!("{mark} {profile}: {step}: {detail}")
}

/// Where the credentials come from.
enum Supplier {
    /// The running daemon's memory.
    Daemon,
    /// One direct fetch per profile, because no daemon runs.
    Direct(Box<config::Config>),
}

/// What `credfresh check` was asked to do. The socket is worked out (which may read the
/// config) by the program that runs the check, not by the one that hands over to it.
pub struct CheckArgs {
    /// `--socket`, if given.
    pub socket: Option<PathBuf>,
    pub config_path: PathBuf,
    pub env: Environment,
    pub profile: Option<String>,
    pub bucket: Option<BucketArg>,
}

impl CheckArgs {
    /// The daemon's socket: `--socket`, else the config's, else the default.
    pub fn socket(&self) -> PathBuf {
        client::socket_path(self.socket.clone(), &self.config_path, &self.env)
    }
}

/// `credfresh check` as `credfresh-check` runs it.
pub fn command(args: CheckArgs) -> futures_util::future::LocalBoxFuture<'static, u8> {
    Box::pin(async move {
        run(
            &args.socket(),
            &args.config_path,
            &args.env,
            args.profile,
            args.bucket,
            crate::output::colour_stdout(),
        )
        .await
    })
}

/// Runs `credfresh check`; returns the exit code.
pub async fn run(
    socket: &Path,
    config_path: &Path,
    env: &Environment,
    profile: Option<String>,
    bucket: Option<BucketArg>,
    tty: bool,
) -> u8 {
    let (supplier, managed) = match client::request(socket, Method::GET, "/v1/status", None).await {
        Ok((code, body)) if code.is_success() => match serde_json::from_slice::<Status>(&body) {
            Ok(s) => (
                Supplier::Daemon,
                s.profiles.into_iter().map(|p| p.name).collect::<Vec<_>>(),
            ),
            Err(e) => return bad_reply(e),
        },
        Ok((code, body)) => return reply_error(code, &body),
        Err(ClientError::NotRunning(_)) => {
            let config = match config::load(config_path, env) {
                Ok(c) => c,
                Err(e) => return CliError::usage(e).report(),
            };
            let names = config.profiles.iter().map(|p| p.name.clone()).collect();
            (Supplier::Direct(Box::new(config)), names)
        }
        Err(e) => return fail(e),
    };
    let names = match profile {
        Some(p) if managed.contains(&p) => vec![p],
        Some(p) => {
            eprintln!(
                "credfresh: no managed profile named \"{p}\"; `credfresh validate` lists them"
            );
            return EXIT_USAGE;
        }
        None if managed.is_empty() => {
            eprintln!("credfresh: no profiles are managed; add [[profile]] tables to the config (`credfresh init` writes a starter one)");
            return EXIT_USAGE;
        }
        None => managed,
    };
    if matches!(supplier, Supplier::Direct(_)) {
        eprintln!("credfresh: the daemon is not running; fetching credentials directly");
    }
    let settings = match &supplier {
        Supplier::Direct(c) => c.daemon.clone(),
        Supplier::Daemon => config::load(config_path, env)
            .map(|c| c.daemon)
            .unwrap_or_else(|_| config::DaemonSettings::defaults(env)),
    };
    let fetcher = AwsFetcher::load(env, &settings).await;
    let mut out = Printer { tty, failed: 0 };
    for name in &names {
        check_profile(
            &mut out,
            &supplier,
            socket,
            &fetcher,
            env,
            name,
            bucket.as_ref(),
        )
        .await;
    }
    if out.failed == 0 {
        println!("all checks passed");
        0
    } else {
        println!(
            "{} check{} failed",
            out.failed,
            if out.failed == 1 { "" } else { "s" }
        );
        EXIT_FAILURE
    }
}

/// Prints step lines as they finish (a slow endpoint shows where it hangs) and counts failures.
struct Printer {
    tty: bool,
    failed: usize,
}

impl Printer {
    fn step(&mut self, profile: &str, step: &str, outcome: Outcome) -> bool {
        let ok = matches!(outcome, Outcome::Ok(_));
        if matches!(outcome, Outcome::Failed(_)) {
            self.failed += 1;
        }
        // A step's message may quote a remote error that echoed the credentials used.
        let text = crate::redact::scrub_str(&line(profile, step, &outcome, self.tty));
        println!("{text}");
        let _ = std::io::stdout().flush();
        ok
    }
}

async fn credentials(
    supplier: &Supplier,
    socket: &Path,
    fetcher: &AwsFetcher,
    name: &str,
) -> Result<(TempCredentials, &'static str), String> {
    match supplier {
        Supplier::Daemon => {
            let path = client::url_path(&["v1", "credentials", name]);
            let (code, body) = client::request(socket, Method::GET, &path, None)
                .await
                .map_err(|e| e.to_string())?;
            if !code.is_success() {
                let msg = serde_json::from_slice::<crate::api::ErrorReply>(&body)
                    .map(|e| e.error)
                    .unwrap_or_else(|_| format!("the daemon answered {code}"));
                return Err(msg);
            }
            serde_json::from_slice::<ProcessCredentials>(&body)
                .ok()
                .and_then(ProcessCredentials::into_creds)
                .map(|c| (c, "from the daemon"))
                .ok_or_else(|| "the daemon's reply could not be read".to_owned())
        }
        Supplier::Direct(config) => sources::fetch_chain(fetcher, config, name)
            .await
            .map(|c| (c, "fetched directly"))
            .map_err(|e| format!("{}: {}", e.reason, e.message)),
    }
}

async fn check_profile(
    out: &mut Printer,
    supplier: &Supplier,
    socket: &Path,
    fetcher: &AwsFetcher,
    env: &Environment,
    name: &str,
    bucket: Option<&BucketArg>,
) {
    let creds = match credentials(supplier, socket, fetcher, name).await {
        Ok((c, from)) => {
            let left = c
                .expiration
                .duration_since(SystemTime::now())
                .map(|d| format!("expire in {}", short(d)))
                .unwrap_or_else(|_| "already expired".to_owned());
            out.step(name, "credentials", Outcome::Ok(format!("{from}, {left}")));
            c
        }
        Err(e) => {
            out.step(name, "credentials", Outcome::Failed(e));
            return;
        }
    };
    let sdk = fetcher.sdk();
    let who = match caller_identity(sdk, env, &creds).await {
        Ok((arn, account)) => {
            out.step(
                name,
                "sts:GetCallerIdentity",
                Outcome::Ok(format!("{arn} (account {account})")),
            );
            Some(arn)
        }
        Err(e) => {
            out.step(name, "sts:GetCallerIdentity", Outcome::Failed(e));
            None
        }
    };
    if let Some(b) = bucket {
        let probe = S3Probe::new(sdk, env, &creds, b, name, who);
        probe.run(out).await;
    }
}

/// `GetCallerIdentity` with `creds`: the ARN and account they belong to.
async fn caller_identity(
    sdk: &SdkConfig,
    env: &Environment,
    creds: &TempCredentials,
) -> Result<(String, String), String> {
    let conf = aws_sdk_sts::config::Builder::from(sdk)
        .region(Region::new(region(sdk)))
        .credentials_provider(creds.to_sdk())
        .build();
    let out = aws_sdk_sts::Client::from_conf(conf)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| {
            let err = sources::describe("STS", &e);
            match err.reason.as_str() {
                "unreachable" | "timeout" => format!(
                    "{}: {} (endpoint {})",
                    err.reason,
                    err.message,
                    endpoint(env, "STS")
                ),
                _ => err.message,
            }
        })?;
    let arn = out.arn().unwrap_or("(no ARN)").to_owned();
    let account = out
        .account()
        .map(str::to_owned)
        .or_else(|| account_from_arn(&arn))
        .unwrap_or_else(|| "unknown".to_owned());
    Ok((arn, account))
}

fn region(sdk: &SdkConfig) -> String {
    sdk.region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| FALLBACK_REGION.to_owned())
}

/// The endpoint override for `service` (`AWS_ENDPOINT_URL_<SERVICE>`, else `AWS_ENDPOINT_URL`),
/// unless `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` is set.
fn endpoint_override(env: &Environment, service: &str) -> Option<String> {
    if env
        .var("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        return None;
    }
    env.var(&format!("AWS_ENDPOINT_URL_{service}"))
        .or_else(|| env.var("AWS_ENDPOINT_URL"))
        .map(str::to_owned)
}

/// The endpoint to name in messages.
fn endpoint(env: &Environment, service: &str) -> String {
    endpoint_override(env, service).unwrap_or_else(|| format!("the AWS {service} endpoint"))
}

/// The put/list/head/get/delete round trip on one object with a unique key.
struct S3Probe<'a> {
    client: aws_sdk_s3::Client,
    profile: &'a str,
    bucket: &'a str,
    key: String,
    body: String,
    who: Option<String>,
    endpoint: String,
}

impl<'a> S3Probe<'a> {
    fn new(
        sdk: &SdkConfig,
        env: &Environment,
        creds: &TempCredentials,
        b: &'a BucketArg,
        profile: &'a str,
        who: Option<String>,
    ) -> Self {
        let mut conf = aws_sdk_s3::config::Builder::from(sdk)
            .region(Region::new(region(sdk)))
            .credentials_provider(creds.to_sdk());
        // Local S3s (moto, MinIO) do not resolve bucket.host names: path-style whenever the
        // endpoint is overridden.
        if endpoint_override(env, "S3").is_some() || sdk.endpoint_url().is_some() {
            conf = conf.force_path_style(true);
        }
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let id = format!("{nanos:x}-{:08x}", fastrand::u32(..));
        S3Probe {
            client: aws_sdk_s3::Client::from_conf(conf.build()),
            profile,
            bucket: &b.bucket,
            key: format!("{}credfresh-check/{id}.txt", b.prefix),
            body: format!("credfresh check {id} for profile {profile}\n"),
            who,
            endpoint: endpoint(env, "S3"),
        }
    }

    fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    async fn run(&self, out: &mut Printer) {
        let url = self.url();
        let put = self
            .client
            .put_object()
            .bucket(self.bucket)
            .key(&self.key)
            .content_type("text/plain")
            .body(ByteStream::from(self.body.clone().into_bytes()))
            .send()
            .await
            .map(|_| Outcome::Ok(format!("put {url} ({} bytes)", self.body.len())))
            .unwrap_or_else(|e| Outcome::Failed(self.error(&e, "s3:PutObject", true)));
        let stored = out.step(self.profile, "s3:PutObject", put);

        // Listing needs another permission than writing: worth knowing even when put failed.
        let prefix = self.key.rsplit_once('/').map_or("", |(p, _)| p);
        let list = match self
            .client
            .list_objects_v2()
            .bucket(self.bucket)
            .prefix(&self.key)
            .send()
            .await
        {
            Ok(r) => {
                let listed = r.contents().iter().any(|o| o.key() == Some(&self.key));
                match (stored, listed) {
                    (true, true) => {
                        Outcome::Ok(format!("listed it under s3://{}/{prefix}/", self.bucket))
                    }
                    (true, false) => Outcome::Failed(format!(
                        "the object just put is not listed under s3://{}/{prefix}/",
                        self.bucket
                    )),
                    (false, _) => {
                        Outcome::Ok(format!("listing s3://{}/{prefix}/ is allowed", self.bucket))
                    }
                }
            }
            Err(e) => Outcome::Failed(self.error(&e, "s3:ListBucket", false)),
        };
        out.step(self.profile, "s3:ListBucket", list);

        if !stored {
            let why = "nothing was put".to_owned();
            for step in ["s3:HeadObject", "s3:GetObject", "s3:DeleteObject"] {
                out.step(self.profile, step, Outcome::Skipped(why.clone()));
            }
            return;
        }

        let head = match self
            .client
            .head_object()
            .bucket(self.bucket)
            .key(&self.key)
            .send()
            .await
        {
            Ok(h) if h.content_length() == Some(self.body.len() as i64) => {
                Outcome::Ok(format!("{} bytes", self.body.len()))
            }
            Ok(h) => Outcome::Failed(format!(
                "the object's size is {:?}, not the {} bytes put",
                h.content_length(),
                self.body.len()
            )),
            // HeadObject is governed by s3:GetObject.
            Err(e) => Outcome::Failed(self.error(&e, "s3:GetObject (HeadObject)", true)),
        };
        out.step(self.profile, "s3:HeadObject", head);

        let get = match self
            .client
            .get_object()
            .bucket(self.bucket)
            .key(&self.key)
            .send()
            .await
        {
            Ok(r) => match r.body.collect().await.map(|d| d.into_bytes()) {
                Ok(data) if data == self.body.as_bytes() => {
                    Outcome::Ok("read it back; the content matches".to_owned())
                }
                Ok(data) => Outcome::Failed(format!(
                    "read {} bytes back, but they differ from the {} bytes put",
                    data.len(),
                    self.body.len()
                )),
                Err(e) => Outcome::Failed(format!(
                    "the download from {} broke off: {e}",
                    self.endpoint
                )),
            },
            Err(e) => Outcome::Failed(self.error(&e, "s3:GetObject", true)),
        };
        out.step(self.profile, "s3:GetObject", get);

        let delete = self
            .client
            .delete_object()
            .bucket(self.bucket)
            .key(&self.key)
            .send()
            .await
            .map(|_| Outcome::Ok(format!("deleted {url}")))
            .unwrap_or_else(|e| {
                Outcome::Failed(format!(
                    "{}; the object {url} is left behind",
                    self.error(&e, "s3:DeleteObject", true)
                ))
            });
        out.step(self.profile, "s3:DeleteObject", delete);
    }

    /// Why an S3 call failed, starting with the code a person would search for, naming the
    /// IAM action and resource for access errors. `on_object`: the action is on the object
    /// (else on the bucket).
    fn error<E>(&self, err: &SdkError<E, HttpResponse>, action: &str, on_object: bool) -> String
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let resource = if on_object {
            format!("arn:aws:s3:::{}/{}", self.bucket, self.key)
        } else {
            format!("arn:aws:s3:::{}", self.bucket)
        };
        let who = self.who.as_deref().unwrap_or("these credentials");
        match err {
            SdkError::ServiceError(e) => {
                let status = e.raw().status().as_u16();
                let said = e.err().message().map(|m| format!(" (S3 said: {m})"));
                let said = said.as_deref().unwrap_or("");
                // HEAD replies have no body, hence no code: go by the status.
                let code = match (e.err().code(), status) {
                    (Some(c), _) => c.to_owned(),
                    (None, 403) => "AccessDenied".to_owned(),
                    (None, 404) => "NotFound".to_owned(),
                    (None, 301) => "PermanentRedirect".to_owned(),
                    (None, s) => format!("HTTP {s}"),
                };
                match code.as_str() {
                    "AccessDenied" | "AllAccessDisabled" => format!(
                        "AccessDenied: {who} may not {action} on {resource}{said}; allow {action} in the IAM policy of the role (and in the bucket policy of {})",
                        self.bucket
                    ),
                    "ExpiredToken" | "TokenRefreshRequired" => format!(
                        "{code}: the credentials have expired{said}; run `credfresh refresh {}` and check again",
                        self.profile
                    ),
                    "NoSuchBucket" => format!(
                        "NoSuchBucket: bucket \"{}\" does not exist at {}{said}; check its name, account and region",
                        self.bucket, self.endpoint
                    ),
                    "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "InvalidToken" => format!(
                        "{code}: S3 does not accept these credentials{said}; are they for this account and endpoint?"
                    ),
                    "PermanentRedirect" | "AuthorizationHeaderMalformed" | "IllegalLocationConstraintException" => {
                        let region = e
                            .raw()
                            .headers()
                            .get("x-amz-bucket-region")
                            .map(|r| format!(" ({r})"))
                            .unwrap_or_default();
                        format!(
                            "{code}: bucket \"{}\" is in another region{region}{said}; set AWS_REGION to the bucket's region",
                            self.bucket
                        )
                    }
                    _ => format!("{code}: {action} on {resource} failed{said}"),
                }
            }
            SdkError::TimeoutError(_) => {
                format!("timeout: S3 at {} did not answer in time", self.endpoint)
            }
            SdkError::DispatchFailure(d) if d.is_timeout() => {
                format!("timeout: S3 at {} did not answer in time", self.endpoint)
            }
            SdkError::DispatchFailure(d) => format!(
                "unreachable: cannot reach S3 at {}: {}",
                self.endpoint,
                sources::chain(
                    d.as_connector_error()
                        .map(|c| c as &(dyn std::error::Error + 'static))
                )
            ),
            SdkError::ResponseError(_) => format!(
                "bad_response: S3 at {} sent a reply that could not be read",
                self.endpoint
            ),
            _ => format!("{action} failed: {}", sources::chain(Some(err))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_arguments_parse_with_and_without_prefix() {
        let b = parse_bucket("s3://my-bucket").unwrap();
        assert_eq!((b.bucket.as_str(), b.prefix.as_str()), ("my-bucket", ""));
        let b = parse_bucket("s3://my-bucket/team/data/").unwrap();
        assert_eq!(
            (b.bucket.as_str(), b.prefix.as_str()),
            ("my-bucket", "team/data/")
        );
        assert_eq!(
            parse_bucket("s3://plain.bucket").unwrap().bucket,
            "plain.bucket"
        );
        for bad in [
            "s3://",
            "s3://UPPER",
            "s3://a",
            "s3://sp ace",
            "notaurl",
            "plain.bucket",
            "https://my-bucket",
            "S3://my-bucket",
            "s3://-bucket",
            "s3://bucket.",
            "s3://my..bucket",
        ] {
            assert!(parse_bucket(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lines_use_words_off_a_terminal_and_marks_on_one() {
        let ok = Outcome::Ok("fine".into());
        let bad = Outcome::Failed("AccessDenied: no".into());
        assert_eq!(
            line("p", "s3:PutObject", &ok, false),
            "ok      p: s3:PutObject: fine"
        );
        assert_eq!(
            line("p", "s3:PutObject", &bad, false),
            "FAILED  p: s3:PutObject: AccessDenied: no"
        );
        assert!(line("p", "x", &ok, true).contains('✓'));
        assert!(line("p", "x", &bad, true).contains('✗'));
    }
}
