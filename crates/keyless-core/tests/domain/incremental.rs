//! The incremental view (issue 13): applying every write's [`Change`] to the view leaves
//! it equal to a fresh full load, for random sequences of writes (identities, their
//! credentials, role assignments, groups, vaults; deletes with their cascades; names
//! reused after a delete), and with full reloads running concurrently with writes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use keyless_core::view::{Snapshot, View};
use keyless_store::{
    Change, FederatedCredentialRecord, IdentityRecord, ResourceGroupRecord, RoleAssignmentRecord,
    Store, SubscriptionRecord, TenantRecord, VaultRecord,
};
use serde_json::{Map, Value};

use crate::harness::temp_store;

const TENANT: &str = "11111111-1111-1111-1111-111111111111";
const SUB: &str = "22222222-2222-2222-2222-222222222222";
const GROUPS: [&str; 3] = ["rg-a", "RG-b", "rg-c"];
const NAMES: [&str; 6] = ["id-0", "id-1", "ID-2", "id-3", "id-4", "id-5"];

/// xorshift64*: deterministic per seed, no dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
    fn pick<'a>(&mut self, from: &'a [&'a str]) -> &'a str {
        from[self.below(from.len())]
    }
}

fn tags(n: usize) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("n".into(), Value::from(n));
    m
}

async fn seeded() -> Arc<dyn Store> {
    let store = temp_store().await;
    store
        .insert_tenant(&TenantRecord {
            id: TENANT.into(),
            display_name: "t".into(),
            created_at: 1,
        })
        .await
        .unwrap();
    store
        .insert_subscription(&SubscriptionRecord {
            id: SUB.into(),
            tenant_id: TENANT.into(),
            display_name: "s".into(),
            created_at: 1,
        })
        .await
        .unwrap();
    for g in GROUPS {
        store.upsert_resource_group(&group(g, 0)).await.unwrap();
    }
    store
}

fn group(name: &str, n: usize) -> ResourceGroupRecord {
    ResourceGroupRecord {
        subscription_id: SUB.into(),
        name: name.into(),
        location: "westeurope".into(),
        tags: tags(n),
        created_at: 1,
    }
}

