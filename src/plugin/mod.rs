//! `kubectl failover`: the admin's verbs (`status`, `explain`, `move`, `pause`,
//! `resume`, `clear`, `timeline`) against the custom resources. The same binary is
//! the kubectl plugin (installed as `kubectl-failover`) and `failover ctl`.
//!
//! Owns the verbs' arguments, their reads and writes, and their errors; what they
//! print is [`render`] (pure). It reads and patches FailoverClusters and
//! ResourceGroups only through the API server, as any kubectl user could; it must
//! never import the operator or the agent: what it writes is what a person would
//! write by hand (`spec.owner`, `spec.members[].paused`, the clear-failures
//! annotation), and the operator and agents act on it as on any edit.
//!
//! Standalone (`--standalone FILE`), the read verbs take the spec from the file
//! and the live view from one agent's `/state` ([`endpoint`]). The write verbs,
//! with `--key-file`, edit the file ([`edit`]), push the result to every member
//! ([`push`], the code of `failover config push`) and then write the file, which
//! stays the configuration of record; without a key they say how to edit the files
//! instead.

pub mod edit;
pub mod endpoint;
pub mod push;
pub mod render;

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value, json};

use crate::api::{API_VERSION, CLEAR_FAILURES_ANNOTATION, FailoverCluster, ResourceGroup};
use crate::contract::file::write_atomically;
use crate::contract::model::cluster_id;
use crate::membership::Keyring;
use edit::{Edit, EditError, Edited};
use endpoint::EndpointError;
pub use render::Format;

/// Bound of every API request: a verb that cannot reach the API server says so
/// instead of hanging.
const API_TIMEOUT: Duration = Duration::from_secs(15);

/// Bound of the request to a standalone agent: it answers from memory at once.
const AGENT_TIMEOUT: Duration = Duration::from_secs(5);

/// The agent asked without `--agent`: the standalone agent's default
/// `--metrics-addr` port, on this host.
pub const DEFAULT_AGENT: &str = "127.0.0.1:9477";

/// The verbs and the flags they share.
#[derive(Debug, clap::Args)]
pub struct CtlArgs {
    /// Namespace of the FailoverCluster and its ResourceGroups (default: the
    /// kubeconfig context's).
    #[arg(short = 'n', long, global = true, value_name = "NS")]
    pub namespace: Option<String>,
    /// The FailoverCluster (default: the only one in the namespace).
    #[arg(long, global = true, value_name = "NAME")]
    pub cluster: Option<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", global = true, value_enum, default_value_t = Format::Table)]
    pub output: Format,
    /// Standalone: the cluster's configuration file instead of Kubernetes. `status`,
    /// `explain` and `timeline` read it and ask one agent (`--agent`) for its view;
    /// the other verbs, with `--key-file`, change it, push it to every member and
    /// write it back (without a key they say how to edit the file instead).
    #[arg(long, global = true, value_name = "FILE")]
    pub standalone: Option<std::path::PathBuf>,
    /// Standalone write verbs: the cluster's heartbeat key file, which signs the
    /// push of the changed file to every member (as `failover config push`).
    #[arg(long, global = true, value_name = "PATH", requires = "standalone")]
    pub key_file: Option<std::path::PathBuf>,
    /// Standalone write verbs: the previous key during a rotation (replies signed
    /// with it are accepted too).
    #[arg(long, global = true, value_name = "PATH", requires = "key_file")]
    pub previous_key_file: Option<std::path::PathBuf>,
    /// Standalone: the `--metrics-addr` of the agent to ask, HOST:PORT (default
    /// 127.0.0.1:9477, the agent's default port on this host).
    #[arg(long, global = true, value_name = "HOST:PORT", requires = "standalone")]
    pub agent: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub verb: Verb,
}

