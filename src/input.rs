//! Reading articles: plain-text files, JSON Lines, or standard input.
//!
//! Records are produced lazily, so a large JSON Lines file streams, and every
//! failure names the file and line it came from.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Result, StanceError};

/// How to read an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum InputFormat {
    /// JSON Lines for `.jsonl` files, plain text otherwise.
    #[default]
    Auto,
    /// The whole input is one article.
    Text,
    /// One JSON object per line: {"id": ..., "text": ...}.
    Jsonl,
}

impl InputFormat {
    /// The name users write (`--input auto|text|jsonl`).
    pub fn as_str(&self) -> &'static str {
        match self {
            InputFormat::Auto => "auto",
            InputFormat::Text => "text",
            InputFormat::Jsonl => "jsonl",
        }
    }
}

/// Where an input comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Stdin,
    File(PathBuf),
}

impl Source {
    pub fn from_arg(arg: &Path) -> Source {
        if arg.as_os_str() == "-" {
            Source::Stdin
        } else {
            Source::File(arg.to_path_buf())
        }
    }

    /// The name used in messages and as the default document id.
    pub fn name(&self) -> PathBuf {
        match self {
            Source::Stdin => PathBuf::from("<stdin>"),
            Source::File(p) => p.clone(),
        }
    }

    /// The format this source is read in: `requested`, or with `auto` JSON Lines
    /// for a `.jsonl` file and one text otherwise.
    pub fn format(&self, requested: InputFormat) -> InputFormat {
        match (requested, self) {
            (InputFormat::Auto, Source::File(p))
                if p.extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("jsonl")) =>
            {
                InputFormat::Jsonl
            }
            (InputFormat::Auto, _) => InputFormat::Text,
            (f, _) => f,
        }
    }
}

/// The sources named on the command line, each directory replaced by the `.txt`
/// and `.jsonl` files below it, in path order so that runs are repeatable
/// (hidden entries and symbolic links to directories are passed over). A
/// directory with no such file is an error: nothing to read is most likely a
/// wrong path.
pub fn expand(args: &[PathBuf]) -> Result<Vec<Source>> {
    let mut out = Vec::new();
    for arg in args {
        let source = Source::from_arg(arg);
        match &source {
            Source::File(dir) if dir.is_dir() => {
                let mut files = Vec::new();
                walk(dir, &mut files)?;
                if files.is_empty() {
                    return Err(StanceError::EmptyDirectory { path: dir.clone() });
                }
                files.sort();
                out.extend(files.into_iter().map(Source::File));
            }
            _ => out.push(source),
        }
    }
    Ok(out)
}

/// True for the files a directory contributes: `.txt` and `.jsonl`, any case.
fn is_input_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("txt") || e.eq_ignore_ascii_case("jsonl"))
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| io_err(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_err(dir, e))?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| io_err(&path, e))?;
        if kind.is_dir() {
            walk(&path, files)?;
        } else if is_input_file(&path) && path.is_file() {
            files.push(path);
        }
    }
    Ok(())
}

/// One article to analyse.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: String,
    pub text: String,
    /// Non-fatal problems to report (lossy decoding).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOptions {
    pub format: InputFormat,
    /// Replace invalid UTF-8 with U+FFFD instead of failing.
    pub lossy: bool,
}

fn io_err(path: &Path, source: io::Error) -> StanceError {
    StanceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn open(source: &Source) -> Result<Box<dyn BufRead>> {
    match source {
        Source::Stdin => Ok(Box::new(BufReader::new(io::stdin()))),
        Source::File(p) => {
            if p.is_dir() {
                return Err(StanceError::IsDirectory { path: p.clone() });
            }
            let f = File::open(p).map_err(|e| io_err(p, e))?;
            Ok(Box::new(BufReader::new(f)))
        }
    }
}

/// Decodes bytes as UTF-8; `first_line` is the line number of `bytes[0]` for messages.
fn decode(
    bytes: Vec<u8>,
    path: &Path,
    first_line: usize,
    lossy: bool,
    warnings: &mut Vec<String>,
) -> Result<String> {
    match String::from_utf8(bytes) {
        Ok(s) => Ok(s),
        Err(e) => {
            let offset = e.utf8_error().valid_up_to();
            let bytes = e.into_bytes();
            let line = first_line + bytes[..offset].iter().filter(|&&b| b == b'\n').count();
            if lossy {
                warnings.push(format!(
                    "{}:{line}: invalid UTF-8 replaced with U+FFFD (--lossy)",
                    path.display()
                ));
                Ok(String::from_utf8_lossy(&bytes).into_owned())
            } else {
                Err(StanceError::InvalidUtf8 {
                    path: path.to_path_buf(),
                    line,
                    offset,
                })
            }
        }
    }
}

/// Reads every record of a source. Errors are items, so the caller decides
/// whether to stop or skip; an error opening the source is the only item.
pub fn read(source: &Source, opts: ReadOptions) -> Box<dyn Iterator<Item = Result<Record>>> {
    let name = source.name();
    let reader = match open(source) {
        Ok(r) => r,
        Err(e) => return Box::new(std::iter::once(Err(e))),
    };
    match source.format(opts.format) {
        InputFormat::Jsonl => jsonl_records(reader, name, opts.lossy),
        _ => {
            let mut reader = reader;
            let mut bytes = Vec::new();
            let result = reader
                .read_to_end(&mut bytes)
                .map_err(|e| io_err(&name, e))
                .and_then(|_| {
                    let mut warnings = Vec::new();
                    let text = decode(bytes, &name, 1, opts.lossy, &mut warnings)?;
                    Ok(Record {
                        id: name.display().to_string(),
                        text,
                        warnings,
                    })
                });
            Box::new(std::iter::once(result))
        }
    }
}

/// The records of JSON Lines read from `reader`; `name` is the path said in messages.
pub fn jsonl_records(
    reader: Box<dyn BufRead>,
    name: PathBuf,
    lossy: bool,
) -> Box<dyn Iterator<Item = Result<Record>>> {
    Box::new(JsonLines {
        reader,
        path: name,
        line: 0,
        lossy,
        done: false,
    })
}

struct JsonLines {
    reader: Box<dyn BufRead>,
    path: PathBuf,
    line: usize,
    lossy: bool,
    done: bool,
}

impl JsonLines {
    fn bad(&self, message: impl Into<String>) -> StanceError {
        StanceError::BadRecord {
            path: self.path.clone(),
            line: self.line,
            message: message.into(),
        }
    }

    fn parse(&self, line: &str, warnings: Vec<String>) -> Result<Record> {
        let value: Value =
            serde_json::from_str(line).map_err(|e| self.bad(format!("malformed JSON: {e}")))?;
        let obj = value
            .as_object()
            .ok_or_else(|| self.bad("expected a JSON object like {\"id\": ..., \"text\": ...}"))?;
        let text = match obj.get("text") {
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(self.bad("\"text\" must be a string")),
            None => return Err(self.bad("missing \"text\" field")),
        };
        let id = match obj.get("id") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            None | Some(Value::Null) => format!("{}:{}", self.path.display(), self.line),
            Some(_) => return Err(self.bad("\"id\" must be a string or a number")),
        };
        Ok(Record { id, text, warnings })
    }
}