/// One random write through the store; returns the change it makes (`None` when the
/// store refused it, e.g. a duplicate credential subject).
async fn random_write(store: &dyn Store, rng: &mut Rng, step: usize) -> Option<Change> {
    let identities = store.list_identities(SUB, None).await.unwrap();
    let some_identity = |rng: &mut Rng| -> Option<IdentityRecord> {
        (!identities.is_empty()).then(|| identities[rng.below(identities.len())].clone())
    };
    match rng.below(10) {
        0..=2 => {
            let (g, n) = (rng.pick(&GROUPS), rng.pick(&NAMES));
            let rec = IdentityRecord {
                subscription_id: SUB.into(),
                resource_group: g.into(),
                name: n.into(),
                location: "westeurope".into(),
                tags: tags(step),
                tenant_id: TENANT.into(),
                principal_id: format!("p-{step}"),
                client_id: format!("c-{step}"),
                created_at: step as i64,
            };
            let (stored, _) = store.upsert_identity(&rec).await.unwrap();
            Some(Change::Identity {
                subscription_id: SUB.into(),
                resource_group: stored.resource_group,
                name: stored.name,
            })
        }
        3 => {
            // Any casing: names compare case-insensitively.
            let (g, n) = (rng.pick(&GROUPS), rng.pick(&NAMES));
            let (g, n) = (g.to_ascii_uppercase(), n.to_ascii_uppercase());
            store.delete_identity(SUB, &g, &n).await.unwrap();
            Some(Change::Identity {
                subscription_id: SUB.into(),
                resource_group: g,
                name: n,
            })
        }
        4 | 5 => {
            let i = some_identity(rng)?;
            let name = rng.pick(&["f1", "F2", "f3"]);
            let expression = (rng.below(3) == 0)
                .then(|| format!("claims['sub'] matches 'repo:org{}/*'", rng.below(16)));
            let fc = FederatedCredentialRecord {
                identity_principal_id: i.principal_id.clone(),
                name: name.into(),
                issuer: "https://issuer.example".into(),
                subject: expression
                    .is_none()
                    .then(|| format!("sub-{}", rng.below(4))),
                audiences: vec!["api://AzureADTokenExchange".into()],
                expression,
                created_at: step as i64,
                updated_at: step as i64,
            };
            store
                .upsert_federated_credential(&fc, Some(20))
                .await
                .ok()?;
            Some(Change::Credentials {
                identity_principal_id: i.principal_id,
            })
        }
        6 => {
            let i = some_identity(rng)?;
            store
                .delete_federated_credential(&i.principal_id, rng.pick(&["F1", "f2", "f3"]))
                .await
                .unwrap();
            Some(Change::Credentials {
                identity_principal_id: i.principal_id,
            })
        }
        7 => {
            // To an identity or to an outside principal, at the subscription, a group
            // or an identity (so deleting that identity takes it along).
            let principal = match some_identity(rng) {
                Some(i) if rng.below(2) == 0 => i.principal_id,
                _ => "outside-principal".to_string(),
            };
            let scope = match (rng.below(3), some_identity(rng)) {
                (0, _) => format!("/subscriptions/{SUB}"),
                (1, _) | (_, None) => {
                    format!("/subscriptions/{SUB}/resourceGroups/{}", rng.pick(&GROUPS))
                }
                (_, Some(i)) => keyless_store::scope::identity(SUB, &i.resource_group, &i.name),
            };
            let ra = RoleAssignmentRecord {
                name: format!("ra-{step}"),
                tenant_id: TENANT.into(),
                scope,
                role_definition_id: format!(
                    "/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/role-{}",
                    rng.below(3)
                ),
                principal_id: principal.clone(),
                principal_type: "ServicePrincipal".into(),
                description: None,
                created_at: step as i64,
            };
            store.insert_role_assignment(&ra).await.ok()?;
            Some(Change::RoleAssignments {
                principal_id: principal,
            })
        }
        8 => {
            let all = store.all_role_assignments().await.unwrap();
            let ra = all.get(rng.below(all.len().max(1)))?;
            let gone = store.delete_role_assignment(&ra.name).await.unwrap()?;
            Some(Change::RoleAssignments {
                principal_id: gone.principal_id,
            })
        }
        _ => {
            if rng.below(2) == 0 {
                let g = rng.pick(&["rg-a", "rg-d", "RG-E"]);
                let (stored, _) = store.upsert_resource_group(&group(g, step)).await.unwrap();
                Some(Change::ResourceGroup {
                    subscription_id: SUB.into(),
                    name: stored.name,
                })
            } else {
                let v = VaultRecord {
                    name: rng.pick(&["vault-a", "Vault-B"]).into(),
                    subscription_id: SUB.into(),
                    resource_group: "rg-a".into(),
                    tenant_id: TENANT.into(),
                    location: "westeurope".into(),
                    tags: tags(step),
                    soft_delete_days: 7,
                    purge_protection: false,
                    created_at: 1,
                };
                let (stored, _) = store.upsert_vault(&v).await.unwrap();
                Some(Change::Vault { name: stored.name })
            }
        }
    }
}

/// Everything a snapshot holds, in a comparable, ordered form.
#[derive(Debug, PartialEq)]
struct Normal {
    tenants: Vec<String>,
    subscriptions: BTreeMap<String, SubscriptionRecord>,
    by_client: BTreeMap<String, IdentityRecord>,
    by_name: BTreeMap<String, IdentityRecord>,
    credentials: BTreeMap<String, Vec<String>>,
    roles: BTreeMap<String, Vec<(RoleAssignmentRecord, String, String)>>,
    assignments: BTreeMap<String, RoleAssignmentRecord>,
    vaults: BTreeMap<String, String>,
    groups: BTreeMap<(String, String), String>,
}

fn normal(s: &Snapshot) -> Normal {
    let mut tenants: Vec<String> = s.tenants.iter().cloned().collect();
    tenants.sort();
    Normal {
        tenants,
        subscriptions: s
            .subscriptions
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        by_client: s
            .identities_by_client
            .iter()
            .map(|(k, v)| (k.to_string(), (**v).clone()))
            .collect(),
        by_name: s
            .identities_by_name
            .iter()
            .map(|(k, v)| (k.to_string(), (**v).clone()))
            .collect(),
        credentials: s
            .credentials
            .iter()
            .map(|(k, list)| {
                let mut v: Vec<String> = list.iter().map(|c| format!("{c:?}")).collect();
                v.sort();
                (k.to_string(), v)
            })
            .collect(),
        roles: s
            .roles
            .iter()
            .map(|(k, r)| {
                assert_eq!(r.assignments.len(), r.grants.len());
                let v = r
                    .assignments
                    .iter()
                    .zip(&r.grants)
                    .map(|(a, g)| ((**a).clone(), g.scope.clone(), g.role_id.clone()))
                    .collect();
                (k.clone(), v)
            })
            .collect(),
        assignments: s
            .assignments
            .iter()
            .map(|(k, v)| (k.clone(), (**v).clone()))
            .collect(),
        vaults: s
            .vaults
            .iter()
            .map(|(k, v)| (k.clone(), format!("{v:?}")))
            .collect(),
        groups: s
            .resource_groups
            .iter()
            .map(|(k, v)| (k.clone(), format!("{v:?}")))
            .collect(),
    }
}

