//! Summaries of samples: percentiles by the nearest-rank method.

use serde_json::{Value, json};

/// Percentiles of a set of samples (milliseconds or any unit).
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub count: usize,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Summary {
    /// Summarises `samples`; `None` when there are none.
    pub fn of(samples: &[f64]) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            let index = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
            sorted[index.clamp(1, sorted.len()) - 1]
        };
        Some(Summary {
            count: sorted.len(),
            min: sorted[0],
            p50: rank(50.0),
            p90: rank(90.0),
            p99: rank(99.0),
            max: sorted[sorted.len() - 1],
        })
    }

    /// One line: `n=.. min .. p50 .. p90 .. p99 .. max ..` with `unit`.
    pub fn line(&self, unit: &str) -> String {
        format!(
            "n={} min {:.1}{unit} p50 {:.1}{unit} p90 {:.1}{unit} p99 {:.1}{unit} max {:.1}{unit}",
            self.count, self.min, self.p50, self.p90, self.p99, self.max
        )
    }

    /// As JSON, for the machine-readable summary.
    pub fn json(&self) -> Value {
        json!({
            "n": self.count, "min": self.min, "p50": self.p50,
            "p90": self.p90, "p99": self.p99, "max": self.max,
        })
    }
}

/// The summary line of `samples`, or "no samples".
pub fn line(samples: &[f64], unit: &str) -> String {
    Summary::of(samples).map_or_else(|| "no samples".to_owned(), |s| s.line(unit))
}

/// The summary of `samples` as JSON (`null` without samples).
pub fn json(samples: &[f64]) -> Value {
    Summary::of(samples).map_or(Value::Null, |s| s.json())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = Summary::of(&samples).unwrap();
        assert_eq!((s.p50, s.p90, s.p99, s.max), (50.0, 90.0, 99.0, 100.0));
        let one = Summary::of(&[7.0]).unwrap();
        assert_eq!((one.p50, one.p99), (7.0, 7.0));
    }
}
