//! Every secret the process holds or has held, and a log writer that masks them.
//!
//! Secrets are registered where they enter the process (credentials from a source, SSO
//! tokens and client secrets from the cache or SSO-OIDC, web identity and container tokens,
//! keys read from the AWS files). [`Scrubbed`] replaces each of them with `***` in every
//! log line before it leaves the process, whichever crate wrote the line and however it
//! printed the value: as text, `Debug`-printed as a list of decimal bytes
//! (`[115, 101, 99, …]`), as hex, or percent-encoded as in a form body or URL. The log filter
//! keeps the SDK's wire-level output off anyway (see `logging`); this is the second line of
//! defence. [`scrub_str`] does the same for every other text that leaves the process: error
//! messages built from a remote or SDK error, the control socket's replies, the CLI's output.

use aho_corasick::AhoCorasick;
use secrecy::SecretString;
use std::collections::{HashSet, VecDeque};
use std::io::{self, Write};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use tracing_subscriber::fmt::MakeWriter;

/// The mark a secret is replaced with.
pub const MASK: &str = "***";

/// How many secrets are remembered; the oldest are forgotten first (by then their
/// credentials expired long ago: 1024 is two days of hourly refreshes of ten profiles). The
/// matcher then takes about 1.5 MB and is rebuilt in well under a second after a change.
pub const CAPACITY: usize = 1024;

/// Shorter values are not registered: masking them would garble ordinary words and numbers,
/// and no secret credfresh handles is this short.
pub const MIN_LEN: usize = 8;

/// How many leading bytes of a secret the matcher looks for; a match is then extended over
/// as much of the whole secret as follows. Matching prefixes only keeps the automaton small
/// (about 1.1 kB per secret in all its encodings, instead of tens of kilobytes for a long
/// session token).
const PREFIX: usize = 16;

#[derive(Default)]
struct Registry {
    order: VecDeque<Arc<str>>,
    set: HashSet<Arc<str>>,
    /// The matcher for the current set; `None` after a change, rebuilt on the next scrub.
    matcher: Option<Arc<Matcher>>,
}

/// The prefixes of every secret in every encoding, and for each prefix the secrets that start
/// with it and the encodings in which they do (STS session tokens share their first bytes,
/// and a prefix with no character to escape is the same in several encodings).
struct Matcher {
    ac: AhoCorasick,
    owners: Vec<Vec<(Encoding, Arc<str>)>>,
}

fn registry() -> MutexGuard<'static, Registry> {
    static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(Mutex::default);
    // A panic while holding the lock leaves a consistent registry: keep using it.
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Remembers `secret` so [`scrub`] masks it from now on.
pub fn register(secret: &str) {
    let secret = secret.trim();
    if secret.len() < MIN_LEN {
        return;
    }
    let mut r = registry();
    if r.set.contains(secret) {
        return;
    }
    if r.order.len() >= CAPACITY {
        if let Some(old) = r.order.pop_front() {
            r.set.remove(&old);
        }
    }
    let secret: Arc<str> = Arc::from(secret);
    r.order.push_back(secret.clone());
    r.set.insert(secret);
    r.matcher = None;
}

/// Registers `secret` and wraps it.
pub fn secret(secret: impl Into<String>) -> SecretString {
    let secret = secret.into();
    register(&secret);
    SecretString::from(secret)
}

/// Registers the values of `aws_secret_access_key` and `aws_session_token` in an AWS
/// credentials or config file's text.
pub fn register_ini_secrets(text: &str) {
    for line in text.lines() {
        if let Some((key, value)) = line.split_once('=') {
            let key = key.trim();
            if key.eq_ignore_ascii_case("aws_secret_access_key")
                || key.eq_ignore_ascii_case("aws_session_token")
            {
                register(value);
            }
        }
    }
}

/// The forms in which a `Debug` or `Display` print can show a secret's bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Encoding {
    /// As is.
    Text,
    /// A decimal byte list as `Debug` prints a `Vec<u8>`: `115, 101, 99`.
    Decimal,
    /// Lower-case hex.
    Hex,
    /// Upper-case hex.
    HexUpper,
    /// Percent-encoded (everything but letters, digits and `-._~`), upper-case hex digits,
    /// a space as `%20`: a URL, or a form body as the SDK's query serializer writes it.
    Percent,
    /// [`Encoding::Percent`] with lower-case hex digits.
    PercentLower,
    /// `application/x-www-form-urlencoded`: [`Encoding::Percent`] with a space as `+`.
    Form,
    /// [`Encoding::Form`] with lower-case hex digits.
    FormLower,
}

