//! A small parser for the Prometheus text exposition format, so tests can assert metric
//! names, label sets and values exactly.

use std::collections::BTreeMap;

#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

#[derive(Debug, Clone, Default)]
pub struct Metrics {
    pub samples: Vec<Sample>,
    /// `# TYPE` lines: metric family name -> type.
    pub types: BTreeMap<String, String>,
}

fn parse_labels(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = s;
    while let Some(eq) = rest.find('=') {
        let name = rest[..eq].trim().trim_start_matches(',').trim().to_string();
        let after = &rest[eq + 1..];
        assert!(after.starts_with('"'), "label value must be quoted: {s}");
        let mut value = String::new();
        let mut chars = after[1..].char_indices();
        let mut end = 0;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => {}
                },
                '"' => {
                    end = i + 2;
                    break;
                }
                c => value.push(c),
            }
        }
        out.insert(name, value);
        rest = &after[end..];
    }
    out
}

pub fn parse(text: &str) -> Metrics {
    let mut m = Metrics::default();
    for line in text.lines() {
        if let Some(t) = line.strip_prefix("# TYPE ") {
            let mut it = t.split_whitespace();
            if let (Some(n), Some(ty)) = (it.next(), it.next()) {
                m.types.insert(n.to_string(), ty.to_string());
            }
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (head, value) = line.rsplit_once(' ').expect("sample line");
        let (name, labels) = match head.find('{') {
            Some(i) => (
                head[..i].to_string(),
                parse_labels(head[i + 1..].trim_end_matches('}')),
            ),
            None => (head.to_string(), BTreeMap::new()),
        };
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
        };
        m.samples.push(Sample {
            name,
            labels,
            value,
        });
    }
    m
}

impl Metrics {
    /// The value of the one sample named `name` whose labels are exactly `labels`.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples
            .iter()
            .find(|s| s.name == name && s.labels == want)
            .map(|s| s.value)
    }

    /// Like `get`, panicking with the exposition's samples of that name when absent.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or_else(|| {
            let have: Vec<String> = self
                .samples
                .iter()
                .filter(|s| s.name == name)
                .map(|s| format!("{:?} = {}", s.labels, s.value))
                .collect();
            panic!("no sample {name}{labels:?}; samples of that name: {have:#?}")
        })
    }

    /// Every label set of the samples named `name`.
    pub fn label_sets(&self, name: &str) -> Vec<BTreeMap<String, String>> {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .map(|s| s.labels.clone())
            .collect()
    }

    /// Whether a metric family (or a sample of that exact name) exists.
    pub fn has(&self, name: &str) -> bool {
        self.types.contains_key(name) || self.samples.iter().any(|s| s.name == name)
    }
}
