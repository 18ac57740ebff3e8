//! The file as written, before validation. A tolerant walk over the parsed document
//! (`toml_edit`) that notes every unknown key, wrong type and missing required key in
//! every table, instead of stopping at the first, and keeps the line of every value.

use std::ops::Range;

use helo_transport::Password;
use toml_edit::{ImDocument, Item, TableLike, Value};

pub(super) use super::tunables::RawTunables;
use super::{
    issues::{quoted, Issues},
    split::Split,
};

/// A value and the line it was written on.
#[derive(Clone)]
pub(super) struct At<T> {
    pub(super) value: T,
    pub(super) line: Option<usize>,
}

/// A duration as text (`"30s"`) or a number of seconds.
#[derive(Clone)]
pub(super) enum RawDuration {
    Text(String),
    Secs(f64),
}

/// The whole file but its encoders (read one at a time: [`Encoders`]).
pub(super) struct RawFile {
    pub(super) admin_listen: Option<At<String>>,
    pub(super) admin_token_file: Option<At<String>>,
    pub(super) admin_token_env: Option<At<String>>,
    pub(super) admin_tls_cert: Option<At<String>>,
    pub(super) admin_tls_key: Option<At<String>>,
    pub(super) admin_auth_reads: Option<At<bool>>,
    pub(super) admin_max_connections: Option<At<i64>>,
    pub(super) allow_insecure_password_files: Option<At<bool>>,
    pub(super) defaults: Option<RawTunables>,
    pub(super) cluster: Option<RawCluster>,
    pub(super) metrics: Option<RawMetrics>,
}

/// One `[[encoder]]` table; `id` and `url` are required, so they are `None` only
/// when their absence has been reported.
pub(super) struct RawEncoder {
    /// `encoder[i]`, the prefix of every key of this table in messages.
    pub(super) key: String,
    pub(super) id: Option<At<String>>,
    pub(super) url: Option<At<String>>,
    pub(super) password: Option<At<Password>>,
    pub(super) password_file: Option<At<String>>,
    pub(super) password_env: Option<At<String>>,
    pub(super) expect_streaming: Option<At<bool>>,
    pub(super) expect_recording: Option<At<bool>>,
    pub(super) hold: Option<At<bool>>,
    /// Boxed: every key of the tunables is a field, so inline this table is most of
    /// an encoder's size, while few encoders have one. Unboxed, the list of 40 000
    /// encoders is one allocation over glibc's largest heap block (32 MiB), mapped
    /// and faulted in afresh at every load: validation grew faster than the file.
    pub(super) overrides: Option<Box<RawTunables>>,
}

/// The strings of an array, each with its index in the array (elements of the wrong
/// type are reported and left out).
pub(super) type Strings = Vec<(usize, At<String>)>;

/// The `[cluster]` table.
pub(super) struct RawCluster {
    pub(super) line: Option<usize>,
    pub(super) etcd: Option<At<Strings>>,
    pub(super) name: Option<At<String>>,
    pub(super) node: Option<At<String>>,
    pub(super) lease_ttl: Option<At<RawDuration>>,
}

/// The `[metrics]` table.
pub(super) struct RawMetrics {
    pub(super) per_encoder_histograms: Option<At<bool>>,
}

const TOP_KEYS: &[&str] = &[
    "admin_listen",
    "admin_token_file",
    "admin_token_env",
    "admin_tls_cert",
    "admin_tls_key",
    "admin_auth_reads",
    "admin_max_connections",
    "allow_insecure_password_files",
    "defaults",
    "encoder",
    "cluster",
    "metrics",
];

const ENCODER_KEYS: &[&str] = &[
    "id",
    "url",
    "password",
    "password_file",
    "password_env",
    "expect_streaming",
    "expect_recording",
    "hold",
    "overrides",
];

const CLUSTER_KEYS: &[&str] = &["etcd", "name", "node", "lease_ttl"];

const METRICS_KEYS: &[&str] = &["per_encoder_histograms"];

/// The top-level table of a document, its unknown keys reported.
pub(super) fn top<'d>(table: &'d dyn TableLike, issues: &mut Issues) -> Table<'d> {
    Table::new(table, String::new(), Some(1), TOP_KEYS, 0, issues)
}

