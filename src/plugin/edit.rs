//! The standalone write verbs' edit of a configuration file: what `move`, `pause`,
//! `resume` and `clear` change in the YAML documents, the same fields the
//! Kubernetes verbs patch (`spec.owner`, `spec.members[].paused`, the
//! clear-failures annotation).
//!
//! Owns that edit, a pure function of the file's text. The documents are read as
//! generic YAML and written back whole, so fields this binary does not know stay;
//! comments and the original formatting do not (the result is canonical YAML). It
//! never validates the result as a configuration: the push does that before
//! anything is sent.

use serde::Deserialize;
use serde_yaml_ng::{Mapping, Value};

use crate::api::CLEAR_FAILURES_ANNOTATION;

/// One verb's change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Edit {
    /// `move GROUP NODE` (`Some`) or `move GROUP --clear` (`None`).
    Owner { group: String, node: Option<String> },
    /// `pause NODE` (`true`) or `resume NODE` (`false`).
    Paused { node: String, paused: bool },
    /// `clear GROUP`: the annotation set to `value` (the unix time).
    ClearFailures { group: String, value: String },
}

/// Why the edit could not be made.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// The text is not YAML documents.
    #[error("not YAML")]
    Yaml(#[source] serde_yaml_ng::Error),
    /// No ResourceGroup of that name.
    #[error("no ResourceGroup {group} (groups: {})", groups.join(", "))]
    UnknownGroup { group: String, groups: Vec<String> },
    /// No member of that name.
    #[error("{node} is not a member of FailoverCluster {cluster} (members: {})", members.join(", "))]
    UnknownNode {
        node: String,
        cluster: String,
        members: Vec<String>,
    },
    /// No FailoverCluster document.
    #[error("no FailoverCluster document")]
    NoCluster,
}

/// The result of an edit: the new text, or that the file already says it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Edited {
    Changed(String),
    /// Nothing to change (e.g. `pause` of a paused member).
    AlreadySo,
}

/// Applies `edit` to the YAML documents of `text`.
pub fn edit(text: &str, edit: &Edit) -> Result<Edited, EditError> {
    let mut documents = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(text) {
        let value = Value::deserialize(document).map_err(EditError::Yaml)?;
        if !value.is_null() {
            documents.push(value);
        }
    }
    let changed = match edit {
        Edit::Owner { group, node } => {
            // The group first, as the Kubernetes verb reads it first.
            group_document(&mut documents, group)?;
            if let Some(node) = node {
                member(&mut documents, node)?;
            }
            let spec = mapping_at(group_document(&mut documents, group)?, "spec");
            match node {
                Some(node) => {
                    let old = spec.insert("owner".into(), node.as_str().into());
                    old.as_ref().and_then(Value::as_str) != Some(node.as_str())
                }
                None => spec.remove("owner").is_some(),
            }
        }
        Edit::Paused { node, paused } => {
            let member = member(&mut documents, node)?;
            let was = member
                .get("paused")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            member.insert("paused".into(), (*paused).into());
            was != *paused
        }
        Edit::ClearFailures { group, value } => {
            let metadata = mapping_at(group_document(&mut documents, group)?, "metadata");
            let annotations = mapping_at(metadata, "annotations");
            let old = annotations.insert(CLEAR_FAILURES_ANNOTATION.into(), value.as_str().into());
            old.as_ref().and_then(Value::as_str) != Some(value.as_str())
        }
    };
    if !changed {
        return Ok(Edited::AlreadySo);
    }
    let mut out = String::new();
    for (i, document) in documents.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&serde_yaml_ng::to_string(document).map_err(EditError::Yaml)?);
    }
    Ok(Edited::Changed(out))
}

fn kind(document: &Value) -> Option<&str> {
    document.get("kind").and_then(Value::as_str)
}

fn name(document: &Value) -> Option<&str> {
    document
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
}

fn group_document<'a>(
    documents: &'a mut [Value],
    group: &str,
) -> Result<&'a mut Mapping, EditError> {
    let groups = || {
        documents
            .iter()
            .filter(|d| kind(d) == Some("ResourceGroup"))
            .filter_map(|d| name(d).map(str::to_owned))
            .collect()
    };
    // A document with a kind is a mapping.
    let index = documents
        .iter()
        .position(|d| kind(d) == Some("ResourceGroup") && name(d) == Some(group));
    let unknown = EditError::UnknownGroup {
        group: group.to_owned(),
        groups: groups(),
    };
    match index {
        Some(index) => documents[index].as_mapping_mut().ok_or(unknown),
        None => Err(unknown),
    }
}

/// The member entry of `node` in the FailoverCluster's `spec.members`.
fn member<'a>(documents: &'a mut [Value], node: &str) -> Result<&'a mut Mapping, EditError> {
    let cluster = documents
        .iter_mut()
        .find(|d| kind(d) == Some("FailoverCluster"))
        .ok_or(EditError::NoCluster)?;
    let cluster_name = name(cluster).unwrap_or_default().to_owned();
    let members = cluster
        .get_mut("spec")
        .and_then(|s| s.get_mut("members"))
        .and_then(Value::as_sequence_mut);
    let Some(members) = members else {
        return Err(EditError::UnknownNode {
            node: node.to_owned(),
            cluster: cluster_name,
            members: Vec::new(),
        });
    };
    let node_of = |m: &Value| m.get("node").and_then(Value::as_str).map(str::to_owned);
    let names: Vec<String> = members.iter().filter_map(node_of).collect();
    members
        .iter_mut()
        .find(|m| node_of(m).as_deref() == Some(node))
        .and_then(Value::as_mapping_mut)
        .ok_or(EditError::UnknownNode {
            node: node.to_owned(),
            cluster: cluster_name,
            members: names,
        })
}

