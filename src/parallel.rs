//! Data parallelism for the pure core, with the standard library only.

/// Maps `items` with `f` on every core (at most 8 threads), in order: the result does not
/// depend on scheduling. Fewer than `min_per_thread` items per thread run on the caller's
/// thread. A panic in a worker is re-raised, never turned into a missing result (a lost spec
/// file would read as a deletion).
pub fn map<'a, T: Sync, R: Send>(
    items: &'a [T],
    min_per_thread: usize,
    f: impl Fn(&'a T) -> R + Sync,
) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8)
        .min(items.len() / min_per_thread.max(1));
    if threads < 2 {
        return items.iter().map(f).collect();
    }
    // Items are handed out in small batches as threads become free: spec files differ in size
    // by a hundred times, and fixed halves left one thread with most of the work.
    const BATCH: usize = 8;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let (f, next) = (&f, &next);
    let parts: Vec<Vec<(usize, R)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(move || {
                    let mut done = Vec::new();
                    loop {
                        let start = next.fetch_add(BATCH, std::sync::atomic::Ordering::Relaxed);
                        if start >= items.len() {
                            return done;
                        }
                        let end = (start + BATCH).min(items.len());
                        done.extend((start..end).map(|i| (i, f(&items[i]))));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    });
    let mut all: Vec<(usize, R)> = parts.into_iter().flatten().collect();
    all.sort_unstable_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {

    #[test]
    fn results_keep_the_order_of_the_items() {
        let items: Vec<u32> = (0..1000).collect();
        assert_eq!(
            super::map(&items, 10, |i| i * 2),
            items.iter().map(|i| i * 2).collect::<Vec<_>>()
        );
        assert_eq!(super::map(&items[..3], 10, |i| i + 1), vec![1, 2, 3]);
    }
}
