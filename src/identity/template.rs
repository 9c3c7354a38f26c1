//! The subset of Go's `text/template` that Fulcio's CI-provider templates use, parsed once
//! at startup and evaluated per request over the token's claims (stringified) merged over
//! the provider's default values.
//!
//! Supported: literal text; `{{ .key }}`; `{{ . }}`; `{{ index . "key" }}` (a missing key
//! yields ""); string literals; `eq`/`ne`; parentheses; `{{ if ... }}`, `{{ else }}`,
//! `{{ else if ... }}`, `{{ end }}`; `{{-`/`-}}` trimming. Output is never HTML-escaped.
//! `.key` on a missing key is an error (`missingkey=error`). Anything else is refused when
//! the configuration loads.

use std::collections::BTreeMap;
use std::fmt;

/// Template variables: claim or default-value name to its string value.
pub type Vars = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Expr {
    Dot,
    Field(String),
    Str(String),
    Index(Box<Expr>, Box<Expr>),
    Eq(Box<Expr>, Vec<Expr>),
    Ne(Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Text(String),
    Print(Expr),
    If {
        cond: Expr,
        then: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

/// A parsed template, or a bare claim name (a template string without `{{`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Lookup,
    Go(Vec<Node>),
}

/// Why a template was refused when parsed or failed when rendered (a human-readable message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError(pub String);

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, TemplateError> {
    Err(TemplateError(msg.into()))
}

/// Why a template could not be executed over given values (Go's wording).
#[derive(Debug, thiserror::Error)]
enum RenderError {
    #[error("map has no entry for key {0:?}")]
    NoKey(String),
    #[error("can't index a string")]
    IndexString,
    #[error("index key must be a string")]
    IndexKey,
    #[error("incompatible types for comparison")]
    Compare,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Dot,
    Field(String),
    Str(String),
    Ident(String),
    Open,
    Close,
}

fn lex(action: &str) -> Result<Vec<Tok>, TemplateError> {
    let b = action.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'(' => {
                out.push(Tok::Open);
                i += 1;
            }
            b')' => {
                out.push(Tok::Close);
                i += 1;
            }
            b'.' => {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                    j += 1;
                }
                if j == start {
                    out.push(Tok::Dot);
                } else {
                    if j < b.len() && b[j] == b'.' {
                        return err(format!(
                            "nested field access .{}. is not supported (use index . \"key\")",
                            &action[start..j]
                        ));
                    }
                    out.push(Tok::Field(action[start..j].to_string()));
                }
                i = j;
            }
            b'"' => {
                let mut s = String::new();
                let mut j = i + 1;
                loop {
                    match b.get(j) {
                        None => return err("unterminated quoted string"),
                        Some(b'"') => break,
                        Some(b'\\') => {
                            let e = b.get(j + 1).copied();
                            s.push(match e {
                                Some(b'"') => '"',
                                Some(b'\\') => '\\',
                                Some(b'n') => '\n',
                                Some(b't') => '\t',
                                _ => return err("unsupported escape in quoted string"),
                            });
                            j += 2;
                        }
                        Some(_) => {
                            let ch = action[j..].chars().next().unwrap_or('\u{fffd}');
                            s.push(ch);
                            j += ch.len_utf8();
                        }
                    }
                }
                out.push(Tok::Str(s));
                i = j + 1;
            }
            b'`' => {
                let end = action[i + 1..]
                    .find('`')
                    .ok_or_else(|| TemplateError("unterminated raw string".into()))?;
                out.push(Tok::Str(action[i + 1..i + 1 + end].to_string()));
                i += end + 2;
            }
            c if c.is_ascii_alphabetic() => {
                let mut j = i;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                    j += 1;
                }
                out.push(Tok::Ident(action[i..j].to_string()));
                i = j;
            }
            _ => return err(format!("unexpected character {:?} in action", c as char)),
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    /// A command: an operand, or a function applied to operands.
    fn command(&mut self) -> Result<Expr, TemplateError> {
        match self.peek().cloned() {
            None => err("missing value for command"),
            Some(Tok::Ident(f)) => {
                self.pos += 1;
                let mut args = Vec::new();
                while let Some(t) = self.peek() {
                    if *t == Tok::Close {
                        break;
                    }
                    args.push(self.operand()?);
                }
                match (f.as_str(), args.len()) {
                    ("index", 2) => {
                        let key = args.pop().unwrap_or(Expr::Dot);
                        let coll = args.pop().unwrap_or(Expr::Dot);
                        Ok(Expr::Index(Box::new(coll), Box::new(key)))
                    }
                    ("eq", n) if n >= 2 => {
                        let first = args.remove(0);
                        Ok(Expr::Eq(Box::new(first), args))
                    }
                    ("ne", 2) => {
                        let b = args.pop().unwrap_or(Expr::Dot);
                        let a = args.pop().unwrap_or(Expr::Dot);
                        Ok(Expr::Ne(Box::new(a), Box::new(b)))
                    }
                    ("index" | "eq" | "ne", n) => {
                        err(format!("wrong number of arguments for {f}: {n}"))
                    }
                    (other, _) => err(format!("function {other:?} is not supported")),
                }
            }
            Some(_) => {
                let e = self.operand()?;
                if self.peek().is_some_and(|t| *t != Tok::Close) {
                    return err("a value cannot be called with arguments");
                }
                Ok(e)
            }
        }
    }

    fn operand(&mut self) -> Result<Expr, TemplateError> {
        let t = self
            .peek()
            .cloned()
            .ok_or_else(|| TemplateError("missing operand".into()))?;
        self.pos += 1;
        match t {
            Tok::Dot => Ok(Expr::Dot),
            Tok::Field(f) => Ok(Expr::Field(f)),
            Tok::Str(s) => Ok(Expr::Str(s)),
            Tok::Open => {
                let e = self.command()?;
                if self.peek() != Some(&Tok::Close) {
                    return err("unclosed parenthesis");
                }
                self.pos += 1;
                Ok(e)
            }
            Tok::Close => err("unexpected )"),
            Tok::Ident(f) => err(format!("function {f:?} used as a value")),
        }
    }
}

