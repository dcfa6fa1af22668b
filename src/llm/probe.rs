//! A look at the LLM endpoint at start-up (`GET …/models`), so a wrong URL, key or model
//! shows in the log at once instead of as the first member's failed answer. Never fatal:
//! the endpoint may come up later.

/// What `GET …/models` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// No answer: nothing listens there, DNS, a firewall, a time-out.
    Unreachable(String),
    /// An answer other than 2xx.
    Status(u16),
    /// The models the endpoint offers.
    Models(Vec<String>),
    /// A 2xx answer that is not a model list (some servers have none): nothing to check.
    NoList,
}

/// The warning for `probe` of the endpoint shown as `base_url` with `model` as the
/// default model, with a hint at the fix; `None` when all is well.
pub fn warning(probe: &Probe, base_url: &str, model: &str) -> Option<String> {
    match probe {
        Probe::Unreachable(reason) => Some(format!(
            "The LLM endpoint {base_url} can't be reached ({reason}). Is the LLM server running, and is LLM_BASE_URL right?"
        )),
        Probe::Status(401 | 403) => Some(format!(
            "The LLM endpoint {base_url} refused the key (HTTP 401/403). Check LLM_API_KEY."
        )),
        Probe::Status(404) => Some(format!(
            "The LLM endpoint {base_url} has no /models (HTTP 404). LLM_BASE_URL usually ends in /v1, e.g. http://127.0.0.1:11434/v1."
        )),
        Probe::Status(status) => Some(format!(
            "The LLM endpoint {base_url} answered HTTP {status} to GET /models. Personalities may not be able to answer."
        )),
        Probe::Models(models) if !models.is_empty() && !models.iter().any(|m| m == model) => {
            Some(format!(
                "The LLM endpoint {base_url} does not offer the model \"{model}\" (LLM_MODEL). It offers: {}.",
                shortlist(models)
            ))
        }
        Probe::Models(_) | Probe::NoList => None,
    }
}

/// At most ten names, so a catalogue of hundreds stays one line.
fn shortlist(models: &[String]) -> String {
    let mut list = models
        .iter()
        .take(10)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if models.len() > 10 {
        let more = models.len() - 10;
        list.push_str(" and ");
        list.push_str(&more.to_string());
        list.push_str(" more");
    }
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "http://h/v1";

    #[test]
    fn each_failure_gets_its_hint_and_a_good_endpoint_none() {
        let hint = |p: Probe| warning(&p, URL, "llama3.1").unwrap_or_default();
        assert!(hint(Probe::Unreachable("refused".into())).contains("running"));
        assert!(hint(Probe::Status(401)).contains("LLM_API_KEY"));
        assert!(hint(Probe::Status(404)).contains("/v1"));
        assert!(hint(Probe::Status(500)).contains("500"));
        let unknown = hint(Probe::Models(vec!["qwen".into()]));
        assert!(
            unknown.contains("\"llama3.1\"") && unknown.contains("qwen"),
            "{unknown}"
        );
        assert_eq!(
            warning(&Probe::Models(vec!["llama3.1".into()]), URL, "llama3.1"),
            None
        );
        assert_eq!(warning(&Probe::NoList, URL, "llama3.1"), None);
    }
}
