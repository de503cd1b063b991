//! The Kubernetes client both the operator and the agent's Kubernetes mode start
//! with: from a kubeconfig file when one is named, else the in-cluster or default
//! configuration, with connecting bounded in time.
//!
//! Owns that construction and its error. It must never make an API call itself:
//! the first request is the caller's, under the caller's timeout.

use std::path::Path;
use std::time::Duration;

use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};

/// Why no client could be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No usable kubeconfig or in-cluster configuration.
    #[error("cannot configure the Kubernetes client")]
    Client(#[source] kube::Error),
    /// The kubeconfig file could not be read.
    #[error("cannot read kubeconfig {path}")]
    Kubeconfig {
        /// Its path.
        path: String,
        /// Why.
        #[source]
        source: KubeconfigError,
    },
}

/// A client from `kubeconfig`, else the in-cluster or default configuration, with
/// connecting bounded by `timeout`.
pub async fn client_from(
    kubeconfig: Option<&Path>,
    timeout: Duration,
) -> Result<Client, ClientError> {
    let mut config = match kubeconfig {
        Some(path) => {
            let unreadable = |source| ClientError::Kubeconfig {
                path: path.display().to_string(),
                source,
            };
            let kubeconfig = Kubeconfig::read_from(path).map_err(unreadable)?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(unreadable)?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| ClientError::Client(kube::Error::InferConfig(e)))?,
    };
    // Bound every request at the transport too; watches are long polls the
    // watcher restarts, so only connecting is bounded for them.
    config.connect_timeout = Some(timeout);
    Client::try_from(config).map_err(ClientError::Client)
}
