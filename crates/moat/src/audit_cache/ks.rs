//! The one-sided two-sample Kolmogorov–Smirnov test: is the first sample stochastically smaller
//! than the second (here: do "hit" trials get their first token sooner than "miss" trials)?
//!
//! The statistic is D⁺ = maxₓ (F₁(x) − F₂(x)) over the two empirical CDFs. Its p-value is exact for
//! moderate sample sizes: under the null hypothesis every interleaving of the pooled sample is equally
//! likely, so P(D⁺ ≥ d) is the probability that a random lattice path from (0,0) to (n,m) touches
//! the line i·m − j·n = d·n·m, computed by pushing probability mass through the grid (no factorials,
//! so no overflow, and tiny p-values keep their precision because the crossing mass is summed
//! directly). For large samples it uses Hodges' (1957) approximation with its small-sample correction,
//! exp(−2z² − 2z(m+2n)/(3√(mn(m+n)))), z = d√(mn/(m+n)), m ≥ n — the same as SciPy's `ks_2samp`
//! with `alternative="greater"`, whose outputs are this module's test vectors.

/// Which p-value computation was used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Exact,
    Asymptotic,
}

/// The test's outcome.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KsResult {
    /// D⁺ in [0, 1].
    pub statistic: f64,
    pub p_value: f64,
    pub method: Method,
}

/// Largest n·m for which the exact p-value is computed (it costs O(n·m) time, O(m) memory).
pub const EXACT_LIMIT: u64 = 25_000_000;

/// Tests H₁: `first` is stochastically smaller than `second` (its CDF lies above somewhere).
/// `None` when either sample is empty or holds a NaN.
pub fn ks_greater(first: &[f64], second: &[f64]) -> Option<KsResult> {
    let (n, m) = (first.len() as u64, second.len() as u64);
    if n == 0 || m == 0 || first.iter().chain(second).any(|v| v.is_nan()) {
        return None;
    }
    let numerator = statistic_numerator(first, second);
    let statistic = numerator as f64 / (n * m) as f64;
    let (p_value, method) = if n * m <= EXACT_LIMIT {
        (exact_p(n, m, numerator), Method::Exact)
    } else {
        (asymptotic_p(n, m, statistic), Method::Asymptotic)
    };
    Some(KsResult {
        statistic,
        p_value: p_value.clamp(0.0, 1.0),
        method,
    })
}

/// max(0, maxₓ (i(x)·m − j(x)·n)), where i(x) and j(x) count the samples ≤ x. Integer, so the exact
/// p-value compares lattice points without rounding. Tied values are stepped over together.
fn statistic_numerator(first: &[f64], second: &[f64]) -> i64 {
    let mut a = first.to_vec();
    let mut b = second.to_vec();
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (n, m) = (a.len() as i64, b.len() as i64);
    let (mut i, mut j) = (0usize, 0usize);
    let mut best = 0i64;
    while i < a.len() || j < b.len() {
        let next = match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) => x.min(*y),
            (Some(x), None) => *x,
            (None, Some(y)) => *y,
            (None, None) => break,
        };
        while a.get(i).is_some_and(|v| *v <= next) {
            i += 1;
        }
        while b.get(j).is_some_and(|v| *v <= next) {
            j += 1;
        }
        best = best.max(i as i64 * m - j as i64 * n);
    }
    best
}

/// P(D⁺·n·m ≥ `numerator`) when all interleavings are equally likely.
fn exact_p(n: u64, m: u64, numerator: i64) -> f64 {
    if numerator <= 0 {
        return 1.0;
    }
    let (ni, mi) = (n as i64, m as i64);
    let width = m as usize + 1;
    // row[j]: probability of standing at (i, j) without having touched the line yet.
    let mut row = vec![0.0f64; width];
    row[0] = 1.0;
    let mut crossed = 0.0f64;
    for i in 0..=ni {
        let mut next = vec![0.0f64; width];
        for j in 0..=mi {
            let ju = j as usize;
            let mut here = row[ju];
            if here == 0.0 {
                continue;
            }
            if i * mi - j * ni >= numerator {
                crossed += here;
                here = 0.0;
                row[ju] = 0.0;
            }
            if here == 0.0 {
                continue;
            }
            let (r, s) = ((ni - i) as f64, (mi - j) as f64);
            let total = r + s;
            if total == 0.0 {
                continue;
            }
            if r > 0.0 {
                next[ju] += here * r / total;
            }
            if s > 0.0 {
                row[ju + 1] += here * s / total;
            }
        }
        row = next;
    }
    crossed
}

/// Hodges' approximation with the small-sample correction (m is the larger size).
fn asymptotic_p(n: u64, m: u64, d: f64) -> f64 {
    let (m, n) = if m >= n {
        (m as f64, n as f64)
    } else {
        (n as f64, m as f64)
    };
    let en = m * n / (m + n);
    let z = en.sqrt() * d;
    let expt = -2.0 * z * z - 2.0 * z * (m + 2.0 * n) / (m * n * (m + n)).sqrt() / 3.0;
    expt.exp().clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests;
