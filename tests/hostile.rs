//! Bounds that keep work linear on hostile text (issue 12). Speed itself is measured in
//! docs/robustness.md, not here: these tests check the structure that makes it linear.

use stance::doc::Doc;
use stance::segment::{segment, MAX_SENTENCE_BYTES};
use stance::Pipeline;

/// Letters and punctuation without a space, from a fixed linear congruential sequence.
fn gibberish(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.,;:!?'\"-()";
    let mut x: u64 = 20261206;
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ALPHABET[(x >> 33) as usize % ALPHABET.len()] as char
        })
        .collect()
}

#[test]
fn runs_without_spaces_are_cut_into_bounded_sentences() {
    let text = gibberish(200_000);
    let sentences = segment(&text);
    assert!(sentences.len() >= 200_000 / MAX_SENTENCE_BYTES);
    assert!(sentences.iter().all(|s| s.span.len() <= MAX_SENTENCE_BYTES));
}

#[test]
fn noise_is_not_prose_so_no_model_reads_it_and_the_rules_find_no_names() {
    let noise = gibberish(50_000);
    let doc = Doc::new(noise.as_str());
    assert!(doc.prose_runs().is_empty(), "noise would be encoded");
    let out = Pipeline::rules().analyze("g", &noise).unwrap();
    assert!(
        out.entities.is_empty(),
        "{:?}",
        &out.entities[..out.entities.len().min(5)]
    );

    // News around the noise is still read, in two runs either side of it.
    let text = format!(
        "Kerry warned Moscow on Monday.\n\n{noise}\n\nAyrault accused Damascus of war crimes."
    );
    let doc = Doc::new(text.as_str());
    let runs = doc.prose_runs();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(runs[0].text(&text).starts_with("Kerry") && runs[1].text(&text).starts_with("Ayrault"));
    let names: Vec<String> = Pipeline::rules()
        .analyze("g", &text)
        .unwrap()
        .entities
        .into_iter()
        .map(|e| e.text)
        .collect();
    assert_eq!(names, ["Kerry", "Moscow", "Ayrault", "Damascus"]);
}