/// The verbs, named as `kubectl failover VERB`.
#[derive(Debug, clap::Subcommand)]
pub enum Verb {
    /// Members (state, priority, paused, synchronized, last heartbeat), quorum,
    /// and every group's owner, phase and last transition.
    Status,
    /// Why each member is or is not the owner of GROUP.
    Explain {
        /// The ResourceGroup.
        group: String,
    },
    /// Pin GROUP to NODE (`spec.owner`): the owner hands it over gracefully.
    /// `--clear` removes the pin (automatic placement again).
    Move {
        /// The ResourceGroup.
        group: String,
        /// The member node to run it on.
        #[arg(required_unless_present = "clear", conflicts_with = "clear")]
        node: Option<String>,
        /// Remove `spec.owner` instead of setting it.
        #[arg(long)]
        clear: bool,
    },
    /// Maintenance: NODE keeps voting but owns nothing; its groups are handed over
    /// (`spec.members[].paused: true`).
    Pause {
        /// The member node.
        node: String,
    },
    /// End NODE's maintenance (`spec.members[].paused: false`).
    Resume {
        /// The member node.
        node: String,
    },
    /// Reset GROUP's failover count, so a Failed group runs again (annotation
    /// `failover.dev/clear-failures=<unix time>`).
    Clear {
        /// The ResourceGroup.
        group: String,
    },
    /// GROUP's last takeovers, phase by phase, with milliseconds.
    Timeline {
        /// The ResourceGroup.
        group: String,
    },
}

impl Verb {
    /// The verb's name as typed.
    fn name(&self) -> &'static str {
        match self {
            Verb::Status => "status",
            Verb::Explain { .. } => "explain",
            Verb::Move { .. } => "move",
            Verb::Pause { .. } => "pause",
            Verb::Resume { .. } => "resume",
            Verb::Clear { .. } => "clear",
            Verb::Timeline { .. } => "timeline",
        }
    }

    /// The change a write verb makes to a standalone configuration file at `now`
    /// (the clear annotation's value); `None` for the read verbs.
    fn file_edit(&self, now: Timestamp) -> Option<Edit> {
        Some(match self {
            Verb::Status | Verb::Explain { .. } | Verb::Timeline { .. } => return None,
            Verb::Move { group, node, .. } => Edit::Owner {
                group: group.clone(),
                node: node.clone(),
            },
            Verb::Pause { node } => Edit::Paused {
                node: node.clone(),
                paused: true,
            },
            Verb::Resume { node } => Edit::Paused {
                node: node.clone(),
                paused: false,
            },
            Verb::Clear { group } => Edit::ClearFailures {
                group: group.clone(),
                value: now.as_second().to_string(),
            },
        })
    }

    /// What a write verb changed, for a person.
    fn done(&self) -> String {
        match self {
            Verb::Move {
                group,
                node: Some(node),
                ..
            } => format!("{group} pinned to {node} (spec.owner)"),
            Verb::Move { group, .. } => format!("{group}: pin removed (spec.owner)"),
            Verb::Pause { node } => format!("{node} paused"),
            Verb::Resume { node } => format!("{node} resumed"),
            Verb::Clear { group } => {
                format!("{group}: failure count cleared ({CLEAR_FAILURES_ANNOTATION})")
            }
            Verb::Status | Verb::Explain { .. } | Verb::Timeline { .. } => String::new(),
        }
    }

    /// The edit a write verb stands for in standalone mode without a key, where the
    /// file is the configuration of record; `None` for the read verbs.
    fn standalone_edit(&self) -> Option<String> {
        let edit = "edit the configuration file of every member (keep the files equal), \
                    then send SIGHUP to each agent (they also reload a changed file by themselves)";
        Some(match self {
            Verb::Status | Verb::Explain { .. } | Verb::Timeline { .. } => return None,
            Verb::Move { group, node, .. } => match node {
                Some(node) => {
                    format!("set `owner: {node}` in the spec of ResourceGroup {group}: {edit}")
                }
                None => format!("remove `owner` from the spec of ResourceGroup {group}: {edit}"),
            },
            Verb::Pause { node } => format!("set `paused: true` on member {node}: {edit}"),
            Verb::Resume { node } => format!("set `paused: false` on member {node}: {edit}"),
            Verb::Clear { group } => format!(
                "put the annotation {CLEAR_FAILURES_ANNOTATION}: \"<a new value, e.g. the unix time>\" \
                 on ResourceGroup {group}: {edit}"
            ),
        })
    }
}