const ENCODINGS: [Encoding; 8] = [
    Encoding::Text,
    Encoding::Decimal,
    Encoding::Hex,
    Encoding::HexUpper,
    Encoding::Percent,
    Encoding::PercentLower,
    Encoding::Form,
    Encoding::FormLower,
];

/// What [`Encoding::Percent`] leaves as it is: the URL's unreserved characters.
const PERCENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `bytes` percent-encoded; a space as `+` when `form`, hex digits in lower case when `lower`.
fn percent(bytes: &[u8], form: bool, lower: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() * 3);
    // Each piece is one `%XX` or a run of bytes left as they are.
    for piece in percent_encoding::percent_encode(bytes, PERCENT) {
        match piece {
            "%20" if form => out.push(b'+'),
            p if lower && p.starts_with('%') => out.extend(p.to_ascii_lowercase().bytes()),
            p => out.extend_from_slice(p.as_bytes()),
        }
    }
    out
}

fn encode(encoding: Encoding, bytes: &[u8]) -> Vec<u8> {
    match encoding {
        Encoding::Text => bytes.to_vec(),
        Encoding::Decimal => bytes
            .iter()
            .map(u8::to_string)
            .collect::<Vec<_>>()
            .join(", ")
            .into_bytes(),
        Encoding::Hex => hex::encode(bytes).into_bytes(),
        Encoding::HexUpper => hex::encode_upper(bytes).into_bytes(),
        Encoding::Percent => percent(bytes, false, false),
        Encoding::PercentLower => percent(bytes, false, true),
        Encoding::Form => percent(bytes, true, false),
        Encoding::FormLower => percent(bytes, true, true),
    }
}

fn matcher() -> Option<Arc<Matcher>> {
    let mut r = registry();
    if r.order.is_empty() {
        return None;
    }
    if r.matcher.is_none() {
        let mut by_prefix: std::collections::HashMap<Vec<u8>, Vec<(Encoding, Arc<str>)>> =
            std::collections::HashMap::new();
        for secret in &r.order {
            let bytes = secret.as_bytes();
            let head = &bytes[..bytes.len().min(PREFIX)];
            for encoding in ENCODINGS {
                by_prefix
                    .entry(encode(encoding, head))
                    .or_default()
                    .push((encoding, secret.clone()));
            }
        }
        let (patterns, owners): (Vec<Vec<u8>>, Vec<_>) = by_prefix.into_iter().unzip();
        // Building fails only past the automaton's size limits; then mask nothing new
        // rather than fail the log write (the level caps still hold).
        r.matcher = AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostLongest)
            .build(&patterns)
            .ok()
            .map(|ac| Arc::new(Matcher { ac, owners }));
    }
    r.matcher.clone()
}

/// `bytes` with every registered secret, in every [`Encoding`], replaced by [`MASK`]: each
/// place where a secret's first bytes appear is masked as far as the secret goes on there.
pub fn scrub(bytes: &[u8]) -> Vec<u8> {
    let Some(m) = matcher() else {
        return bytes.to_vec();
    };
    let mut out = Vec::with_capacity(bytes.len());
    let mut done = 0;
    for hit in m.ac.find_iter(bytes) {
        if hit.start() < done {
            continue;
        }
        let rest = &bytes[hit.start()..];
        let len = m.owners[hit.pattern().as_usize()]
            .iter()
            .map(|(encoding, s)| {
                let full = encode(*encoding, s.as_bytes());
                rest.iter().zip(&full).take_while(|(a, b)| a == b).count()
            })
            .fold(hit.len(), usize::max);
        out.extend_from_slice(&bytes[done..hit.start()]);
        out.extend_from_slice(MASK.as_bytes());
        done = hit.start() + len;
    }
    out.extend_from_slice(&bytes[done..]);
    out
}