impl Iterator for JsonLines {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        loop {
            if self.done {
                return None;
            }
            let mut buf = Vec::new();
            match self.reader.read_until(b'\n', &mut buf) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => {
                    self.done = true;
                    return Some(Err(io_err(&self.path, e)));
                }
            }
            self.line += 1;
            let mut warnings = Vec::new();
            let line = match decode(buf, &self.path, self.line, self.lossy, &mut warnings) {
                Ok(l) => l,
                Err(e) => return Some(Err(e)),
            };
            if line.trim().is_empty() {
                continue;
            }
            return Some(self.parse(line.trim_end_matches(['\n', '\r']), warnings));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn temp(content: &[u8], ext: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new().suffix(ext).tempfile().unwrap();
        f.write_all(content).unwrap();
        f
    }

    #[test]
    fn jsonl_errors_name_the_line_and_reading_goes_on() {
        let f = temp(b"{\"id\": \"a\", \"text\": \"x\"}\n\n{oops\n{\"id\": 7, \"text\": \"y\"}\n{\"id\": \"b\"}\n", ".jsonl");
        let items: Vec<_> = read(&Source::File(f.path().into()), ReadOptions::default()).collect();
        assert_eq!(items.len(), 4);
        assert_eq!(items[0].as_ref().unwrap().id, "a");
        let e = items[1].as_ref().unwrap_err().to_string();
        assert!(e.contains(":3: malformed JSON"), "{e}");
        assert_eq!(items[2].as_ref().unwrap().id, "7");
        assert!(items[3]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains(":5: missing \"text\""));
    }

    #[test]
    fn invalid_utf8_names_the_line_unless_lossy() {
        let f = temp(b"first line\nsecond \xff line\n", ".txt");
        let src = Source::File(f.path().into());
        let err = read(&src, ReadOptions::default())
            .next()
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(err.contains(":2: invalid UTF-8"), "{err}");
        let rec = read(
            &src,
            ReadOptions {
                lossy: true,
                ..Default::default()
            },
        )
        .next()
        .unwrap()
        .unwrap();
        assert!(rec.text.contains('\u{FFFD}'));
        assert_eq!(rec.warnings.len(), 1);
    }

    #[test]
    fn directories_and_missing_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let e = read(&Source::File(dir.path().into()), ReadOptions::default())
            .next()
            .unwrap()
            .unwrap_err();
        assert!(e.to_string().contains("is a directory"));
        let e = read(
            &Source::File(dir.path().join("nope.txt")),
            ReadOptions::default(),
        )
        .next()
        .unwrap()
        .unwrap_err();
        assert!(e.to_string().contains("nope.txt"));
    }

    #[test]
    fn directories_expand_to_their_input_files_in_path_order() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("b/deeper")).unwrap();
        std::fs::create_dir_all(d.join(".git")).unwrap();
        for f in [
            "z.txt",
            "a.JSONL",
            "b/deeper/c.txt",
            "b/notes.md",
            ".git/x.txt",
            ".hidden.txt",
        ] {
            std::fs::write(d.join(f), "x").unwrap();
        }
        let got = expand(&[d.to_path_buf(), PathBuf::from("-")]).unwrap();
        let want: Vec<Source> = ["a.JSONL", "b/deeper/c.txt", "z.txt"]
            .iter()
            .map(|f| Source::File(d.join(f)))
            .chain([Source::Stdin])
            .collect();
        assert_eq!(got, want);
        let empty = tempfile::tempdir().unwrap();
        let e = expand(&[empty.path().to_path_buf()]).unwrap_err();
        assert!(e.to_string().contains("no .txt or .jsonl files"), "{e}");
    }

    #[test]
    fn empty_text_is_one_empty_record() {
        let f = temp(b"", ".txt");
        let items: Vec<_> = read(&Source::File(f.path().into()), ReadOptions::default()).collect();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].as_ref().unwrap().text, "");
    }
}