/// Why a verb failed.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// No Kubernetes client could be configured.
    #[error(transparent)]
    Client(#[from] crate::contract::client::ClientError),
    /// An API request failed.
    #[error("cannot {what}")]
    Api {
        /// The request, e.g. "get ResourceGroup ns/web".
        what: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// An API request got no answer in time.
    #[error("cannot {what}: no answer from the API server within {API_TIMEOUT:?}")]
    Timeout {
        /// The request.
        what: String,
    },
    /// No FailoverCluster in the namespace.
    #[error("no FailoverCluster in namespace {namespace}")]
    NoCluster {
        /// The namespace.
        namespace: String,
    },
    /// Several FailoverClusters and no `--cluster`.
    #[error("namespace {namespace} has several FailoverClusters ({}): name one with --cluster", names.join(", "))]
    AmbiguousCluster {
        /// The namespace.
        namespace: String,
        /// Their names.
        names: Vec<String>,
    },
    /// A named object does not exist.
    #[error("no {kind} {name} in namespace {namespace}")]
    NotFound {
        /// FailoverCluster or ResourceGroup.
        kind: &'static str,
        /// Its name.
        name: String,
        /// The namespace.
        namespace: String,
    },
    /// The node is not a member of the cluster.
    #[error("{node} is not a member of FailoverCluster {cluster} (members: {})", members.join(", "))]
    UnknownNode {
        /// The node asked for.
        node: String,
        /// The cluster.
        cluster: String,
        /// Its members.
        members: Vec<String>,
    },
    /// `--cluster` names another cluster than the group's.
    #[error("ResourceGroup {group} runs on FailoverCluster {actual}, not {asked}")]
    OtherCluster {
        /// The group.
        group: String,
        /// Its `spec.cluster`.
        actual: String,
        /// `--cluster`.
        asked: String,
    },
    /// The cluster changed between our read and our write, twice in a row.
    #[error(
        "FailoverCluster {cluster} changed while {verb} was writing it, twice: nothing was written; run it again"
    )]
    Conflict {
        /// The cluster.
        cluster: String,
        /// The verb.
        verb: &'static str,
    },
    /// `--standalone`: a write verb without `--key-file`. The file is the
    /// configuration of record, the same on every member (they compare its hash).
    #[error(
        "`{verb}` writes to standalone agents only with --key-file (it then pushes the changed {file} to every member, as `failover config push`); without a key, {instead}"
    )]
    Standalone {
        /// The verb.
        verb: &'static str,
        /// The configuration file named.
        file: String,
        /// What to do instead.
        instead: String,
    },
    /// `--standalone FILE` cannot be read.
    #[error("cannot read {file}")]
    File {
        /// The file.
        file: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `--standalone FILE` is not a cluster's configuration.
    #[error("{file} is not a cluster's configuration")]
    Load {
        /// The file.
        file: String,
        /// Why.
        #[source]
        source: crate::api::LoadError,
    },
    /// The group is not in `--standalone FILE`.
    #[error("no ResourceGroup {group} in {file} (groups: {})", groups.join(", "))]
    UnknownGroup {
        /// The group asked for.
        group: String,
        /// The file.
        file: String,
        /// Its groups.
        groups: Vec<String>,
    },
    /// The agent asked runs another cluster than the file's.
    #[error("the agent at {addr} runs cluster {agent}, not {file_cluster} of {file}")]
    OtherClusterAgent {
        /// `--agent`.
        addr: String,
        /// The agent's cluster.
        agent: String,
        /// The file's.
        file_cluster: String,
        /// The file.
        file: String,
    },
    /// The agent's `/state` could not be read.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// `--standalone FILE` could not be edited.
    #[error("cannot change {file}")]
    Edit {
        /// The file.
        file: String,
        /// Why.
        #[source]
        source: EditError,
    },
    /// Nothing was pushed.
    #[error(transparent)]
    Push(#[from] push::PushError),
    /// The file could not be written back after the push.
    #[error(
        "cannot write {file} (members that applied the push run it; write the file again by hand)"
    )]
    Write {
        /// The file.
        file: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An object the API server returned does not have the shape this binary knows
    /// (typically a plugin older or newer than the installed CRDs).
    #[error(
        "cannot read {kind} {namespace}/{name}: it does not have the shape this kubectl-failover knows (is it the version of the installed CRDs?)"
    )]
    Malformed {
        /// FailoverCluster or ResourceGroup.
        kind: &'static str,
        /// Its name.
        name: String,
        /// The namespace.
        namespace: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The async runtime could not be built.
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
}

