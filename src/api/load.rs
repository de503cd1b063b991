//! Loader for a multi-document YAML file holding one FailoverCluster and its
//! ResourceGroups, as `kubectl apply -f` would take it.
//!
//! Owns the parsing of such files for the standalone agent and the `validate`
//! command. It must never validate semantics (that is `validate`), never read files
//! itself (callers pass the text), and never skip a document it does not understand.

use serde::Deserialize;

use super::API_VERSION;
use super::cluster::FailoverCluster;
use super::group::ResourceGroup;

/// Why a YAML file could not be loaded. Document indexes count from 0 and include
/// empty documents, so they match the `---` separators in the file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The YAML of a document is malformed.
    #[error("document {index}: malformed YAML")]
    Yaml {
        /// Index of the document.
        index: usize,
        /// The parser's error (with line and column).
        #[source]
        source: serde_yaml_ng::Error,
    },
    /// A document has no `kind` or `apiVersion`.
    #[error("document {index}: missing apiVersion or kind")]
    MissingKind {
        /// Index of the document.
        index: usize,
    },
    /// A document is not a FailoverCluster or ResourceGroup of our API version.
    #[error(
        "document {index}: unsupported {api_version}/{kind}; expected {API_VERSION} FailoverCluster or ResourceGroup"
    )]
    UnknownKind {
        /// Index of the document.
        index: usize,
        /// Its apiVersion.
        api_version: String,
        /// Its kind.
        kind: String,
    },
    /// A document has the right kind but its fields do not match the schema.
    #[error("document {index} ({kind}): {source}")]
    Invalid {
        /// Index of the document.
        index: usize,
        /// Its kind.
        kind: String,
        /// The deserializer's error (names the field).
        #[source]
        source: serde_yaml_ng::Error,
    },
    /// No FailoverCluster in the file.
    #[error("no FailoverCluster document found")]
    NoCluster,
    /// More than one FailoverCluster in the file.
    #[error("documents {first} and {second} are both FailoverClusters; one file holds one cluster")]
    MultipleClusters {
        /// Index of the first cluster document.
        first: usize,
        /// Index of the second cluster document.
        second: usize,
    },
}

/// The fields we need to route a document to its type.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypeMeta {
    api_version: Option<String>,
    kind: Option<String>,
}

/// Which of our kinds a document is.
#[derive(Clone, Copy)]
enum Kind {
    Cluster,
    Group,
}

/// Loads one FailoverCluster and any number of ResourceGroups from multi-document
/// YAML. Empty documents are skipped; anything else that is not one of our kinds is
/// an error naming the document.
pub fn load_documents(yaml: &str) -> Result<(FailoverCluster, Vec<ResourceGroup>), LoadError> {
    // First pass: route each document by apiVersion/kind. The second pass then
    // deserializes straight from the text, so type errors carry the field path and
    // the line in the file (a detour through `Value` would lose both).
    let mut kinds = Vec::new();
    for (index, document) in serde_yaml_ng::Deserializer::from_str(yaml).enumerate() {
        let value = serde_yaml_ng::Value::deserialize(document)
            .map_err(|source| LoadError::Yaml { index, source })?;
        if value.is_null() {
            kinds.push(None);
            continue;
        }
        let meta: TypeMeta =
            serde_yaml_ng::from_value(value).map_err(|source| LoadError::Yaml { index, source })?;
        let (Some(api_version), Some(kind)) = (meta.api_version, meta.kind) else {
            return Err(LoadError::MissingKind { index });
        };
        kinds.push(Some(match (api_version.as_str(), kind.as_str()) {
            (API_VERSION, "FailoverCluster") => Kind::Cluster,
            (API_VERSION, "ResourceGroup") => Kind::Group,
            _ => {
                return Err(LoadError::UnknownKind {
                    index,
                    api_version,
                    kind,
                });
            }
        }));
    }

    let mut cluster: Option<(usize, FailoverCluster)> = None;
    let mut groups = Vec::new();
    let documents = serde_yaml_ng::Deserializer::from_str(yaml);
    for ((index, document), kind) in documents.enumerate().zip(kinds) {
        let invalid = |kind: &str| {
            let kind = kind.to_owned();
            move |source| LoadError::Invalid {
                index,
                kind,
                source,
            }
        };
        match kind {
            None => {}
            Some(Kind::Cluster) => {
                let parsed =
                    FailoverCluster::deserialize(document).map_err(invalid("FailoverCluster"))?;
                if let Some((first, _)) = cluster {
                    return Err(LoadError::MultipleClusters {
                        first,
                        second: index,
                    });
                }
                cluster = Some((index, parsed));
            }
            Some(Kind::Group) => {
                groups
                    .push(ResourceGroup::deserialize(document).map_err(invalid("ResourceGroup"))?);
            }
        }
    }
    let (_, cluster) = cluster.ok_or(LoadError::NoCluster)?;
    Ok((cluster, groups))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLUSTER: &str = "apiVersion: failover.dev/v1alpha1
kind: FailoverCluster
metadata: {name: c}
spec:
  members: [{node: a}, {node: b}]
";
    const GROUP: &str = "apiVersion: failover.dev/v1alpha1
kind: ResourceGroup
metadata: {name: g}
spec:
  cluster: c
  resources: [{name: vip, virtualIP: {address: 10.77.0.10/24}}]
";

    #[test]
    fn loads_cluster_and_groups_with_defaults() {
        let (cluster, groups) =
            load_documents(&format!("---\n{GROUP}---\n{CLUSTER}---\n")).unwrap();
        assert_eq!(cluster.spec.members.len(), 2);
        assert_eq!(cluster.spec.members[0].priority, 100);
        assert_eq!(cluster.spec.heartbeat.interval.get().as_millis(), 200);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].spec.cluster, "c");
    }

    #[test]
    fn rejects_unknown_kinds_naming_the_document() {
        let err = load_documents(&format!("{CLUSTER}---\napiVersion: v1\nkind: ConfigMap\n"))
            .unwrap_err();
        assert!(
            matches!(err, LoadError::UnknownKind { index: 1, .. }),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with("document 1: unsupported v1/ConfigMap")
        );
    }

    #[test]
    fn reports_missing_and_duplicate_clusters() {
        assert!(matches!(load_documents(GROUP), Err(LoadError::NoCluster)));
        assert!(matches!(
            load_documents(&format!("{CLUSTER}---\n{CLUSTER}")),
            Err(LoadError::MultipleClusters {
                first: 0,
                second: 1
            })
        ));
        assert!(matches!(
            load_documents("metadata: {}\n"),
            Err(LoadError::MissingKind { index: 0 })
        ));
        assert!(matches!(
            load_documents("a: [\n"),
            Err(LoadError::Yaml { index: 0, .. })
        ));
    }

    #[test]
    fn type_errors_name_the_field() {
        let bad = CLUSTER.replace("{node: b}", "{node: b, paused: maybe}");
        let err = load_documents(&bad).unwrap_err();
        assert!(matches!(err, LoadError::Invalid { index: 0, .. }));
        let text = err.to_string();
        assert!(text.contains("spec.members[1].paused"), "{text}");
        assert!(text.contains("line 5"), "{text}");
    }
}
