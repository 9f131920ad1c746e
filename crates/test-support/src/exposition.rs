//! Reading a Prometheus text exposition as `make demo`, `make bench` and the endpoint
//! tests see it from outside: its samples, the names its `# TYPE` lines declare, a
//! histogram's buckets (per bucket, from the cumulative `_bucket` series) drawn as a
//! text bar chart; and fetching it from a manager whose bound addresses are recorded
//! in a file. A small reader of our own: the point is to check what a scraper gets.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

/// One sample line: `name{labels} value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Every sample line of `text` (comments and blank lines skipped); a line that does not
/// parse is an error naming it, so a format change fails loudly.
pub fn samples(text: &str) -> Result<Vec<Sample>, String> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| parse_line(l).ok_or_else(|| format!("not a sample line: {l:?}")))
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_string();
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(inner)?;
        labels = parsed;
        rest = after;
    }
    // A timestamp may follow the value; the value is the first word.
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// `k="v",k2="v2"}` (values may hold `{`, `}`, `,` and escapes) -> pairs and the text
/// after the closing brace.
fn parse_labels(mut s: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start_matches(',');
        if let Some(after) = s.strip_prefix('}') {
            return Some((labels, after));
        }
        let (key, after) = s.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        labels.push((key.to_string(), value));
        s = &after[end + 1..];
    }
}

/// The names the `# TYPE` lines declare (a counter's without `_total`).
pub fn type_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect()
}

/// The sum of every series of `name`, whatever its labels (0 when there is none).
pub fn total(samples: &[Sample], name: &str) -> f64 {
    let sum: f64 = samples
        .iter()
        .filter(|s| s.name == name)
        .map(|s| s.value)
        .sum();
    // An empty float sum is -0.0, which prints as "-0".
    sum + 0.0
}

/// The value of `name` with exactly `labels`.
pub fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && s.labels.len() == labels.len()
                && labels.iter().all(|(k, v)| s.label(k) == Some(v))
        })
        .map(|s| s.value)
}

/// Histogram `name`'s buckets (its `_bucket` series, by upper bound), each with the
/// observations that fell in it alone: the exposition's counts are cumulative.
pub fn buckets(samples: &[Sample], name: &str) -> Result<Vec<(f64, u64)>, String> {
    let series = format!("{name}_bucket");
    let mut cumulative: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| s.name == series)
        .map(|s| {
            let le = s.label("le").ok_or(format!("{series} without le"))?;
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().map_err(|_| format!("{series}: le={le}"))?
            };
            Ok((bound, s.value))
        })
        .collect::<Result<_, String>>()?;
    if cumulative.is_empty() {
        return Err(format!("no {series} series"));
    }
    cumulative.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut below = 0.0;
    let mut out = Vec::new();
    for (bound, count) in cumulative {
        if count < below {
            return Err(format!("{series}: le={bound} counts {count} < {below}"));
        }
        out.push((bound, (count - below) as u64));
        below = count;
    }
    Ok(out)
}

/// One line per bucket, `<= 1s  ####### 7`, the last (+Inf) as `> <last bound>s`: a
/// mark per observation, scaled down when the fullest bucket holds more than `width`
/// (any non-empty bucket keeps one mark).
pub fn bar_chart(buckets: &[(f64, u64)], width: usize) -> String {
    let fullest = buckets.iter().map(|b| b.1).max().unwrap_or(0) as usize;
    // The count a full-width bar stands for.
    let scale = fullest.max(width).max(1);
    let finite: Vec<f64> = buckets
        .iter()
        .map(|b| b.0)
        .filter(|b| b.is_finite())
        .collect();
    let labels: Vec<String> = buckets
        .iter()
        .map(|(bound, _)| match bound.is_finite() {
            true => format!("<= {bound}s"),
            false => format!("> {}s", finite.last().copied().unwrap_or(0.0)),
        })
        .collect();
    let pad = labels.iter().map(String::len).max().unwrap_or(0);
    let mut out = String::new();
    for (label, (_, n)) in labels.iter().zip(buckets) {
        let marks = match *n {
            0 => 0,
            n => (n as usize * width).div_ceil(scale).max(1),
        };
        out.push_str(&format!("{label:<pad$}  {} {n}\n", "#".repeat(marks)));
    }
    out
}

/// The number of sample lines (series) in `text`.
pub fn series_count(text: &str) -> usize {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count()
}

/// The first address a manager recorded in `record` (one per line, loopback first),
/// waiting up to `timeout` for the file: the manager writes it as it starts.
pub fn recorded_endpoint(record: &Path, timeout: Duration) -> Result<String, String> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let text = std::fs::read_to_string(record).unwrap_or_default();
        if let Some(first) = text.lines().find(|l| !l.trim().is_empty()) {
            return Ok(first.trim().to_string());
        }
        if std::time::Instant::now() > deadline {
            return Err(format!("{}: no address recorded", record.display()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `GET http://<addr>/metrics`, the body as text.
pub fn scrape(addr: &str) -> Result<String, String> {
    ureq::get(&format!("http://{addr}/metrics"))
        .timeout(Duration::from_secs(10))
        .call()
        .map_err(|e| format!("scrape of {addr}: {e}"))?
        .into_string()
        .map_err(|e| format!("scrape of {addr}: {e}"))
}

#[cfg(test)]
#[path = "exposition_tests.rs"]
mod tests;