/// What a verb prints, and whether it did all it was asked (a push that some
/// member did not apply did not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Printout {
    pub text: String,
    pub complete: bool,
}

impl From<String> for Printout {
    fn from(text: String) -> Self {
        Printout {
            text,
            complete: true,
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, PluginError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(PluginError::Runtime)
}

/// Runs one verb: configures a client from the environment (as kubectl: $KUBECONFIG,
/// ~/.kube/config, in-cluster) and returns what to print. `keys` are the keys of
/// `--key-file` (the caller reads them): standalone, the write verbs push with them.
pub fn run(args: CtlArgs, keys: Option<&Keyring>) -> Result<Printout, PluginError> {
    let runtime = runtime()?;
    if let Some(file) = &args.standalone {
        let now = Timestamp::now();
        if let (Some(keys), Some(edit)) = (keys, args.verb.file_edit(now)) {
            return runtime.block_on(standalone_write(
                file,
                &args.verb,
                &edit,
                keys,
                now,
                args.output,
            ));
        }
        let agent = args.agent.as_deref().unwrap_or(DEFAULT_AGENT);
        return runtime
            .block_on(standalone(file, agent, &args.verb, now, args.output))
            .map(Printout::from);
    }
    runtime
        .block_on(async {
            let client = crate::contract::client::client_from(None, API_TIMEOUT).await?;
            let namespace = args
                .namespace
                .clone()
                .unwrap_or_else(|| client.default_namespace().to_owned());
            let target = Target {
                client,
                namespace,
                cluster: args.cluster,
                format: args.output,
            };
            target.run(&args.verb, Timestamp::now()).await
        })
        .map(Printout::from)
}

/// `failover config push FILE`: pushes the file to every member it lists, signed
/// with `keys`.
pub fn config_push(file: &Path, keys: &Keyring, format: Format) -> Result<Printout, PluginError> {
    let name = file.display().to_string();
    let text = std::fs::read_to_string(file).map_err(|source| PluginError::File {
        file: name.clone(),
        source,
    })?;
    let report = runtime()?.block_on(push::push(&name, &text, keys, unix_ms(Timestamp::now())))?;
    Ok(Printout {
        text: report.render(format),
        complete: report.all_accepted(),
    })
}

fn unix_ms(now: Timestamp) -> u64 {
    u64::try_from(now.as_millisecond()).unwrap_or_default()
}

/// A write verb standalone with a key: `edit` made to `file`, the result pushed to
/// every member, then written to `file` if any member runs it now.
pub async fn standalone_write(
    file: &Path,
    verb: &Verb,
    edit: &Edit,
    keys: &Keyring,
    now: Timestamp,
    format: Format,
) -> Result<Printout, PluginError> {
    let name = file.display().to_string();
    let text = std::fs::read_to_string(file).map_err(|source| PluginError::File {
        file: name.clone(),
        source,
    })?;
    let changed = match edit::edit(&text, edit) {
        Ok(Edited::Changed(changed)) => changed,
        Ok(Edited::AlreadySo) => {
            return Ok(Printout::from(format!(
                "{name} already says so ({}); nothing pushed\n",
                verb.done()
            )));
        }
        Err(EditError::UnknownGroup { group, groups }) => {
            return Err(PluginError::UnknownGroup {
                group,
                file: name,
                groups,
            });
        }
        Err(EditError::UnknownNode {
            node,
            cluster,
            members,
        }) => {
            return Err(PluginError::UnknownNode {
                node,
                cluster,
                members,
            });
        }
        Err(source) => return Err(PluginError::Edit { file: name, source }),
    };
    let report = push::push(&name, &changed, keys, unix_ms(now)).await?;
    let mut out = report.render(format);
    if report.any_accepted() {
        write_atomically(file, &changed).map_err(|source| PluginError::Write {
            file: name.clone(),
            source,
        })?;
        tracing::info!(file = %name, verb = verb.name(), "configuration pushed and written");
        if format == Format::Table {
            let members = report.results.len();
            let ran = report.results.iter().filter(|(_, r)| r.accepted()).count();
            out.push_str(&format!(
                "{}: {name} written; {ran} of {members} members run it{}\n",
                verb.done(),
                if ran < members {
                    " (push the file again with `failover config push` when the others are back)"
                } else {
                    ""
                }
            ));
        }
    } else if format == Format::Table {
        out.push_str(&format!(
            "no member took the change: {name} left as it was\n"
        ));
    }
    Ok(Printout {
        text: out,
        complete: report.all_accepted(),
    })
}

/// A verb standalone: a read verb takes the spec from `file` and the view of the
/// agent at `agent`; a write verb contacts nothing and says how to edit the file.
pub async fn standalone(
    file: &Path,
    agent: &str,
    verb: &Verb,
    now: Timestamp,
    format: Format,
) -> Result<String, PluginError> {
    let name = file.display().to_string();
    if let Some(instead) = verb.standalone_edit() {
        return Err(PluginError::Standalone {
            verb: verb.name(),
            file: name,
            instead,
        });
    }
    let text = std::fs::read_to_string(file).map_err(|source| PluginError::File {
        file: name.clone(),
        source,
    })?;
    let (cluster, mut groups) =
        crate::api::load_documents(&text).map_err(|source| PluginError::Load {
            file: name.clone(),
            source,
        })?;
    groups.sort_by_key(ResourceExt::name_any);
    let find = |wanted: &str| {
        groups
            .iter()
            .find(|g| g.name_any() == wanted)
            .ok_or_else(|| PluginError::UnknownGroup {
                group: wanted.to_owned(),
                file: name.clone(),
                groups: groups.iter().map(ResourceExt::name_any).collect(),
            })
    };
    // Before asking the agent: a typo in the group needs no agent to be told.
    if let Verb::Explain { group } | Verb::Timeline { group } = verb {
        find(group)?;
    }
    let state = endpoint::fetch_state(agent, AGENT_TIMEOUT).await?;
    let file_cluster = cluster_id(&cluster);
    if state.cluster != file_cluster {
        return Err(PluginError::OtherClusterAgent {
            addr: agent.to_owned(),
            agent: state.cluster,
            file_cluster,
            file: name,
        });
    }
    Ok(match verb {
        Verb::Explain { group } => render::standalone::explain(find(group)?, &state, now, format),
        Verb::Timeline { group } => render::standalone::timeline(group, &state, format),
        // Status; the write verbs were answered above.
        _ => render::standalone::status(&cluster, &groups, &state, now, format),
    })
}

/// Where the verbs act: a client, the namespace, `--cluster` if given, and `-o`.
pub struct Target {
    /// The Kubernetes client.
    pub client: Client,
    /// The namespace of the cluster and its groups.
    pub namespace: String,
    /// `--cluster`.
    pub cluster: Option<String>,
    /// `-o`.
    pub format: Format,
}

/// One API request, bounded by [`API_TIMEOUT`], its error naming `what`.
async fn call<T>(
    what: impl Fn() -> String,
    request: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, PluginError> {
    match tokio::time::timeout(API_TIMEOUT, request).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(source)) => Err(PluginError::Api {
            what: what(),
            source,
        }),
        Err(_) => Err(PluginError::Timeout { what: what() }),
    }
}

fn is_status(error: &PluginError, code: u16) -> bool {
    matches!(error, PluginError::Api { source: kube::Error::Api(status), .. } if status.code == code)
}

/// The field manager of the plugin's writes (visible in `managedFields`).
pub const FIELD_MANAGER: &str = "kubectl-failover";

/// A JSON merge patch of the object of kind `K` named `name`: `metadata` and
/// `spec` as given, beside the object's `apiVersion`, `kind` and `metadata.name`
/// (a real API server accepts a merge patch without them, and with them when they
/// match the object; stating them makes the patch say what it patches).
///
/// A merge patch rather than server-side apply, because it is the edit a person
/// makes (`kubectl patch --type merge`, `kubectl edit`): `null` removes a field
/// whoever set it, and the plugin does not become an owner of `spec.owner` or a
/// member entry, which would keep them alive after a manifest that owns them drops
/// them.
fn merge_patch<K: Resource<DynamicType = ()>>(
    name: &str,
    mut metadata: Value,
    spec: Option<Value>,
) -> Value {
    metadata["name"] = json!(name);
    let mut patch = json!({
        "apiVersion": API_VERSION,
        "kind": K::kind(&()),
        "metadata": metadata,
    });
    if let Some(spec) = spec {
        patch["spec"] = spec;
    }
    patch
}

fn patch_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    }
}

