//! FX hot path on a warm cache, with its parts measured side by side in one run so the figures can
//! be read as ratios: rate lookup alone, the exact conversion alone, a whole quote, a quote stored.
//!
//! `cargo bench --bench fx` (add `-- --measurement-time 3` to shorten).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use qrbridge::fx::{
    CacheConfig, Pair, Pricing, QuotePolicy, QuoteStore, Quoter, RateCache, RateTable, StaticSource,
};
use qrbridge::money::{Amount, Currency, Rounding};
use qrbridge::time::SystemClock;
use rust_decimal::Decimal;

fn currency(code: &str) -> Currency {
    Currency::from_code(code).unwrap_or_else(|e| unreachable!("{e}"))
}

fn bench(c: &mut Criterion) {
    let (eur, thb, jpy) = (currency("EUR"), currency("THB"), currency("JPY"));
    // A table dated now, so the real system clock finds it fresh.
    let mut table = RateTable::new(eur, SystemTime::now(), "bench");
    for (cur, rate) in [
        (thb, Decimal::new(37_545, 3)),
        (jpy, Decimal::new(17_845, 2)),
    ] {
        table
            .insert(cur, rate)
            .unwrap_or_else(|e| unreachable!("{e}"));
    }
    let clock = Arc::new(SystemClock);
    let cache = RateCache::new(
        StaticSource::new(table),
        clock.clone(),
        CacheConfig::daily_feed(),
    );
    let quoter = Quoter::new(cache.clone(), QuotePolicy::default(), clock.clone());
    let store = QuoteStore::new(clock, 1 << 30);
    let pair = Pair::new(thb, jpy);
    let amount = Amount::parse("350.00", thb).unwrap_or_else(|e| unreachable!("{e}"));
    let pricing = Pricing::markup(150);
    // Warm the cache.
    let rate = cache.rate(pair).unwrap_or_else(|e| unreachable!("{e}"));

    let mut group = c.benchmark_group("fx");
    group.bench_function("rate_lookup", |b| b.iter(|| cache.rate(black_box(pair))));
    group.bench_function("convert_exact", |b| {
        b.iter(|| {
            rate.cross
                .convert(black_box(amount), jpy, black_box(150), Rounding::HalfUp)
        })
    });
    group.bench_function("quote_warm_cache", |b| {
        b.iter(|| quoter.quote(black_box(amount), jpy, black_box(pricing)))
    });
    group.bench_function("quote_and_store", |b| {
        b.iter(|| {
            quoter
                .quote(black_box(amount), jpy, black_box(pricing))
                .map(|q| store.insert(q))
        })
    });
    group.bench_function("amount_parse", |b| {
        b.iter(|| Amount::parse(black_box("350.00"), thb))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    targets = bench
}
criterion_main!(benches);