fn parse_pipeline(toks: Vec<Tok>) -> Result<Expr, TemplateError> {
    let mut p = Parser { toks, pos: 0 };
    let e = p.command()?;
    if p.pos != p.toks.len() {
        return err("unexpected tokens after the command");
    }
    Ok(e)
}

enum Action {
    Print(Expr),
    If(Expr),
    Else,
    ElseIf(Expr),
    End,
}

fn parse_action(inner: &str) -> Result<Action, TemplateError> {
    let toks = lex(inner)?;
    match toks.first() {
        Some(Tok::Ident(k)) if k == "if" => Ok(Action::If(parse_pipeline(toks[1..].to_vec())?)),
        Some(Tok::Ident(k)) if k == "else" => match toks.get(1) {
            None => Ok(Action::Else),
            Some(Tok::Ident(k2)) if k2 == "if" => {
                Ok(Action::ElseIf(parse_pipeline(toks[2..].to_vec())?))
            }
            Some(_) => err("unexpected tokens after else"),
        },
        Some(Tok::Ident(k)) if k == "end" => {
            if toks.len() != 1 {
                return err("unexpected tokens after end");
            }
            Ok(Action::End)
        }
        Some(Tok::Ident(k))
            if matches!(
                k.as_str(),
                "range" | "with" | "define" | "template" | "block"
            ) =>
        {
            err(format!("{k:?} actions are not supported"))
        }
        _ => Ok(Action::Print(parse_pipeline(toks)?)),
    }
}

/// One open `if` while parsing.
struct Frame {
    cond: Expr,
    then: Vec<Node>,
    /// `Some` once `else` was seen; nested `else if`s are closed by the same `end`.
    otherwise: Option<Vec<Node>>,
    else_ifs: usize,
}

impl Frame {
    fn new(cond: Expr, else_ifs: usize) -> Frame {
        Frame {
            cond,
            then: Vec::new(),
            otherwise: None,
            else_ifs,
        }
    }
}

/// The tree under construction: finished top-level nodes and the `if`s still open.
#[derive(Default)]
struct Builder {
    out: Vec<Node>,
    open: Vec<Frame>,
}

impl Builder {
    /// Appends to the innermost open branch, or to the top level.
    fn push(&mut self, n: Node) {
        match self.open.last_mut() {
            Some(f) => match &mut f.otherwise {
                Some(o) => o.push(n),
                None => f.then.push(n),
            },
            None => self.out.push(n),
        }
    }

    fn text(&mut self, text: String) {
        if !text.is_empty() {
            self.push(Node::Text(text));
        }
    }