impl RawFile {
    /// Reads everything but the encoders from the top-level table; every mistake goes
    /// to `issues`.
    pub(super) fn read(top: &Table<'_>, issues: &mut Issues) -> Self {
        let defaults = top
            .table("defaults", RawTunables::KEYS, issues)
            .map(|t| RawTunables::read(&t, issues));
        let cluster = top
            .table("cluster", CLUSTER_KEYS, issues)
            .map(|t| RawCluster::read(&t, issues));
        let metrics = top
            .table("metrics", METRICS_KEYS, issues)
            .map(|t| RawMetrics {
                per_encoder_histograms: t.get("per_encoder_histograms", issues),
            });
        Self {
            admin_listen: top.get("admin_listen", issues),
            admin_token_file: top.get("admin_token_file", issues),
            admin_token_env: top.get("admin_token_env", issues),
            admin_tls_cert: top.get("admin_tls_cert", issues),
            admin_tls_key: top.get("admin_tls_key", issues),
            admin_auth_reads: top.get("admin_auth_reads", issues),
            admin_max_connections: top.get("admin_max_connections", issues),
            allow_insecure_password_files: top.get("allow_insecure_password_files", issues),
            defaults,
            cluster,
            metrics,
        }
    }
}

/// Where the `[[encoder]]` tables are read from, one at a time, so that a large fleet
/// never holds every raw table at once.
pub(super) enum Encoders<'d> {
    /// The tables of the whole document.
    Whole(Vec<(&'d dyn TableLike, Option<usize>)>),
    /// Each table's own piece of the file ([`split`](super::split)).
    Pieces { text: &'d str, split: &'d Split },
}

impl<'d> Encoders<'d> {
    /// The tables of `[[encoder]]` in the whole document's top-level table.
    pub(super) fn whole(top: &Table<'d>, issues: &mut Issues) -> Self {
        Self::Whole(top.array_of_tables("encoder", issues))
    }

    /// How many encoder tables there are.
    pub(super) fn len(&self) -> usize {
        match self {
            Self::Whole(tables) => tables.len(),
            Self::Pieces { split, .. } => split.encoders.len(),
        }
    }

    /// Reads each encoder, in file order, and hands it to `sink`; `false` when a piece
    /// does not stand on its own (then the file must be read whole, from the start).
    pub(super) fn each(
        &self,
        issues: &mut Issues,
        mut sink: impl FnMut(RawEncoder, &mut Issues),
    ) -> bool {
        match self {
            Self::Whole(tables) => {
                for (i, (table, line)) in tables.iter().enumerate() {
                    let t = Table::new(*table, encoder_key(i), *line, ENCODER_KEYS, 0, issues);
                    let encoder = RawEncoder::read(&t, issues);
                    sink(encoder, issues);
                }
                true
            }
            Self::Pieces { text, split } => {
                for (i, piece) in split.encoders.iter().enumerate() {
                    let Some(encoder) = RawEncoder::read_piece(text, piece, i, issues) else {
                        return false;
                    };
                    sink(encoder, issues);
                }
                true
            }
        }
    }
}

/// `encoder[i]`, the prefix of the keys of the `i`th encoder in messages.
fn encoder_key(i: usize) -> String {
    format!("encoder[{i}]")
}

impl RawEncoder {
    /// The `i`th encoder from its own piece of `text`; `None` when the piece is not
    /// one whole `[[encoder]]` table by itself.
    fn read_piece(text: &str, piece: &Range<usize>, i: usize, issues: &mut Issues) -> Option<Self> {
        let doc = ImDocument::parse(text.get(piece.clone())?).ok()?;
        let root = doc.as_table();
        let tables = root.get("encoder")?.as_array_of_tables()?;
        if root.len() != 1 || tables.len() != 1 {
            return None;
        }
        let table = tables.get(0)?;
        let line = issues.line(shifted(table.span(), piece.start));
        let t = Table::new(
            table,
            encoder_key(i),
            line,
            ENCODER_KEYS,
            piece.start,
            issues,
        );
        Some(Self::read(&t, issues))
    }

    fn read(t: &Table<'_>, issues: &mut Issues) -> Self {
        Self {
            key: t.prefix.clone(),
            id: t.required("id", issues),
            url: t.required("url", issues),
            // Wrapped at once, so the secret is never held as a plain string.
            password: t.get::<String>("password", issues).map(|p| At {
                value: Password::new(p.value),
                line: p.line,
            }),
            password_file: t.get("password_file", issues),
            password_env: t.get("password_env", issues),
            expect_streaming: t.get("expect_streaming", issues),
            expect_recording: t.get("expect_recording", issues),
            hold: t.get("hold", issues),
            overrides: t
                .table("overrides", RawTunables::KEYS, issues)
                .map(|o| Box::new(RawTunables::read(&o, issues))),
        }
    }
}

impl RawCluster {
    fn read(t: &Table<'_>, issues: &mut Issues) -> Self {
        Self {
            line: t.line,
            etcd: if t.missing("etcd", issues) {
                None
            } else {
                t.strings("etcd", issues)
            },
            name: t.required("name", issues),
            // May come from the environment instead; checked with it.
            node: t.get("node", issues),
            lease_ttl: t.get("lease_ttl", issues),
        }
    }
}

/// A TOML value that a key can hold.
pub(super) trait FromToml: Sized {
    /// What the key needs, for the message when it holds something else.
    const EXPECTED: &'static str;
    fn from_toml(value: &Value) -> Option<Self>;
}

impl FromToml for String {
    const EXPECTED: &'static str = "a string";
    fn from_toml(value: &Value) -> Option<Self> {
        value.as_str().map(str::to_string)
    }
}

impl FromToml for bool {
    const EXPECTED: &'static str = "true or false";
    fn from_toml(value: &Value) -> Option<Self> {
        value.as_bool()
    }
}

impl FromToml for i64 {
    const EXPECTED: &'static str = "a whole number";
    fn from_toml(value: &Value) -> Option<Self> {
        value.as_integer()
    }
}

impl FromToml for f64 {
    const EXPECTED: &'static str = "a number";
    fn from_toml(value: &Value) -> Option<Self> {
        match value {
            Value::Integer(i) => Some(*i.value() as f64),
            Value::Float(f) => Some(*f.value()),
            _ => None,
        }
    }
}

impl FromToml for RawDuration {
    const EXPECTED: &'static str = "a duration such as \"30s\" or a number of seconds";
    fn from_toml(value: &Value) -> Option<Self> {
        match value {
            Value::String(s) => Some(Self::Text(s.value().clone())),
            Value::Integer(i) => Some(Self::Secs(*i.value() as f64)),
            Value::Float(f) => Some(Self::Secs(*f.value())),
            _ => None,
        }
    }
}

/// One table of the document (a `[header]` table, a dotted key or an inline table),
/// with the key prefix its mistakes are reported under.
pub(super) struct Table<'d> {
    table: &'d dyn TableLike,
    /// Where the document this table is in starts in the file (its spans are
    /// relative to that).
    base: usize,
    /// `""` at the top level, else e.g. `defaults` or `encoder[2].overrides`.
    prefix: String,
    /// The line of the header (or of the key that opened it).
    pub(super) line: Option<usize>,
}