impl Target {
    /// Runs `verb` at `now` (the time of the clear annotation and of printed ages).
    pub async fn run(&self, verb: &Verb, now: Timestamp) -> Result<String, PluginError> {
        match verb {
            Verb::Status => {
                let cluster = self.cluster().await?;
                let groups = self.groups_of(&cluster.name_any()).await?;
                Ok(render::status(&cluster, &groups, now, self.format))
            }
            Verb::Explain { group } => {
                let group = self.group(group).await?;
                Ok(render::explain(&group, now, self.format))
            }
            Verb::Timeline { group } => {
                let group = self.group(group).await?;
                Ok(render::timeline(&group, self.format))
            }
            Verb::Move { group, node, .. } => self.move_group(group, node.as_deref()).await,
            Verb::Pause { node } => self.set_paused(node, true, verb.name()).await,
            Verb::Resume { node } => self.set_paused(node, false, verb.name()).await,
            Verb::Clear { group } => self.clear(group, now).await,
        }
    }

    /// FailoverClusters as the API server stores them, fields this binary does not
    /// know included: `pause` and `resume` write the members list back whole.
    fn clusters(&self) -> Api<DynamicObject> {
        Api::namespaced_with(
            self.client.clone(),
            &self.namespace,
            &ApiResource::erase::<FailoverCluster>(&()),
        )
    }

