//! The HTML page in a real browser: headless Chromium renders the page of a
//! sample article (plus an article of hostile markup), takes a screenshot, and
//! dumps the DOM as it stands after loading, with JavaScript on. The DOM must
//! hold every entity with its type's class, the actor summary's counts, and the
//! hostile `<script>` and `onerror` as inert text.
//!
//! `.ci/run` installs Debian's `chromium`; where no browser can be had the test
//! is ignored with the reason (build.rs sets `no_chromium`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const HOSTILE: &str = "Paris accused Rome of fraud. <script>document.title='pwned'; \
document.body.setAttribute('data-pwned', '1')</script>\n\n\
Berlin proposed talks <img src=x onerror=\"document.body.setAttribute('data-pwned', '2')\"> \
with Warsaw.";

/// The browser, found as build.rs finds it.
fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("CHROME") {
        return p.into();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .flat_map(|d| ["chromium", "chromium-browser", "google-chrome"].map(|n| d.join(n)))
        .find(|p| p.is_file())
        .expect("build.rs found a browser, but it is gone (touch build.rs)")
}

/// Runs headless Chromium on `page` with `args`, in a fresh profile; returns stdout.
fn headless(page: &Path, args: &[String], profile: &Path) -> String {
    let mut child = StdCommand::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).unwrap();
        s
    });
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium failed: {status:?}");
            break;
        }
        if started.elapsed() > Duration::from_secs(120) {
            child.kill().unwrap();
            panic!("chromium did not finish in 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    reader.join().unwrap()
}

/// The text of the DOM fragment `html`: tags dropped, entities decoded.
fn text_of(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The entity's text in the DOM: from its mark to its type label, without the
/// badges of statements marked inside it.
fn entity_text(dom: &str, index: usize) -> Option<String> {
    let open = dom.find(&format!("-e{index}\""))?;
    let body = open + dom[open..].find('>')? + 1;
    let end = body + dom[body..].find("<span class=\"ent-label\">")?;
    let mut inner = dom[body..end].to_string();
    while let Some(b) = inner.find("<span class=\"badge") {
        let close = b + inner[b..].find("</span>")? + "</span>".len();
        inner.replace_range(b..close, "");
    }
    Some(text_of(&inner))
}

#[test]
#[cfg_attr(
    no_chromium,
    ignore = "no Chromium (apt-get install chromium, or set CHROME; then touch build.rs)"
)]
fn the_page_renders_in_chromium_with_every_entity_and_inert_hostile_markup() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = dir.path().join("hostile.txt");
    std::fs::write(&hostile, HOSTILE).unwrap();
    let sample = repo("data/samples/steel_duties.txt");
    let page = dir.path().join("page.html");
    let run = |format: &str, out: Option<&Path>| {
        let mut cmd = stance();
        cmd.args(["classify", "--backend", "rules", "--format", format])
            .arg(&sample)
            .arg(&hostile);
        if let Some(o) = out {
            cmd.arg("-o").arg(o);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    run("html", Some(&page));
    let docs = json_of(&run("json", None));

    let shot = dir.path().join("page.png");
    headless(
        &page,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,2400".into(),
        ],
        &dir.path().join("profile-1"),
    );
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
    // Kept for people to look at (target/ is not committed).
    let keep = repo("target/browser-test.png");
    let _ = std::fs::write(&keep, &png);

    let dom = headless(
        &page,
        &["--dump-dom".to_string()],
        &dir.path().join("profile-2"),
    );
    assert!(dom.contains("<section class=\"doc\" id=\"doc-2\""), "{dom}");
    // Inert: the scripts in the article did not run and are not elements.
    assert!(
        dom.contains("<body>"),
        "a hostile script set an attribute on <body>"
    );
    assert!(!dom.contains("<title>pwned"), "a hostile script ran");
    assert!(
        !dom.contains("<script") && !dom.contains("<img"),
        "markup from the input"
    );
    assert!(
        dom.contains("&lt;script&gt;document.title='pwned';"),
        "shown as text"
    );
    assert!(
        dom.contains("onerror=\"document.body.setAttribute"),
        "shown as text"
    );

    // Every entity, with its type's class and its text, in its document's section.
    let sections: Vec<&str> = dom.split("<section class=\"doc\"").skip(1).collect();
    assert_eq!(sections.len(), 2);
    for (n, (doc, section)) in docs.as_array().unwrap().iter().zip(&sections).enumerate() {
        for (i, e) in doc["entities"].as_array().unwrap().iter().enumerate() {
            let label = e["label"].as_str().unwrap();
            let open = format!(
                "<mark class=\"entity ent-{label}\" id=\"d{}-e{i}\" data-label=\"{label}\" data-start=\"{}\" data-end=\"{}\"",
                n + 1,
                e["start"],
                e["end"]
            );
            assert!(section.contains(&open), "entity {i} {e} missing");
            assert_eq!(
                entity_text(section, i).as_deref(),
                e["text"].as_str(),
                "entity {i}"
            );
        }
        // The summary's counts per actor, made and received.
        for a in doc["actors"].as_array().unwrap() {
            let row_start = section
                .find(&format!("<tr data-actor=\"{}\"", a["id"].as_str().unwrap()))
                .expect("a summary row per actor");
            let row = &section[row_start..row_start + section[row_start..].find("</tr>").unwrap()];
            let mentions = format!(
                "<td class=\"n mentions\">{}</td>",
                a["mentions"].as_array().unwrap().len()
            );
            assert!(row.contains(&mentions), "{row}");
            for label in ["threat", "accusation", "proposal"] {
                let count = |made: bool| {
                    doc["statements"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|s| s["label"] == label)
                        .filter(|s| {
                            let side: &Value = if made { &s["actor"] } else { &s["target"] };
                            side["actor_id"] == a["id"]
                        })
                        .count()
                };
                for (made, side) in [(true, "made"), (false, "received")] {
                    let cell = format!("<td class=\"n {side}-{label}");
                    let at = row.find(&cell).unwrap_or_else(|| panic!("{cell} in {row}"));
                    let value = &row[at..];
                    let value = &value[value.find('>').unwrap() + 1..value.find("</td>").unwrap()];
                    assert_eq!(value, count(made).to_string(), "{side} {label}: {row}");
                }
            }
        }
    }
}