/// `text` with every registered secret, in every [`Encoding`], replaced by [`MASK`]: for
/// every text that leaves the process other than the log (error messages, replies, output).
pub fn scrub_str(text: &str) -> String {
    match String::from_utf8(scrub(text.as_bytes())) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// A [`MakeWriter`] whose writers pass every write through [`scrub`]. The `fmt` layer
/// writes each event with one `write_all` of the whole formatted line, so a secret is never
/// split between two writes.
pub struct Scrubbed<M>(pub M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Scrubbed<M> {
    type Writer = ScrubWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        ScrubWriter(self.0.make_writer())
    }
}

/// The writer of [`Scrubbed`].
pub struct ScrubWriter<W>(W);

impl<W: Write> Write for ScrubWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_all(&scrub(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrubbed(text: &str) -> String {
        String::from_utf8(scrub(text.as_bytes())).unwrap()
    }

    #[test]
    fn masks_text_decimal_and_hex_forms() {
        let s = "redactTestSecret/AbC+0123==";
        register(s);
        let debug_bytes = format!("{:?}", format!("# x\nkey = {s}\n").into_bytes());
        for line in [
            format!("token={s} end"),
            format!("{{\"token\":\"{s}\"}}"),
            debug_bytes,
            format!("body {}", hex::encode(s)),
            format!("body {}", hex::encode_upper(s)),
        ] {
            let out = scrubbed(&line);
            assert!(out.contains(MASK), "{out}");
            for encoding in ENCODINGS {
                let form = String::from_utf8(encode(encoding, s.as_bytes())).unwrap();
                assert!(!out.contains(&form), "{out}");
            }
        }
        assert_eq!(scrubbed("nothing to see"), "nothing to see");
    }

    #[test]
    fn masks_percent_encoded_forms() {
        // A web identity token as a form body carries it: `+`, `/`, `=` and a space escaped.
        let s = "Opaque+Tok/With=Pad+Secret value~ok";
        register(s);
        for form in [
            "Opaque%2BTok%2FWith%3DPad%2BSecret%20value~ok",
            "Opaque%2bTok%2fWith%3dPad%2bSecret%20value~ok",
            "Opaque%2BTok%2FWith%3DPad%2BSecret+value~ok",
            "Opaque%2bTok%2fWith%3dPad%2bSecret+value~ok",
        ] {
            assert_eq!(
                scrubbed(&format!("Action=X&WebIdentityToken={form}&Version=1")),
                "Action=X&WebIdentityToken=***&Version=1"
            );
        }
        // A secret whose first bytes need no escaping is masked whole in every form too.
        let jwt = "eyJhbGciOiJSUzI1NiJ9.claims+more/sig==";
        register(jwt);
        assert_eq!(
            scrubbed("t=eyJhbGciOiJSUzI1NiJ9.claims%2Bmore%2Fsig%3D%3D&x"),
            "t=***&x"
        );
        assert_eq!(scrubbed(&format!("t={jwt} x")), "t=*** x");
    }

    #[test]
    fn scrub_str_masks_text() {
        register("scrubStrSecretRedactTest");
        assert_eq!(
            scrub_str("refused: token scrubStrSecretRedactTest …"),
            "refused: token *** …"
        );
    }

    #[test]
    fn secrets_sharing_a_prefix_are_masked_whole() {
        let shared = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3Qt";
        let a = format!("{shared}MSJHMEUCIQaaaaaaaaaaaa");
        let b = format!("{shared}MSJHMEUCIQbbbbbbbbbbbbbbbbbbbb");
        register(&a);
        register(&b);
        assert_eq!(scrubbed(&format!("x {b} y {a} z")), "x *** y *** z");
        // A print cut short is masked as far as it goes.
        assert_eq!(scrubbed(&format!("x {}… y", &b[..30])), "x ***… y");
    }

    #[test]
    fn short_values_are_not_registered() {
        register("short");
        assert_eq!(scrubbed("a short word"), "a short word");
    }

    #[test]
    fn ini_secrets_are_registered() {
        register_ini_secrets(
            "[p]\naws_access_key_id = AKIAREDACTTEST\naws_secret_access_key = iniSecretRedactTest/1\n",
        );
        assert_eq!(
            scrubbed("k=iniSecretRedactTest/1 id=AKIAREDACTTEST"),
            "k=*** id=AKIAREDACTTEST"
        );
    }

    #[test]
    fn writer_masks_whole_writes() {
        register("writerSecretRedactTest");
        let mut w = ScrubWriter(Vec::new());
        w.write_all(b"a writerSecretRedactTest b\n").unwrap();
        assert_eq!(w.0, b"a *** b\n");
    }
}
