//! `kubeconfig`: the webhook's kubeconfig parser (`ClusterConfig::parse_kubeconfig`:
//! YAML, context/cluster/user resolution, inline base64 data). Files it names are
//! looked up in a directory that does not exist.

use std::path::Path;

use keyless_webhook::kube::ClusterConfig;

/// Runs one input.
pub fn run(data: &[u8]) {
    let path = Path::new("/nonexistent/keyless-fuzz/kubeconfig");
    if let Ok(config) = ClusterConfig::parse_kubeconfig(data, path, None) {
        assert!(
            config.server.starts_with("https://") || config.server.starts_with("http://"),
            "accepted server {:?}",
            config.server
        );
    }
}
