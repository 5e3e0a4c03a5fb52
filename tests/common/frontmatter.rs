//! The command pages in `docs/commands/`: their YAML front matter, read with just enough YAML
//! for what the Redis command-page format uses (quoted strings, integers, booleans, inline lists
//! of strings, and the block lists of maps under `arguments:`). Shared by the integration tests
//! and the unit test of `src/commands/docs.rs` (which includes this file by path).

use std::path::Path;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Yaml {
    Str(String),
    Int(i64),
    Bool(bool),
    List(Vec<Yaml>),
    /// Keys in the page's order.
    Map(Vec<(String, Yaml)>),
}

impl Yaml {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Yaml::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Yaml> {
        match self {
            Yaml::Map(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// One page: `docs/commands/<command>.md`.
pub struct Page {
    /// The path, for messages.
    pub file: String,
    /// The file name without `.md`: the command as registered, lowercase.
    pub command: String,
    pub front: Yaml,
    /// Everything after the front matter.
    pub body: String,
}

impl Page {
    pub fn parse(file: &str, text: &str) -> Result<Page, String> {
        let command = Path::new(file)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let rest = text
            .strip_prefix("---\n")
            .ok_or_else(|| format!("{file}: does not start with a `---` line"))?;
        let end = rest
            .find("\n---\n")
            .ok_or_else(|| format!("{file}: front matter not closed by a `---` line"))?;
        let front = parse(&rest[..end + 1]).map_err(|e| format!("{file}: front matter: {e}"))?;
        Ok(Page {
            file: file.to_string(),
            command,
            front,
            body: rest[end + 5..].to_string(),
        })
    }

    pub fn get(&self, key: &str) -> Option<&Yaml> {
        self.front.get(key)
    }

    pub fn str(&self, key: &str) -> Result<&str, String> {
        self.get(key)
            .and_then(Yaml::as_str)
            .ok_or_else(|| format!("{}: front matter has no string `{key}`", self.file))
    }

    pub fn int(&self, key: &str) -> Result<i64, String> {
        match self.get(key) {
            Some(Yaml::Int(n)) => Ok(*n),
            _ => Err(format!(
                "{}: front matter has no integer `{key}`",
                self.file
            )),
        }
    }

    pub fn strings(&self, key: &str) -> Result<Vec<String>, String> {
        match self.get(key) {
            Some(Yaml::List(items)) => items
                .iter()
                .map(|i| i.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| format!("{}: `{key}` is not a list of strings", self.file)),
            _ => Err(format!("{}: front matter has no list `{key}`", self.file)),
        }
    }
}

/// Every `*.md` in `dir`, by name.
pub fn read_pages(dir: &Path) -> Result<Vec<Page>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            Page::parse(&p.display().to_string(), &text)
        })
        .collect()
}

/// Parses the YAML subset described at the top of this file.
pub fn parse(text: &str) -> Result<Yaml, String> {
    let lines: Vec<(usize, String)> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|l| {
            let content = l.trim_start();
            (l.len() - content.len(), content.trim_end().to_string())
        })
        .collect();
    let mut at = 0;
    let doc = block(&lines, &mut at, 0)?;
    match lines.get(at) {
        None => Ok(doc),
        Some((_, l)) => Err(format!("unexpected indentation at `{l}`")),
    }
}

/// The map or list whose lines are indented by exactly `indent`, from `lines[*at]` on.
fn block(lines: &[(usize, String)], at: &mut usize, indent: usize) -> Result<Yaml, String> {
    let is_item = |l: &str| l == "-" || l.starts_with("- ");
    if lines.get(*at).is_some_and(|(_, l)| is_item(l)) {
        let mut items = Vec::new();
        while let Some((n, l)) = lines.get(*at) {
            if *n != indent || !is_item(l) {
                break;
            }
            // `- key: value` opens a map two columns in: read it as if the dash were a space.
            let mut shifted = lines.to_vec();
            shifted[*at] = (indent + 2, l[1..].trim_start().to_string());
            items.push(block(&shifted, at, indent + 2)?);
        }
        return Ok(Yaml::List(items));
    }
    let mut map = Vec::new();
    while let Some((n, l)) = lines.get(*at) {
        if *n < indent {
            break;
        }
        if *n > indent {
            return Err(format!("unexpected indentation at `{l}`"));
        }
        let (key, rest) = l
            .split_once(':')
            .ok_or_else(|| format!("`{l}` is not `key: value`"))?;
        let key = key.trim().to_string();
        let rest = rest.trim();
        *at += 1;
        let value = if rest.is_empty() {
            match lines.get(*at) {
                // a block list may sit at the key's own indentation, as `- ` items
                Some((m, next)) if *m > indent || (*m == indent && is_item(next)) => {
                    let m = *m;
                    block(lines, at, m)?
                }
                _ => Yaml::Str(String::new()),
            }
        } else {
            scalar(rest)?
        };
        if map.iter().any(|(k, _)| *k == key) {
            return Err(format!("`{key}` twice"));
        }
        map.push((key, value));
    }
    Ok(Yaml::Map(map))
}

fn scalar(s: &str) -> Result<Yaml, String> {
    if let Some(inner) = s.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or_else(|| format!("`{s}`: unclosed list"))?;
        let mut items = Vec::new();
        let mut rest = inner.trim();
        while !rest.is_empty() {
            let (item, after) = if rest.starts_with('"') {
                let (q, after) = quoted(rest)?;
                (Yaml::Str(q), after)
            } else {
                let end = rest.find(',').unwrap_or(rest.len());
                (scalar(rest[..end].trim())?, &rest[end..])
            };
            items.push(item);
            rest = after.trim_start();
            rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
        }
        return Ok(Yaml::List(items));
    }
    if s.starts_with('"') {
        let (q, after) = quoted(s)?;
        if !after.trim().is_empty() {
            return Err(format!("`{s}`: text after the closing quote"));
        }
        return Ok(Yaml::Str(q));
    }
    Ok(match s {
        "true" => Yaml::Bool(true),
        "false" => Yaml::Bool(false),
        _ => match s.parse::<i64>() {
            Ok(n) => Yaml::Int(n),
            Err(_) => Yaml::Str(s.to_string()),
        },
    })
}

/// A double-quoted string at the start of `s` (escapes `\"` and `\\`), and what follows it.
fn quoted(s: &str) -> Result<(String, &str), String> {
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &s[i + 1..])),
            '\\' => match chars.next() {
                Some((_, e @ ('"' | '\\'))) => out.push(e),
                other => return Err(format!("`{s}`: unknown escape {other:?}")),
            },
            c => out.push(c),
        }
    }
    Err(format!("`{s}`: unclosed quote"))
}
