//! Benchmark (not a test): sign-in verifications per second at the configured bcrypt cost,
//! next to the limit the machine allows (hashing threads ÷ the time of one hash).

use domain::accounts::password::{default_concurrency, PasswordHasher};
use std::time::Instant;

#[tokio::main]
async fn main() {
    let cost: u32 = std::env::args()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(12);
    let threads = default_concurrency();
    let hasher = PasswordHasher::new(b"benchmark pepper", cost, threads);
    let stored = hasher
        .hash("plum tractor seventeen orbit")
        .await
        .expect("hash");

    let started = Instant::now();
    for _ in 0..5 {
        hasher
            .verify("plum tractor seventeen orbit", &stored)
            .await
            .expect("verify");
    }
    let one = started.elapsed().as_secs_f64() / 5.0;

    let total = 8 * threads.max(1);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..total {
        let (hasher, stored) = (hasher.clone(), stored.clone());
        tasks.push(tokio::spawn(async move {
            hasher.verify("plum tractor seventeen orbit", &stored).await
        }));
    }
    for t in tasks {
        t.await.expect("task").expect("verify");
    }
    let measured = total as f64 / started.elapsed().as_secs_f64();
    println!(
        "bcrypt cost {cost}: one verification {:.0} ms",
        one * 1000.0
    );
    println!("hashing threads (cores - 1): {threads}");
    println!(
        "limit: {threads} / {:.3} s = {:.1} sign-ins/s",
        one,
        threads as f64 / one
    );
    println!("measured ({total} concurrent sign-ins): {measured:.1} sign-ins/s");
}