    fn action(&mut self, action: Action) -> Result<(), &'static str> {
        match action {
            Action::Print(e) => self.push(Node::Print(e)),
            Action::If(cond) => self.open.push(Frame::new(cond, 0)),
            Action::Else => match self.open.last_mut() {
                Some(f) if f.otherwise.is_none() => f.otherwise = Some(Vec::new()),
                _ => return Err("unexpected else"),
            },
            Action::ElseIf(cond) => match self.open.last_mut() {
                Some(f) if f.otherwise.is_none() => {
                    // `else if c` is `else {{if c}} ... {{end}}` closed by the outer end.
                    f.otherwise = Some(Vec::new());
                    let depth = f.else_ifs + 1;
                    self.open.push(Frame::new(cond, depth));
                }
                _ => return Err("unexpected else if"),
            },
            Action::End => loop {
                // Close this if and any chained else-ifs.
                let Some(f) = self.open.pop() else {
                    return Err("unexpected end");
                };
                let chained = f.else_ifs > 0;
                self.push(Node::If {
                    cond: f.cond,
                    then: f.then,
                    otherwise: f.otherwise.unwrap_or_default(),
                });
                if !chained {
                    break;
                }
            },
        }
        Ok(())
    }

    fn finish(self) -> Result<Vec<Node>, &'static str> {
        if self.open.is_empty() {
            Ok(self.out)
        } else {
            Err("missing end")
        }
    }
}

impl Template {
    /// Parses a template string from the configuration.
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        if !source.contains("{{") {
            return Ok(Template {
                source: source.to_string(),
                kind: Kind::Lookup,
            });
        }
        let at = |e: &str| TemplateError(format!("template {source:?}: {e}"));
        let mut tree = Builder::default();
        let mut rest = source;
        let mut trim_next = false;
        loop {
            let Some(open) = rest.find("{{") else {
                let text = if trim_next { rest.trim_start() } else { rest };
                tree.text(text.to_string());
                break;
            };
            let mut text = &rest[..open];
            if trim_next {
                text = text.trim_start();
            }
            let after = &rest[open + 2..];
            let trim_before = after.starts_with("- ") || after == "-";
            if trim_before {
                text = text.trim_end();
            }
            tree.text(text.to_string());
            let body_start = if trim_before { 1 } else { 0 };
            let close = find_close(&after[body_start..])
                .ok_or_else(|| TemplateError(format!("unclosed action in {source:?}")))?;
            let mut inner = &after[body_start..body_start + close];
            trim_next = false;
            if inner.ends_with(" -") {
                inner = &inner[..inner.len() - 2];
                trim_next = true;
            }
            rest = &after[body_start + close + 2..];
            let action = parse_action(inner).map_err(|e| at(&e.to_string()))?;
            tree.action(action).map_err(at)?;
        }
        Ok(Template {
            source: source.to_string(),
            kind: Kind::Go(tree.finish().map_err(at)?),
        })
    }

    /// The configured text.
    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    /// Whether this is a bare claim-name lookup rather than a Go template.
    pub(crate) fn is_lookup(&self) -> bool {
        self.kind == Kind::Lookup
    }

    /// Renders over `vars` (defaults merged with claims).
    pub fn render(&self, vars: &Vars) -> Result<String, TemplateError> {
        match &self.kind {
            Kind::Lookup => vars.get(&self.source).cloned().ok_or_else(|| {
                TemplateError(format!(
                    "value {} not present in either claims or defaults",
                    self.source
                ))
            }),
            Kind::Go(nodes) => {
                let mut out = String::new();
                render_nodes(nodes, vars, &mut out)
                    .map_err(|e| TemplateError(format!("template {:?}: {e}", self.source)))?;
                Ok(out)
            }
        }
    }
}

/// Finds the `}}` closing an action, skipping quoted strings.
fn find_close(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i + 1 < b.len() || (quote.is_none() && i < b.len()) {
        match quote {
            Some(q) => {
                if b[i] == b'\\' && q == b'"' {
                    i += 2;
                    continue;
                }
                if b[i] == q {
                    quote = None;
                }
            }
            None => {
                if b[i] == b'"' || b[i] == b'`' {
                    quote = Some(b[i]);
                } else if b[i] == b'}' && b.get(i + 1) == Some(&b'}') {
                    return Some(i);
                }
            }
        }
        i += 1;
    }
    None
}