/// The mapping under `key` of `map`, created (replacing anything that is not a
/// mapping, such as a null `annotations:`) when absent.
fn mapping_at<'a>(map: &'a mut Mapping, key: &str) -> &'a mut Mapping {
    let entry = map
        .entry(key.into())
        .or_insert_with(|| Value::Mapping(Mapping::new()));
    if !entry.is_mapping() {
        *entry = Value::Mapping(Mapping::new());
    }
    match entry {
        Value::Mapping(inner) => inner,
        _ => unreachable!("replaced by a mapping above"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::model::AgentConfig;

    const FILE: &str = "# the lab
apiVersion: failover.dev/v1alpha1
kind: FailoverCluster
metadata: {name: lab}
spec:
  members:
    - {node: n1, address: 10.0.0.1}
    - {node: n2, address: 10.0.0.2, paused: true}
    - {node: n3, address: 10.0.0.3}
---
apiVersion: failover.dev/v1alpha1
kind: ResourceGroup
metadata: {name: web}
spec:
  cluster: lab
  owner: n1
  resources:
    - name: vip
      virtualIP: {address: 10.0.0.100/24}
---
apiVersion: failover.dev/v1alpha1
kind: ResourceGroup
metadata: {name: db, annotations: {team: data}}
spec:
  cluster: lab
  resources:
    - name: vip
      virtualIP: {address: 10.0.0.101/24}
";

    fn changed(edit_: Edit) -> AgentConfig {
        match edit(FILE, &edit_).unwrap() {
            Edited::Changed(text) => AgentConfig::from_yaml(&text).unwrap(),
            Edited::AlreadySo => panic!("{edit_:?} changed nothing"),
        }
    }

    fn group<'a>(config: &'a AgentConfig, name: &str) -> &'a crate::placement::GroupModel {
        config.model.groups.iter().find(|g| g.name == name).unwrap()
    }

    #[test]
    fn move_sets_and_removes_the_owner() {
        let config = changed(Edit::Owner {
            group: "db".into(),
            node: Some("n2".into()),
        });
        assert_eq!(group(&config, "db").owner.as_deref(), Some("n2"));
        assert_eq!(group(&config, "web").owner.as_deref(), Some("n1"));
        let config = changed(Edit::Owner {
            group: "web".into(),
            node: None,
        });
        assert_eq!(group(&config, "web").owner, None);
        for already in [
            Edit::Owner {
                group: "web".into(),
                node: Some("n1".into()),
            },
            Edit::Owner {
                group: "db".into(),
                node: None,
            },
        ] {
            assert_eq!(edit(FILE, &already).unwrap(), Edited::AlreadySo);
        }
    }

    #[test]
    fn pause_and_resume_set_the_member_flag() {
        let config = changed(Edit::Paused {
            node: "n1".into(),
            paused: true,
        });
        let paused: Vec<_> = config.model.members.iter().map(|m| m.paused).collect();
        assert_eq!(paused, [true, true, false]);
        let config = changed(Edit::Paused {
            node: "n2".into(),
            paused: false,
        });
        assert!(config.model.members.iter().all(|m| !m.paused));
        assert_eq!(config.model.members.len(), 3);
        let already = Edit::Paused {
            node: "n2".into(),
            paused: true,
        };
        assert_eq!(edit(FILE, &already).unwrap(), Edited::AlreadySo);
    }

    #[test]
    fn clear_sets_the_annotation_and_keeps_the_others() {
        let edit_ = Edit::ClearFailures {
            group: "db".into(),
            value: "1764000000".into(),
        };
        let config = changed(edit_.clone());
        assert_eq!(config.clear_failures["db"], "1764000000");
        let Edited::Changed(text) = edit(FILE, &edit_).unwrap() else {
            panic!()
        };
        assert!(text.contains("team: data"), "{text}");
        // Fields this binary does not interpret stay; comments do not.
        assert!(!text.contains("# the lab"));
        assert_eq!(edit(&text, &edit_).unwrap(), Edited::AlreadySo);
        let config = changed(Edit::ClearFailures {
            group: "web".into(),
            value: "7".into(),
        });
        assert_eq!(config.clear_failures["web"], "7");
    }

    #[test]
    fn unknown_names_are_errors_that_list_the_known_ones() {
        let error = edit(
            FILE,
            &Edit::Owner {
                group: "nope".into(),
                node: None,
            },
        )
        .unwrap_err();
        assert_eq!(error.to_string(), "no ResourceGroup nope (groups: web, db)");
        let error = edit(
            FILE,
            &Edit::Owner {
                group: "web".into(),
                node: Some("n9".into()),
            },
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "n9 is not a member of FailoverCluster lab (members: n1, n2, n3)"
        );
        let error = edit(
            FILE,
            &Edit::Paused {
                node: "n9".into(),
                paused: true,
            },
        )
        .unwrap_err();
        assert!(matches!(error, EditError::UnknownNode { .. }));
        assert!(matches!(
            edit(
                "a: [",
                &Edit::Paused {
                    node: "n1".into(),
                    paused: true
                }
            ),
            Err(EditError::Yaml(_))
        ));
    }
}
