//! What the benches share: the workload.

/// The team's sample articles (`data/samples/*.txt`) as (path, text), in path order.
pub fn samples() -> Vec<(String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/data/samples");
    let mut docs: Vec<(String, String)> = std::fs::read_dir(dir)
        .expect("data/samples exists")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .map(|p| {
            (
                p.display().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    docs.sort();
    docs
}