    /// `object` as a FailoverCluster, or why it is not one.
    fn typed_cluster(&self, object: &DynamicObject) -> Result<FailoverCluster, PluginError> {
        serde_json::to_value(object)
            .and_then(serde_json::from_value)
            .map_err(|source| PluginError::Malformed {
                kind: "FailoverCluster",
                name: object.name_any(),
                namespace: self.namespace.clone(),
                source,
            })
    }

    fn groups(&self) -> Api<ResourceGroup> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    fn not_found(&self, kind: &'static str, name: &str) -> PluginError {
        PluginError::NotFound {
            kind,
            name: name.to_owned(),
            namespace: self.namespace.clone(),
        }
    }

    /// The FailoverCluster named by `--cluster`, else the only one in the namespace.
    async fn cluster(&self) -> Result<FailoverCluster, PluginError> {
        self.typed_cluster(&self.cluster_object().await?)
    }

    /// [`Self::cluster`] as the API server stored it.
    async fn cluster_object(&self) -> Result<DynamicObject, PluginError> {
        if let Some(name) = &self.cluster {
            return self.cluster_object_named(name).await;
        }
        let ns = &self.namespace;
        let list = call(
            || format!("list FailoverClusters in namespace {ns}"),
            self.clusters().list(&ListParams::default()),
        )
        .await?;
        let mut items = list.items;
        match items.len() {
            0 => Err(PluginError::NoCluster {
                namespace: ns.clone(),
            }),
            1 => Ok(items.remove(0)),
            _ => Err(PluginError::AmbiguousCluster {
                namespace: ns.clone(),
                names: items.iter().map(ResourceExt::name_any).collect(),
            }),
        }
    }