/// The view equals a fresh load, every expression a credential uses is compiled, and
/// none that no credential uses any more is kept.
async fn assert_current(view: &View, store: &dyn Store, context: &str) {
    let fresh = Snapshot::load(store).await.unwrap();
    let held = view.get();
    assert_eq!(normal(&held), normal(&fresh), "{context}");
    let compiled = |s: &Snapshot| s.expressions.keys().cloned().collect::<BTreeSet<_>>();
    let uses = |s: &Snapshot| {
        s.expression_uses
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect::<BTreeMap<_, _>>()
    };
    assert_eq!(
        compiled(&held),
        compiled(&fresh),
        "{context}: compiled expressions"
    );
    assert_eq!(uses(&held), uses(&fresh), "{context}: expression uses");
    for list in held.credentials.values() {
        for src in list.iter().filter_map(|c| c.expression.as_ref()) {
            assert!(held.expressions.contains_key(src), "{context}: {src}");
        }
    }
}

#[tokio::test]
async fn applying_random_changes_equals_a_fresh_load() {
    for seed in 1..=6u64 {
        let store = seeded().await;
        let view = View::new(Snapshot::load(&*store).await.unwrap());
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut applied = 0;
        for step in 0..300 {
            if let Some(change) = random_write(&*store, &mut rng, step).await {
                // Through the text form, as a replica receives it.
                let change = Change::parse(&change.encode());
                assert_ne!(change, Change::Everything);
                view.apply(&*store, &change).await.unwrap();
                applied += 1;
            }
            if step % 50 == 49 {
                assert_current(&view, &*store, &format!("seed {seed} step {step}")).await;
            }
        }
        assert!(applied > 200, "seed {seed}: only {applied} writes applied");
        let held = view.get();
        assert!(
            !held.identities_by_client.is_empty() && !held.assignments.is_empty(),
            "seed {seed}: the sequence exercised little"
        );
    }
}

/// Full reloads running while writers apply their changes never lose one: a reload
/// re-applies what changed while it was loading.
#[tokio::test]
async fn concurrent_reloads_lose_no_change() {
    let store = seeded().await;
    let view = Arc::new(View::new(Snapshot::load(&*store).await.unwrap()));
    let reloading = {
        let (view, store) = (view.clone(), store.clone());
        tokio::spawn(async move {
            for _ in 0..40 {
                view.reload(&*store).await.unwrap();
                tokio::task::yield_now().await;
            }
        })
    };
    let mut writers = Vec::new();
    for w in 0..4u64 {
        let (view, store) = (view.clone(), store.clone());
        writers.push(tokio::spawn(async move {
            let mut rng = Rng((w + 7).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            for step in 0..100 {
                if let Some(change) =
                    random_write(&*store, &mut rng, (w as usize) * 1000 + step).await
                {
                    view.apply(&*store, &change).await.unwrap();
                }
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    reloading.await.unwrap();
    assert_current(&view, &*store, "after concurrent writers and reloads").await;
}

/// A change committed and applied while a full reload is between reading the tables and
/// swapping its snapshot in survives the swap (and was not blocked by the reload).
#[tokio::test]
async fn a_change_applied_during_a_reload_survives_it() {
    let store = seeded().await;
    let view = Arc::new(View::new(Snapshot::load(&*store).await.unwrap()));
    let (read, read_rx) = tokio::sync::oneshot::channel();
    let (proceed, proceed_rx) = tokio::sync::oneshot::channel::<()>();
    let reloading = {
        let (view, store) = (view.clone(), store.clone());
        tokio::spawn(async move {
            let load = async {
                let loaded = Snapshot::load(&*store).await;
                read.send(()).unwrap();
                proceed_rx.await.unwrap();
                loaded
            };
            view.reload_with(&*store, load).await.unwrap();
        })
    };
    read_rx.await.unwrap();
    let mut rng = Rng(3);
    let mut changes = 0;
    for step in 0..20 {
        if let Some(change) = random_write(&*store, &mut rng, step).await {
            view.apply(&*store, &change).await.unwrap();
            changes += 1;
        }
    }
    assert!(changes > 5);
    assert_current(&view, &*store, "applied while the reload waits").await;
    proceed.send(()).unwrap();
    reloading.await.unwrap();
    assert_current(&view, &*store, "after the reload swapped").await;
}
