//! How model work is spread over CPU cores.
//!
//! candle multi-threads its matrix products but runs element-wise ops on one
//! core, so on a small encoder much of a forward pass is single-threaded.
//! Running one single-threaded worker per core, each on its own batches, keeps
//! every core busy; `stance bench` measures both ways.

/// The number of cores this process may use.
pub fn available() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Parallelism {
    /// One single-threaded worker per thread, each on its own batches.
    #[default]
    Workers,
    /// One worker; candle splits each matrix product over the threads.
    Intra,
}

impl Parallelism {
    /// The name users write (`--parallelism workers|intra`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Parallelism::Workers => "workers",
            Parallelism::Intra => "intra",
        }
    }
}

/// The environment variable candle reads for the threads of each matrix product (on
/// every product; rayon reads it too).
pub const PRODUCT_THREADS_VAR: &str = "RAYON_NUM_THREADS";

/// Threads each matrix product should use: one per worker for `Workers` (the
/// workers are the parallelism), all of them for `Intra`.
///
/// The library never sets process environment variables (doing so while other
/// threads run is unsound); a program sets [`PRODUCT_THREADS_VAR`] to this at
/// start-up, before any thread exists, as the `stance` binary does. Unset, candle
/// splits each product over every core, which is right for `Intra` and costs
/// `Workers` a little scheduling.
pub fn product_threads(threads: usize, parallelism: Parallelism) -> usize {
    match parallelism {
        Parallelism::Workers => 1,
        Parallelism::Intra => threads.max(1),
    }
}