    async fn cluster_named(&self, name: &str) -> Result<FailoverCluster, PluginError> {
        self.typed_cluster(&self.cluster_object_named(name).await?)
    }

    async fn cluster_object_named(&self, name: &str) -> Result<DynamicObject, PluginError> {
        let ns = &self.namespace;
        call(
            || format!("get FailoverCluster {ns}/{name}"),
            self.clusters().get_opt(name),
        )
        .await?
        .ok_or_else(|| self.not_found("FailoverCluster", name))
    }

    async fn group(&self, name: &str) -> Result<ResourceGroup, PluginError> {
        let ns = &self.namespace;
        call(
            || format!("get ResourceGroup {ns}/{name}"),
            self.groups().get_opt(name),
        )
        .await?
        .ok_or_else(|| self.not_found("ResourceGroup", name))
    }

    /// The groups of `cluster`, by name.
    async fn groups_of(&self, cluster: &str) -> Result<Vec<ResourceGroup>, PluginError> {
        let ns = &self.namespace;
        let list = call(
            || format!("list ResourceGroups in namespace {ns}"),
            self.groups().list(&ListParams::default()),
        )
        .await?;
        let mut groups: Vec<ResourceGroup> = list
            .items
            .into_iter()
            .filter(|g| g.spec.cluster == cluster)
            .collect();
        groups.sort_by_key(ResourceExt::name_any);
        Ok(groups)
    }

    /// `move`: sets (or with `None` removes) the group's `spec.owner`, after
    /// checking that the node is a member of the group's cluster.
    async fn move_group(&self, name: &str, node: Option<&str>) -> Result<String, PluginError> {
        let group = self.group(name).await?;
        let cluster_name = &group.spec.cluster;
        if let Some(asked) = &self.cluster
            && asked != cluster_name
        {
            return Err(PluginError::OtherCluster {
                group: name.to_owned(),
                actual: cluster_name.clone(),
                asked: asked.clone(),
            });
        }
        match node {
            Some(node) => {
                let cluster = self.cluster_named(cluster_name).await?;
                member_index(&cluster, node)?;
            }
            None if group.spec.owner.is_none() => {
                return Ok(format!(
                    "{name}: not pinned (no spec.owner); nothing to do\n"
                ));
            }
            None => {}
        }
        let ns = &self.namespace;
        // One field: `null` removes it.
        let patch = merge_patch::<ResourceGroup>(name, json!({}), Some(json!({"owner": node})));
        call(
            || format!("patch ResourceGroup {ns}/{name}"),
            self.groups()
                .patch(name, &patch_params(), &Patch::Merge(&patch)),
        )
        .await?;
        tracing::info!(group = name, node, "spec.owner written");
        Ok(match node {
            Some(node) => {
                format!("{name}: pinned to {node} (spec.owner); the current owner hands it over\n")
            }
            None => format!("{name}: pin removed (spec.owner); placement decides again\n"),
        })
    }