impl<'d> Table<'d> {
    /// Wraps `table`, reporting each of its keys that is not in `known`.
    fn new(
        table: &'d dyn TableLike,
        prefix: String,
        line: Option<usize>,
        known: &[&str],
        base: usize,
        issues: &mut Issues,
    ) -> Self {
        let t = Self {
            table,
            base,
            prefix,
            line,
        };
        for (name, item) in table.iter() {
            if item.is_none() || known.contains(&name) {
                continue;
            }
            let shown = quoted(name);
            let message = match closest(name, known) {
                Some(near) => format!("unknown key {shown} (did you mean {near:?}?)"),
                None if known.len() <= 10 => {
                    format!(
                        "unknown key {shown} (expected one of: {})",
                        known.join(", ")
                    )
                }
                None => format!("unknown key {shown} (fleet.example.toml lists every key)"),
            };
            // A quoted key may hold anything (`"a\nb"`): shown bare, it would split
            // the issue over two lines of the report.
            let bare = name.len() <= 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            let key = t.key(&if bare {
                name.to_string()
            } else {
                shown.clone()
            });
            issues.error(key, t.line_of(name, item, issues), message);
        }
        t
    }

    /// The full key of `name` in this table, as messages show it.
    pub(super) fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    fn line_of(&self, name: &str, item: &Item, issues: &Issues) -> Option<usize> {
        self.line(item.span(), issues)
            .or_else(|| self.line(self.table.key(name).and_then(|k| k.span()), issues))
            .or(self.line)
    }

    /// The line of a span of this table's document.
    fn line(&self, span: Option<Range<usize>>, issues: &Issues) -> Option<usize> {
        issues.line(shifted(span, self.base))
    }

    /// The value of `name`, if present and of the right type (else reported).
    pub(super) fn get<T: FromToml>(&self, name: &str, issues: &mut Issues) -> Option<At<T>> {
        let item = self.table.get(name).filter(|i| !i.is_none())?;
        let line = self.line_of(name, item, issues);
        match item.as_value().and_then(T::from_toml) {
            Some(value) => Some(At { value, line }),
            None => {
                issues.error(
                    self.key(name),
                    line,
                    format!("expected {}, found {}", T::EXPECTED, type_name(item)),
                );
                None
            }
        }
    }