thread_local! {
    /// True on a worker thread while it runs items of [`map_workers`].
    static IN_WORKER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The first `n` of the process's one-thread worker pools, made on first use and kept,
/// so that a worker's thread lives on with its allocator's pages. A fresh thread and
/// pool per call (each stage of every document) cost about 3% of `classify` on news.
fn worker_pools(n: usize) -> Vec<std::sync::Arc<rayon::ThreadPool>> {
    static POOLS: std::sync::Mutex<Vec<std::sync::Arc<rayon::ThreadPool>>> =
        std::sync::Mutex::new(Vec::new());
    let mut pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
    while pools.len() < n {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .thread_name(|_| "stance-worker".into())
            .build()
            .expect("a one-thread pool");
        pools.push(std::sync::Arc::new(pool));
    }
    pools[..n].to_vec()
}

/// Applies `f` to every item on `workers` threads, each inside its own one-thread
/// rayon pool so that the workers never wait for each other. A worker takes the next
/// item not yet taken, so one slow item does not leave the others idle; what an item
/// gives does not depend on which worker ran it. Results come back in item order; the
/// first error wins.
pub fn map_workers<I, T, E, F>(workers: usize, items: &[I], f: F) -> Result<Vec<T>, E>
where
    I: Sync,
    T: Send,
    E: Send,
    F: Fn(&I) -> Result<T, E> + Sync,
{
    let workers = workers.clamp(1, items.len().max(1));
    if workers == 1 {
        return items.iter().map(&f).collect();
    }
    if IN_WORKER.get() {
        // Already on a worker (a nested call): its pools are busy with this very call.
        return items.iter().map(&f).collect();
    }
    let f = &f;
    let next = &std::sync::atomic::AtomicUsize::new(0);
    let pools = worker_pools(workers);
    let parts: Vec<Result<Vec<(usize, T)>, E>> = std::thread::scope(|scope| {
        let handles: Vec<_> = pools
            .iter()
            .map(|pool| {
                scope.spawn(move || {
                    pool.install(|| {
                        IN_WORKER.set(true);
                        let mut out = Vec::new();
                        let result = loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(item) = items.get(i) else {
                                break Ok(out);
                            };
                            match f(item) {
                                Ok(t) => out.push((i, t)),
                                Err(e) => break Err(e),
                            }
                        };
                        IN_WORKER.set(false);
                        result
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a model worker panicked"))
            .collect()
    });
    let mut slots: Vec<Option<T>> = (0..items.len()).map(|_| None).collect();
    for part in parts {
        for (i, t) in part? {
            slots[i] = Some(t);
        }
    }
    Ok(slots
        .into_iter()
        .map(|t| t.expect("every item has a result"))
        .collect())
}

/// Most padded tokens in one batch. Attention memory grows with batch × length², so a
/// batch of 32 full windows of a long document took over 600 MB per worker; capping
/// tokens keeps short sentences in batches of 32 and long windows in smaller ones.
pub const MAX_BATCH_TOKENS: usize = 4096;

/// Largest share of a batch's tokens that may be padding. One document's sentences
/// range from a few word pieces to over a hundred: in one batch, most of its tokens
/// were padding (measured: the stance pass took twice as long at batch 32 as at 1).
pub const MAX_PADDING_SHARE: f64 = 0.1;

/// Runs `f` over batches of the items `0..lengths.len()` on `workers` threads and
/// returns one output per item, in item order. Batches are length-sorted and hold at
/// most `batch` items, [`MAX_BATCH_TOKENS`] padded tokens and
/// [`MAX_PADDING_SHARE`] of padding, fewer items when that would leave a worker
/// idle (a short text's few windows still spread over the cores); the costliest
/// run first, so the last to finish is a small one. `f` gets a batch's item indices
/// and returns one output per index.
pub fn map_batches<T, E, F>(
    lengths: &[usize],
    batch: usize,
    workers: usize,
    f: F,
) -> Result<Vec<T>, E>
where
    T: Send,
    E: Send,
    F: Fn(&[usize]) -> Result<Vec<T>, E> + Sync,
{
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| lengths[i]);
    let per = batch
        .max(1)
        .min(lengths.len().div_ceil(workers.max(1)).max(1));
    let mut batches: Vec<&[usize]> = Vec::new();
    let (mut start, mut real) = (0, 0);
    for (k, &i) in order.iter().enumerate() {
        // Sorted by length: the item just added is the longest, so it sets the padding.
        let size = k - start + 1;
        let padded = size * lengths[i];
        let padding = padded - (real + lengths[i]);
        let too_padded = padding as f64 > MAX_PADDING_SHARE * padded as f64;
        if size > per || (size > 1 && (padded > MAX_BATCH_TOKENS || too_padded)) {
            batches.push(&order[start..k]);
            (start, real) = (k, 0);
        }
        real += lengths[i];
    }
    if start < order.len() {
        batches.push(&order[start..]);
    }
    let cost = |b: &[usize]| b.len() * b.last().map_or(0, |&i| lengths[i]);
    batches.sort_by_key(|b| std::cmp::Reverse(cost(b)));
    let results = map_workers(workers, &batches, |b| f(b))?;
    let mut slots: Vec<Option<T>> = (0..lengths.len()).map(|_| None).collect();
    for (b, outputs) in batches.iter().zip(results) {
        for (&i, t) in b.iter().zip(outputs) {
            slots[i] = Some(t);
        }
    }
    Ok(slots
        .into_iter()
        .map(|t| t.expect("every item has an output"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_keep_item_order_and_report_errors() {
        let items: Vec<u32> = (0..17).collect();
        let out: Vec<u32> = map_workers(3, &items, |x| Ok::<_, String>(x * 2)).unwrap();
        assert_eq!(out, items.iter().map(|x| x * 2).collect::<Vec<_>>());
        let err = map_workers(2, &items, |x| {
            if *x == 5 {
                Err(format!("bad {x}"))
            } else {
                Ok(*x)
            }
        });
        assert_eq!(err.unwrap_err(), "bad 5");
    }

    #[test]
    fn batches_return_outputs_in_item_order() {
        let lengths = [50, 10, 40, 20, 30, 90, 9];
        let seen = std::sync::Mutex::new(Vec::new());
        let out = map_batches(&lengths, 2, 2, |b| {
            seen.lock().unwrap().push(b.to_vec());
            Ok::<_, String>(b.iter().map(|&i| lengths[i] * 10).collect())
        })
        .unwrap();
        assert_eq!(out, lengths.iter().map(|l| l * 10).collect::<Vec<_>>());
        // Length-sorted batches of at most two.
        let mut batches = seen.into_inner().unwrap();
        batches.sort();
        assert!(batches.iter().all(|b| b.len() <= 2));
        assert!(batches.contains(&vec![6, 1]));
    }

    #[test]
    fn long_items_go_in_smaller_batches() {
        let lengths = [10, 10, 10, 10, 2000, 2000, 2000];
        let seen = std::sync::Mutex::new(Vec::new());
        map_batches(&lengths, 32, 1, |b| {
            seen.lock().unwrap().push(b.to_vec());
            Ok::<_, String>(b.to_vec())
        })
        .unwrap();
        let mut batches = seen.into_inner().unwrap();
        batches.sort();
        assert_eq!(batches, vec![vec![0, 1, 2, 3], vec![4, 5], vec![6]]);
        assert!(batches.iter().all(|b| b.len() == 1
            || b.iter().map(|&i| lengths[i]).max().unwrap() * b.len() <= MAX_BATCH_TOKENS));
    }

    #[test]
    fn short_and_long_items_are_not_padded_together_and_the_costliest_go_first() {
        let lengths = [100, 10, 11, 101, 12];
        let seen = std::sync::Mutex::new(Vec::new());
        map_batches(&lengths, 32, 1, |b| {
            seen.lock().unwrap().push(b.to_vec());
            Ok::<_, String>(b.to_vec())
        })
        .unwrap();
        let batches = seen.into_inner().unwrap();
        assert_eq!(batches, vec![vec![0, 3], vec![1, 2, 4]]);
        for b in &batches {
            let longest = b.iter().map(|&i| lengths[i]).max().unwrap();
            let real: usize = b.iter().map(|&i| lengths[i]).sum();
            let padded = longest * b.len();
            assert!((padded - real) as f64 <= MAX_PADDING_SHARE * padded as f64);
        }
    }

    #[test]
    fn a_nested_call_runs_on_its_own_worker() {
        // Without the guard the inner call would wait for the pool its caller holds.
        let outer: Vec<u32> = (0..4).collect();
        let out = map_workers(2, &outer, |&x| {
            let inner = map_workers(2, &[x, x + 1], |&y| Ok::<_, String>(y * 2))?;
            Ok::<_, String>(inner.iter().sum::<u32>())
        })
        .unwrap();
        assert_eq!(out, vec![2, 6, 10, 14]);
    }

    #[test]
    fn a_slow_item_does_not_hold_the_others_back() {
        // Worker A takes the slow item 0; B must take every other item meanwhile.
        let items: Vec<u64> = vec![300, 1, 1, 1, 1, 1];
        let ran_by = std::sync::Mutex::new(Vec::new());
        map_workers(2, &items, |ms| {
            std::thread::sleep(std::time::Duration::from_millis(*ms));
            ran_by
                .lock()
                .unwrap()
                .push((*ms, std::thread::current().id()));
            Ok::<_, String>(())
        })
        .unwrap();
        let ran_by = ran_by.into_inner().unwrap();
        let slow = ran_by.iter().find(|r| r.0 == 300).unwrap().1;
        assert!(ran_by.iter().filter(|r| r.0 == 1).all(|r| r.1 != slow));
    }
}
