//! Request parameters of the browser endpoints (query strings and form bodies), and adding
//! parameters to a redirect URI.

/// More parameters than any browser endpoint takes; a request with more is refused whole.
pub const MAX_PARAMS: usize = 64;

/// Request parameters in their order (at most `MAX_PARAMS`, so every scan over them is short).
/// Empty values count as absent (RFC 6749 section 3.1).
#[derive(Clone, Debug, Default)]
pub struct Params(Vec<(String, String)>, bool);

impl Params {
    /// Parse a query string or form body.
    pub fn parse(raw: &[u8]) -> Params {
        let mut pairs = url::form_urlencoded::parse(raw).filter(|(_, v)| !v.is_empty());
        let kept = pairs
            .by_ref()
            .take(MAX_PARAMS)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let more = pairs.next().is_some();
        Params(kept, more)
    }

    /// Whether the request had more than `MAX_PARAMS` parameters (the rest were not read).
    pub fn too_many(&self) -> bool {
        self.1
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first parameter that appears twice (quadratic, over at most `MAX_PARAMS`).
    pub fn repeated(&self) -> Option<&str> {
        self.0
            .iter()
            .enumerate()
            .find(|(i, (k, _))| self.0[..*i].iter().any(|(p, _)| p == k))
            .map(|(_, (k, _))| k.as_str())
    }

    /// Urlencoded, without `drop` and with `add`.
    pub fn encode(&self, drop: &[&str], add: &[(&str, String)]) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.0 {
            if !drop.contains(&k.as_str()) {
                s.append_pair(k, v);
            }
        }
        for (k, v) in add {
            s.append_pair(k, v);
        }
        s.finish()
    }
}

/// `uri` with `params` added to its query (RFC 6749 section 3.1.2: keep its own query); the
/// URI untouched when there are none.
pub fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    if params.is_empty() {
        return uri.to_string();
    }
    let mut u = match url::Url::parse(uri) {
        Ok(u) => u,
        Err(_) => return uri.to_string(),
    };
    {
        let mut q = u.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
    }
    u.to_string()
}
