//! The supervisor's own figures, read from its `/metrics` as Prometheus
//! would (HTTP/1.1 with the operator's bearer token): the samples of the
//! few families the bench reports, summed over their labels or kept per
//! `kind`.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use anyhow::Context;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

/// One scrape: family name -> label set (as exposed) -> value.
#[derive(Debug, Default, Clone)]
pub struct Scrape(BTreeMap<String, BTreeMap<String, f64>>);

pub async fn scrape(api: SocketAddr, token: &str) -> anyhow::Result<Scrape> {
    let stream = tokio::net::TcpStream::connect(api).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = hyper::Request::get("/metrics")
        .header(hyper::header::HOST, api.to_string())
        .header(hyper::header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Empty::<Bytes>::new())?;
    let res = sender.send_request(req).await?;
    anyhow::ensure!(res.status().is_success(), "GET /metrics: {}", res.status());
    let body = res.into_body().collect().await?.to_bytes();
    Ok(parse(
        std::str::from_utf8(&body).context("metrics are not UTF-8")?,
    ))
}

/// Parses the text exposition's samples (comments skipped).
pub fn parse(text: &str) -> Scrape {
    let mut out: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, l.trim_end_matches('}')),
            None => (series, ""),
        };
        out.entry(name.to_owned())
            .or_default()
            .insert(labels.to_owned(), value);
    }
    Scrape(out)
}

impl Scrape {
    /// The family's samples summed over every label set.
    pub fn sum(&self, name: &str) -> f64 {
        self.0.get(name).map_or(0.0, |m| m.values().sum())
    }

    /// The family's samples per value of `label`.
    pub fn by(&self, name: &str, label: &str) -> BTreeMap<String, f64> {
        let key = format!("{label}=\"");
        let mut out = BTreeMap::new();
        for (labels, v) in self.0.get(name).into_iter().flatten() {
            if let Some(rest) = labels.split(',').find_map(|l| l.strip_prefix(&key)) {
                *out.entry(rest.trim_end_matches('"').to_owned())
                    .or_default() += v;
            }
        }
        out
    }

    /// A histogram's cumulative buckets: (upper bound, count).
    pub fn buckets(&self, name: &str) -> Vec<(f64, f64)> {
        let mut b: Vec<(f64, f64)> = self
            .by(&format!("{name}_bucket"), "le")
            .into_iter()
            .map(|(le, n)| {
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap_or(f64::NAN)
                };
                (le, n)
            })
            .filter(|(le, _)| !le.is_nan())
            .collect();
        b.sort_by(|x, y| x.0.total_cmp(&y.0));
        b
    }
}

/// The `q` quantile's bucket bound of the samples between two scrapes of
/// cumulative buckets (`None` without samples).
pub fn quantile(before: &[(f64, f64)], after: &[(f64, f64)], q: f64) -> Option<f64> {
    let at = |b: &[(f64, f64)], le: f64| b.iter().find(|x| x.0 == le).map_or(0.0, |x| x.1);
    let delta: Vec<(f64, f64)> = after
        .iter()
        .map(|&(le, n)| (le, n - at(before, le)))
        .collect();
    let total = delta.last()?.1;
    if total <= 0.0 {
        return None;
    }
    delta
        .iter()
        .find(|(_, n)| *n >= q * total)
        .map(|(le, _)| *le)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_sum_split_and_give_quantiles() {
        let before = parse("# HELP x y\nlat_bucket{le=\"0.01\"} 0\nlat_bucket{le=\"0.1\"} 0\nlat_bucket{le=\"+Inf\"} 0\n");
        let after = parse(
            "vcp_rounds_total{kind=\"autoscaling\"} 7\nvcp_rounds_total{kind=\"placement\"} 3\n\
             vcp_ingest_readings_total{host=\"a\"} 10\nvcp_ingest_readings_total{host=\"b\"} 5\n\
             lat_bucket{le=\"0.01\"} 90\nlat_bucket{le=\"0.1\"} 99\nlat_bucket{le=\"+Inf\"} 100\n",
        );
        assert_eq!(after.sum("vcp_ingest_readings_total"), 15.0);
        assert_eq!(after.by("vcp_rounds_total", "kind")["placement"], 3.0);
        let (b, a) = (before.buckets("lat"), after.buckets("lat"));
        assert_eq!(quantile(&b, &a, 0.5), Some(0.01));
        assert_eq!(quantile(&b, &a, 0.99), Some(0.1));
        assert_eq!(quantile(&b, &a, 1.0), Some(f64::INFINITY));
        assert_eq!(quantile(&a, &a, 0.5), None);
    }
}