    /// Like [`Table::get`], and reports the key missing.
    fn required<T: FromToml>(&self, name: &str, issues: &mut Issues) -> Option<At<T>> {
        if self.missing(name, issues) {
            return None;
        }
        self.get(name, issues)
    }

    /// Whether the required key `name` is absent (then reported at the header).
    fn missing(&self, name: &str, issues: &mut Issues) -> bool {
        let missing = self.table.get(name).is_none_or(Item::is_none);
        if missing {
            issues.error(
                self.key(name),
                self.line,
                format!("missing required key {name:?}"),
            );
        }
        missing
    }

    /// The sub-table `name`, checked against its `known` keys.
    fn table(&self, name: &str, known: &[&str], issues: &mut Issues) -> Option<Table<'d>> {
        let item = self.table.get(name).filter(|i| !i.is_none())?;
        let line = self.line_of(name, item, issues);
        match item.as_table_like() {
            Some(table) => Some(Table::new(
                table,
                self.key(name),
                line,
                known,
                self.base,
                issues,
            )),
            None => {
                issues.error(
                    self.key(name),
                    line,
                    format!("expected a table [{name}], found {}", type_name(item)),
                );
                None
            }
        }
    }

    /// The tables of `[[name]]` (or of `name = [{ … }, …]`), with their lines.
    fn array_of_tables(
        &self,
        name: &str,
        issues: &mut Issues,
    ) -> Vec<(&'d dyn TableLike, Option<usize>)> {
        let Some(item) = self.table.get(name).filter(|i| !i.is_none()) else {
            return Vec::new();
        };
        let mut out: Vec<(&'d dyn TableLike, Option<usize>)> = Vec::new();
        if let Some(tables) = item.as_array_of_tables() {
            for t in tables.iter() {
                out.push((t, self.line(t.span(), issues)));
            }
            return out;
        }
        let Some(array) = item.as_array() else {
            let line = self.line_of(name, item, issues);
            issues.error(
                self.key(name),
                line,
                format!("expected [[{name}]] tables, found {}", type_name(item)),
            );
            return out;
        };
        for (i, value) in array.iter().enumerate() {
            let line = self.line(value.span(), issues);
            match value.as_inline_table() {
                Some(t) => out.push((t, line)),
                None => issues.error(
                    format!("{}[{i}]", self.key(name)),
                    line,
                    format!(
                        "expected a table, found {}",
                        with_article(value.type_name())
                    ),
                ),
            }
        }
        out
    }

    /// An array of strings, each with its index and line.
    fn strings(&self, name: &str, issues: &mut Issues) -> Option<At<Strings>> {
        let item = self.table.get(name).filter(|i| !i.is_none())?;
        let line = self.line_of(name, item, issues);
        let Some(array) = item.as_array() else {
            issues.error(
                self.key(name),
                line,
                format!("expected an array of strings, found {}", type_name(item)),
            );
            return None;
        };
        let mut values = Vec::with_capacity(array.len());
        for (i, value) in array.iter().enumerate() {
            let at = self.line(value.span(), issues).or(line);
            match value.as_str() {
                Some(s) => values.push((
                    i,
                    At {
                        value: s.to_string(),
                        line: at,
                    },
                )),
                None => issues.error(
                    format!("{}[{i}]", self.key(name)),
                    at,
                    format!(
                        "expected a string, found {}",
                        with_article(value.type_name())
                    ),
                ),
            }
        }
        Some(At {
            value: values,
            line,
        })
    }
}

/// A span of a document that starts `base` bytes into the file, as a span of the file.
fn shifted(span: Option<Range<usize>>, base: usize) -> Option<Range<usize>> {
    span.map(|s| s.start + base..s.end + base)
}

/// What a value is, for messages ("a string", "a table").
fn type_name(item: &Item) -> String {
    with_article(item.type_name())
}

fn with_article(name: &str) -> String {
    let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {name}")
}

/// The known key nearest to a misspelt one, if it is near enough to be a typo.
fn closest<'k>(name: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|&(d, k)| d <= 2.max(k.len() / 4))
        .min_by_key(|&(d, _)| d)
        .map(|(_, k)| k)
}

/// Levenshtein distance; keys are short, so the simple two-row version does.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}