#[derive(Debug, Clone, PartialEq)]
enum Val<'a> {
    Map(&'a Vars),
    Str(String),
}

fn eval<'a>(e: &Expr, vars: &'a Vars) -> Result<Val<'a>, RenderError> {
    Ok(match e {
        Expr::Dot => Val::Map(vars),
        Expr::Field(f) => Val::Str(
            vars.get(f)
                .cloned()
                .ok_or_else(|| RenderError::NoKey(f.clone()))?,
        ),
        Expr::Str(s) => Val::Str(s.clone()),
        Expr::Index(coll, key) => {
            let Val::Map(m) = eval(coll, vars)? else {
                return Err(RenderError::IndexString);
            };
            let Val::Str(k) = eval(key, vars)? else {
                return Err(RenderError::IndexKey);
            };
            Val::Str(m.get(&k).cloned().unwrap_or_default())
        }
        Expr::Eq(a, rest) => {
            let a = string(eval(a, vars)?)?;
            let mut any = false;
            for b in rest {
                if a == string(eval(b, vars)?)? {
                    any = true;
                }
            }
            Val::Str(any.to_string())
        }
        Expr::Ne(a, b) => {
            Val::Str((string(eval(a, vars)?)? != string(eval(b, vars)?)?).to_string())
        }
    })
}

fn string(v: Val<'_>) -> Result<String, RenderError> {
    match v {
        Val::Str(s) => Ok(s),
        Val::Map(_) => Err(RenderError::Compare),
    }
}

fn truthy(e: &Expr, vars: &Vars) -> Result<bool, RenderError> {
    Ok(match (e, eval(e, vars)?) {
        (Expr::Eq(..) | Expr::Ne(..), Val::Str(s)) => s == "true",
        (_, Val::Str(s)) => !s.is_empty(),
        (_, Val::Map(m)) => !m.is_empty(),
    })
}

fn render_nodes(nodes: &[Node], vars: &Vars, out: &mut String) -> Result<(), RenderError> {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Print(e) => match eval(e, vars)? {
                Val::Str(s) => out.push_str(&s),
                Val::Map(m) => {
                    out.push_str("map[");
                    let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                    out.push_str(&parts.join(" "));
                    out.push(']');
                }
            },
            Node::If {
                cond,
                then,
                otherwise,
            } => {
                if truthy(cond, vars)? {
                    render_nodes(then, vars, out)?;
                } else {
                    render_nodes(otherwise, vars, out)?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn shipped_constructs() {
        let v = vars(&[
            ("url", "https://x"),
            ("ref_type", "tag"),
            ("ref", "v1"),
            ("a.b/c", "z"),
        ]);
        let t = |s: &str| Template::parse(s).unwrap().render(&v).unwrap();
        assert_eq!(t("{{ .url }}/p"), "https://x/p");
        assert_eq!(
            t("refs/{{if eq .ref_type \"branch\"}}heads/{{ else }}tags/{{end}}{{ .ref }}"),
            "refs/tags/v1"
        );
        assert_eq!(t("{{ index . \"a.b/c\" }}"), "z");
        assert_eq!(t("{{ index . \"missing\" }}"), "");
        assert_eq!(t("{{- .ref -}}  "), "v1");
        assert_eq!(
            t("{{ if eq .ref \"x\" }}a{{ else if eq .ref \"v1\" }}b{{ else }}c{{ end }}"),
            "b"
        );
        assert_eq!(t("{{ if ne .ref \"x\" }}yes{{ end }}"), "yes");
        assert_eq!(t("{{ if eq .ref \"a\" \"v1\" }}multi{{ end }}"), "multi");
    }

    #[test]
    fn refusals() {
        for bad in [
            "{{}}",
            "{{ .a.b }}",
            "{{ range .x }}{{ end }}",
            "{{ printf \"%s\" .a }}",
            "{{ if .a }}",
            "{{ end }}",
            "{{ .a",
            "{{ \"x }}",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
        let v = vars(&[]);
        assert!(Template::parse("{{ .nope }}").unwrap().render(&v).is_err());
        assert!(
            Template::parse("{{if eq . \"\"}}a{{end}}")
                .unwrap()
                .render(&v)
                .is_err()
        );
        assert!(Template::parse("bare").unwrap().render(&v).is_err());
    }
}