    /// `pause` / `resume`: read-modify-write of `spec.members` (a merge patch
    /// replaces the whole list), made safe by the `resourceVersion` it read: the API
    /// server refuses the write with 409 Conflict when the cluster changed in
    /// between; then it reads again and tries once more. The list is written back
    /// as it was stored, only the one member's `paused` changed.
    async fn set_paused(
        &self,
        node: &str,
        paused: bool,
        verb: &'static str,
    ) -> Result<String, PluginError> {
        match self.write_paused(node, paused, verb).await {
            Err(PluginError::Conflict { cluster, .. }) => {
                tracing::info!(cluster, "changed since read; reading it again");
                self.write_paused(node, paused, verb).await
            }
            other => other,
        }
    }

    /// One read and write of `set_paused`; [`PluginError::Conflict`] when the
    /// cluster changed in between.
    async fn write_paused(
        &self,
        node: &str,
        paused: bool,
        verb: &'static str,
    ) -> Result<String, PluginError> {
        let object = self.cluster_object().await?;
        let mut cluster = self.typed_cluster(&object)?;
        let name = cluster.name_any();
        let index = member_index(&cluster, node)?;
        if cluster.spec.members[index].paused == paused {
            let state = if paused {
                "already paused"
            } else {
                "not paused"
            };
            return Ok(format!(
                "{node}: {state} in FailoverCluster {name}; nothing to do\n"
            ));
        }
        let mut members = object.data["spec"]["members"].clone();
        match members.get_mut(index).and_then(Value::as_object_mut) {
            Some(member) => {
                member.insert("paused".to_owned(), Value::Bool(paused));
            }
            // Not reached: the typed members were read from this very list.
            None => {
                cluster.spec.members[index].paused = paused;
                members = json!(cluster.spec.members);
            }
        }
        let patch = merge_patch::<FailoverCluster>(
            &name,
            json!({"resourceVersion": object.resource_version()}),
            Some(json!({"members": members})),
        );
        let ns = &self.namespace;
        let written = call(
            || format!("patch FailoverCluster {ns}/{name}"),
            self.clusters()
                .patch(&name, &patch_params(), &Patch::Merge(&patch)),
        )
        .await;
        match written {
            Err(e) if is_status(&e, 409) => Err(PluginError::Conflict {
                cluster: name,
                verb,
            }),
            Err(e) => Err(e),
            Ok(_) => {
                tracing::info!(cluster = %name, node, paused, "spec.members[].paused written");
                Ok(if paused {
                    format!(
                        "{node}: paused in FailoverCluster {name}; its groups are handed over\n"
                    )
                } else {
                    format!(
                        "{node}: resumed in FailoverCluster {name}; groups come back as their failback policy says\n"
                    )
                })
            }
        }
    }

    /// `clear`: annotates the group with the unix time (any new value clears once).
    async fn clear(&self, name: &str, now: Timestamp) -> Result<String, PluginError> {
        let value = now.as_second().to_string();
        let patch = merge_patch::<ResourceGroup>(
            name,
            json!({"annotations": {CLEAR_FAILURES_ANNOTATION: value}}),
            None,
        );
        let ns = &self.namespace;
        let patched = call(
            || format!("patch ResourceGroup {ns}/{name}"),
            self.groups()
                .patch(name, &patch_params(), &Patch::Merge(&patch)),
        )
        .await;
        match patched {
            Err(e) if is_status(&e, 404) => return Err(self.not_found("ResourceGroup", name)),
            other => other?,
        };
        tracing::info!(group = name, value, "failure count clear requested");
        Ok(format!(
            "{name}: {CLEAR_FAILURES_ANNOTATION}={value}; every member resets its failover count\n"
        ))
    }
}

/// The index of `node` in the cluster's `spec.members`.
fn member_index(cluster: &FailoverCluster, node: &str) -> Result<usize, PluginError> {
    let members = &cluster.spec.members;
    members
        .iter()
        .position(|m| m.node == node)
        .ok_or_else(|| PluginError::UnknownNode {
            node: node.to_owned(),
            cluster: cluster.name_any(),
            members: members.iter().map(|m| m.node.clone()).collect(),
        })
}

#[cfg(test)]
mod tests;
