//! Throughput of candle-transformers' stock `BertModel` on the same work as
//! `stance bench` (CoNLL sentences, length-sorted batches), to compare
//! `stance`'s own encoder against it in one run on one machine.
//!
//! Run: `RAYON_NUM_THREADS=1 cargo run --release --example stock_bert -- models/base ../shared/data/conll2003/dev.txt 2000 32`

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(args.get(1).map(String::as_str).unwrap_or("models/base"));
    let data = std::path::PathBuf::from(
        args.get(2)
            .map(String::as_str)
            .unwrap_or("../shared/data/conll2003/dev.txt"),
    );
    let n: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(2000);
    let batch: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(32);
    let config: Config = serde_json::from_str(&std::fs::read_to_string(dir.join("config.json"))?)?;
    let mut tok =
        tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).map_err(anyhow::Error::msg)?;
    tok.with_padding(None);
    tok.with_truncation(None).map_err(anyhow::Error::msg)?;
    // SAFETY: read-only memory map of the weights.
    let vb = unsafe {
        VarBuilder::from_mmaped_safetensors(
            &[dir.join("model.safetensors")],
            DType::F32,
            &Device::Cpu,
        )?
    };
    let model = BertModel::load(vb, &config)?;
    let docs = stance::conll::read(&data)?;
    let mut seqs: Vec<Vec<u32>> = docs
        .iter()
        .flat_map(|d| &d.sentences)
        .take(n)
        .map(|s| {
            tok.encode(s.words.join(" "), true)
                .map(|e| e.get_ids().to_vec())
                .map_err(anyhow::Error::msg)
        })
        .collect::<anyhow::Result<_>>()?;
    seqs.sort_by_key(|s| s.len());
    let pieces: usize = seqs.iter().map(|s| s.len() - 2).sum();
    let start = std::time::Instant::now();
    for chunk in seqs.chunks(batch) {
        let len = chunk.iter().map(|s| s.len()).max().unwrap_or(0);
        let mut ids = Vec::new();
        let mut mask = Vec::new();
        for s in chunk {
            ids.extend_from_slice(s);
            ids.extend(std::iter::repeat_n(0u32, len - s.len()));
            mask.extend(std::iter::repeat_n(1u32, s.len()));
            mask.extend(std::iter::repeat_n(0u32, len - s.len()));
        }
        let ids = Tensor::from_vec(ids, (chunk.len(), len), &Device::Cpu)?;
        let mask = Tensor::from_vec(mask, (chunk.len(), len), &Device::Cpu)?;
        let types = ids.zeros_like()?;
        let out = model.forward(&ids, &types, Some(&mask))?;
        std::hint::black_box(out.sum_all()?.to_scalar::<f32>()?);
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "stock candle BertModel: {} sentences, {pieces} word pieces, batch {batch}: {:.0} word pieces/s ({secs:.2} s)",
        seqs.len(),
        pieces as f64 / secs
    );
    Ok(())
}
