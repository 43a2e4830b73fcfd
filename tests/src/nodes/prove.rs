//! The scenario the cluster test and `cargo xtask cluster` run: every check of issue 14's
//! "many nodes" proof, through the real HTTP API of both nodes.

#[allow(
    clippy::wildcard_imports,
    reason = "the scenario drives the cluster's own items"
)]
use super::*;

/// Identical authorize checks that warm any cache before each change.
const WARM_UP: usize = 3;
/// Last-admin races: requests at once, half to each node.
const RACING_REQUESTS: u64 = 20;
/// Writers of the load that node A's SIGKILL interrupts, half on each node.
const WRITERS: usize = 4;
/// Acknowledged adds before the kill, and on node B after it.
const ACKNOWLEDGED_BEFORE_KILL: usize = 100;
const ACKNOWLEDGED_AFTER_KILL: usize = 40;
/// Adds one writer tries at most, whatever happens.
const ADDS_PER_WRITER: usize = 500;
/// Bounds on the waits of the scenario (not assertions about speed).
const LOAD_BOUND: Duration = Duration::from_secs(90);
const RELAY_BOUND: Duration = Duration::from_secs(60);

/// Runs every check of issue 14's "Many nodes" across the cluster's two nodes, calling
/// `report(check, detail)` as each passes; a failed check panics with what it saw.
/// Node A is SIGKILLed on the way (`Cluster::restart_stopped_nodes` brings it back).
/// It runs on a multi-threaded runtime: its racers are tasks, and it waits for
/// `user-engine audit verify` in place.
pub async fn prove(cluster: &mut Cluster, report: &mut impl FnMut(&str, &str)) {
    let nodes = [cluster.nodes[0].base_url(), cluster.nodes[1].base_url()];
    let api = Api::default();
    let root = api.login(&nodes[0], ROOT_EMAIL, ROOT_PASSWORD).await;
    // Granting and revoking tenant_admin and changing bindings need aal2; the root's
    // session on A is raised by a confirmation on B.
    api.enrol_totp(&nodes[0], &nodes[1], &root).await;
    let scenario = Scenario {
        api,
        nodes,
        root,
        login_per_minute: cluster.options.login_per_minute,
    };

    let detail = scenario.fresh_decisions().await;
    report(
        "a change on one node shows in the very next decision on the other",
        &detail,
    );
    let detail = scenario.idempotency().await;
    report(
        "an Idempotency-Key retry on the other node replays the first answer",
        &detail,
    );
    let detail = scenario.login_throttles().await;
    report("the login throttles hold across both nodes", &detail);
    let detail = scenario.totp_throttle().await;
    report("the TOTP throttle holds across both nodes", &detail);
    let detail = scenario.last_admin_races(cluster).await;
    report(
        "last-admin races split over both nodes leave one active admin",
        &detail,
    );
    let detail = scenario.sigkill_under_load(cluster).await;
    report(
        "a SIGKILL of node A under load loses and half-writes nothing",
        &detail,
    );
    let detail = wait_for_relays(cluster).await;
    report("both relays together deliver every outbox event", &detail);
    let detail = gapless_and_in_commit_order(cluster).await;
    report(
        "audit seqs and feed positions are gapless and in commit order",
        &detail,
    );
    let detail = audit_verifies(cluster).await;
    report("user-engine audit verify passes", &detail);
    if cluster.pgbouncer.is_some() {
        let detail = pooled(cluster).await;
        report(
            "nodes and relays reached PostgreSQL only through PgBouncer",
            &detail,
        );
    }
}

/// What the checks share: the client, both nodes' URLs and the root's `aal2` session
/// (made on A, valid on both: sessions live in the database).
#[derive(Debug)]
struct Scenario {
    api: Api,
    /// A's and B's base URLs.
    nodes: [String; 2],
    root: String,
    login_per_minute: u32,
}

/// What an authorize check must answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Allow,
    Deny(&'static str),
}

/// Freshness: the role the member holds and the scope every check asks about.
const READER: &str = "reader";
const READ_SCOPE: &str = "members:read";

impl Scenario {
    fn a(&self) -> &str {
        &self.nodes[0]
    }

    fn b(&self) -> &str {
        &self.nodes[1]
    }

    /// Node `index % 2`.
    fn node(&self, index: usize) -> &str {
        &self.nodes[index % 2]
    }

    /// Creates an active user with [`PASSWORD`] on `node`; returns its id.
    async fn new_user(&self, node: &str, email: &str) -> String {
        let created = self
            .api
            .post(
                node,
                "/v1/users",
                &self.root,
                &json!({ "email": email, "password": PASSWORD }),
            )
            .await;
        expect_status(&created, StatusCode::CREATED, &format!("user {email}"));
        text(&created.body, "id")
    }

    /// Creates tenant `tenant` on `node` with a new user as its first admin; returns the
    /// admin's id.
    async fn new_tenant(&self, node: &str, tenant: &str) -> String {
        let admin = self
            .new_user(node, &format!("admin@{tenant}.example"))
            .await;
        let created = self
            .api
            .post(
                node,
                "/v1/tenants",
                &self.root,
                &json!({ "id": tenant, "display_name": tenant, "admin": { "user_id": admin } }),
            )
            .await;
        expect_status(&created, StatusCode::CREATED, &format!("tenant {tenant}"));
        admin
    }

    /// One authorize call on `node` about `user` for [`READ_SCOPE`], checked.
    async fn check(&self, node: &str, tenant: &str, user: &str, expected: Decision, what: &str) {
        let reply = self
            .api
            .post(
                node,
                &format!("/v1/tenants/{tenant}/authorize"),
                &self.root,
                &json!({ "subject": { "user_id": user, "assurance": "aal1" }, "scope": READ_SCOPE }),
            )
            .await;
        expect_status(&reply, StatusCode::OK, what);
        let answer = (
            reply.body["decision"].as_str(),
            reply.body["reason"].as_str(),
        );
        match expected {
            Decision::Allow => assert_eq!(
                answer,
                (Some("allow"), Some("role_binding")),
                "{what}: {reply:?}"
            ),
            Decision::Deny(reason) => {
                assert_eq!(answer, (Some("deny"), Some(reason)), "{what}: {reply:?}");
            }
        }
    }

    /// (a) Each change made on one node shows in the very next decision on the other,
    /// however many identical decisions each node served before it: no node keeps a
    /// decision, or facts, the other made stale.
    async fn fresh_decisions(&self) -> String {
        let tenant = "fresh";
        self.new_tenant(self.a(), tenant).await;
        let member = self.new_user(self.b(), "member@fresh.example").await;
        let bound = self
            .api
            .send(
                self.a(),
                Method::PUT,
                &format!("/v1/tenants/{tenant}/roles/{READER}"),
                Some(&self.root),
                Some(&json!({ "scopes": [READ_SCOPE] })),
                &[],
            )
            .await;
        expect_status(&bound, StatusCode::OK, "the reader binding");
        let added = self
            .api
            .post(
                self.b(),
                &format!("/v1/tenants/{tenant}/members"),
                &self.root,
                &json!({ "user_id": member, "roles": [READER] }),
            )
            .await;
        expect_status(&added, StatusCode::CREATED, "the member");

        let member_path = format!("/v1/tenants/{tenant}/members/{member}");
        let role_path = format!("/v1/tenants/{tenant}/roles/{READER}");
        let user_path = format!("/v1/users/{member}");
        let tenant_path = format!("/v1/tenants/{tenant}");
        let changes: Vec<(&str, Method, &str, Option<Value>, Decision)> = vec![
            (
                "the account suspended",
                Method::PATCH,
                &member_path,
                Some(json!({ "state": "suspended" })),
                Decision::Deny("account_suspended"),
            ),
            (
                "the account reactivated",
                Method::PATCH,
                &member_path,
                Some(json!({ "state": "active" })),
                Decision::Allow,
            ),
            (
                "the binding narrowed",
                Method::PUT,
                &role_path,
                Some(json!({ "scopes": ["tenant:read"] })),
                Decision::Deny("missing_scope"),
            ),
            (
                "the binding restored",
                Method::PUT,
                &role_path,
                Some(json!({ "scopes": [READ_SCOPE] })),
                Decision::Allow,
            ),
            (
                "the role taken away",
                Method::PATCH,
                &member_path,
                Some(json!({ "roles": ["member"] })),
                Decision::Deny("missing_scope"),
            ),
            (
                "the role given back",
                Method::PATCH,
                &member_path,
                Some(json!({ "roles": [READER] })),
                Decision::Allow,
            ),
            (
                "the member removed",
                Method::DELETE,
                &member_path,
                None,
                Decision::Deny("not_a_member"),
            ),
            (
                "the member added again",
                Method::POST,
                "/v1/tenants/fresh/members",
                Some(json!({ "user_id": member, "roles": [READER] })),
                Decision::Allow,
            ),
            (
                "the user suspended on the platform",
                Method::PATCH,
                &user_path,
                Some(json!({ "state": "suspended" })),
                Decision::Deny("subject_suspended"),
            ),
            (
                "the user reactivated",
                Method::PATCH,
                &user_path,
                Some(json!({ "state": "active" })),
                Decision::Allow,
            ),
            (
                "the tenant suspended",
                Method::PATCH,
                &tenant_path,
                Some(json!({ "state": "suspended" })),
                Decision::Deny("tenant_suspended"),
            ),
            (
                "the tenant reactivated",
                Method::PATCH,
                &tenant_path,
                Some(json!({ "state": "active" })),
                Decision::Allow,
            ),
        ];
        let count = changes.len();
        let mut current = Decision::Allow;
        for (index, (what, method, path, body, expected)) in changes.into_iter().enumerate() {
            // Changes alternate between the nodes; the decision is asked of the other.
            let (changer, checker) = (self.node(index), self.node(index + 1));
            for round in 0..WARM_UP {
                self.check(
                    checker,
                    tenant,
                    &member,
                    current,
                    &format!("warm-up {round} before {what}"),
                )
                .await;
            }
            self.check(
                changer,
                tenant,
                &member,
                current,
                &format!("before {what}, on the changing node"),
            )
            .await;
            let changed = self
                .api
                .send(changer, method, path, Some(&self.root), body.as_ref(), &[])
                .await;
            expect_success(&changed, what);
            self.check(
                checker,
                tenant,
                &member,
                expected,
                &format!("the next decision after {what}, on the other node"),
            )
            .await;
            self.check(
                changer,
                tenant,
                &member,
                expected,
                &format!("after {what}, on the changing node"),
            )
            .await;
            current = expected;
        }
        format!(
            "{count} changes, each made on one node and decided next on the other after \
             {WARM_UP} identical decisions"
        )
    }

    /// (b) A POST with an `Idempotency-Key` on one node, retried on the other, replays
    /// the first answer and creates nothing more; the same key with another body is
    /// refused; the same request sent to both nodes at once runs once.
    async fn idempotency(&self) -> String {
        let tenant = "fresh";
        let path = format!("/v1/tenants/{tenant}/members");
        let body = json!({ "email": "idem@fresh.example", "roles": ["member"] });
        let key = [("idempotency-key", "cluster-idem-1")];
        let first = self
            .api
            .send(
                self.a(),
                Method::POST,
                &path,
                Some(&self.root),
                Some(&body),
                &key,
            )
            .await;
        expect_status(&first, StatusCode::CREATED, "the first add");
        let replay = self
            .api
            .send(
                self.b(),
                Method::POST,
                &path,
                Some(&self.root),
                Some(&body),
                &key,
            )
            .await;
        assert_eq!(
            (replay.status, &replay.body),
            (first.status, &first.body),
            "the retry on B replays A's answer: {replay:?}"
        );
        assert_eq!(
            replay
                .headers
                .get("idempotent-replayed")
                .and_then(|value| value.to_str().ok()),
            Some("true"),
            "{replay:?}"
        );
        let reused = self
            .api
            .send(
                self.b(),
                Method::POST,
                &path,
                Some(&self.root),
                Some(&json!({ "email": "other@fresh.example", "roles": ["member"] })),
                &key,
            )
            .await;
        expect_problem(
            &reused,
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "the same key with another body on B",
        );

        // The same request to both nodes at once: one runs, the other replays it or is
        // told it is still running (409) and replays it when retried.
        let pairs = 5;
        let mut replays_at_once = 0;
        for pair in 0..pairs {
            let body =
                json!({ "email": format!("idem-{pair}@fresh.example"), "roles": ["member"] });
            let key_value = format!("cluster-idem-race-{pair}");
            let key = [("idempotency-key", key_value.as_str())];
            let (on_a, on_b) = tokio::join!(
                self.api.send(
                    self.a(),
                    Method::POST,
                    &path,
                    Some(&self.root),
                    Some(&body),
                    &key
                ),
                self.api.send(
                    self.b(),
                    Method::POST,
                    &path,
                    Some(&self.root),
                    Some(&body),
                    &key
                ),
            );
            let replayed = |reply: &Reply| reply.headers.contains_key("idempotent-replayed");
            let (ran, other, other_node) = if replayed(&on_a) || on_a.status == StatusCode::CONFLICT
            {
                (on_b, on_a, self.a())
            } else {
                (on_a, on_b, self.b())
            };
            expect_status(&ran, StatusCode::CREATED, "the add that ran");
            assert!(
                !replayed(&ran),
                "exactly one of the two ran: {ran:?} {other:?}"
            );
            let other = if other.status == StatusCode::CONFLICT {
                expect_problem(
                    &other,
                    StatusCode::CONFLICT,
                    "idempotency_key_in_use",
                    "the add sent at once",
                );
                self.api
                    .send(
                        other_node,
                        Method::POST,
                        &path,
                        Some(&self.root),
                        Some(&body),
                        &key,
                    )
                    .await
            } else {
                replays_at_once += 1;
                other
            };
            assert!(replayed(&other), "the other replays: {other:?}");
            assert_eq!(
                (other.status, &other.body),
                (ran.status, &ran.body),
                "the other replays the add that ran"
            );
        }
        let members = self.api.all(self.b(), &path, &self.root).await;
        let mut emails: BTreeMap<String, usize> = BTreeMap::new();
        for member in &members {
            *emails.entry(text(member, "email")).or_default() += 1;
        }
        assert_eq!(emails.get("idem@fresh.example"), Some(&1), "{emails:?}");
        assert_eq!(emails.get("other@fresh.example"), None, "{emails:?}");
        for pair in 0..pairs {
            assert_eq!(
                emails.get(&format!("idem-{pair}@fresh.example")),
                Some(&1),
                "one member per key: {emails:?}"
            );
        }
        format!(
            "replayed on B with A's body; other body 422; {pairs} keys sent to both nodes at once \
             each ran once ({replays_at_once} replayed at once, the rest after a 409)"
        )
    }

    /// (c) Password logins split over both nodes are refused past the limit in total,
    /// per email (from ever new addresses) and per address (for ever new emails).
    async fn login_throttles(&self) -> String {
        let limit = usize::try_from(self.login_per_minute).expect("a small limit");
        let email = "throttled@fresh.example";
        self.new_user(self.a(), email).await;
        for attempt in 0..2 * limit {
            let address = self.api.fresh_address();
            let reply = self
                .api
                .login_from(self.node(attempt), email, "wrong password 123", &address)
                .await;
            let what = format!(
                "wrong password {attempt} for one email, on node {}",
                attempt % 2
            );
            if attempt < limit {
                expect_problem(
                    &reply,
                    StatusCode::UNAUTHORIZED,
                    "invalid_credentials",
                    &what,
                );
            } else {
                expect_problem(&reply, StatusCode::TOO_MANY_REQUESTS, "rate_limited", &what);
            }
        }
        let address = self.api.fresh_address();
        let right = self
            .api
            .login_from(self.b(), email, PASSWORD, &address)
            .await;
        expect_problem(
            &right,
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "the right password once the email's window is full",
        );

        let address = self.api.fresh_address();
        for attempt in 0..2 * limit {
            let reply = self
                .api
                .login_from(
                    self.node(attempt + 1),
                    &format!("nobody-{attempt}@fresh.example"),
                    "wrong password 123",
                    &address,
                )
                .await;
            let what = format!(
                "login {attempt} from one address, on node {}",
                (attempt + 1) % 2
            );
            if attempt < limit {
                expect_problem(
                    &reply,
                    StatusCode::UNAUTHORIZED,
                    "invalid_credentials",
                    &what,
                );
            } else {
                expect_problem(&reply, StatusCode::TOO_MANY_REQUESTS, "rate_limited", &what);
            }
        }
        format!(
            "limit {limit}/min: attempts alternating A and B refused 429 from the {}th on, per email and per address",
            limit + 1
        )
    }

    /// (c) Wrong TOTP codes of one user split over both nodes are refused past five in
    /// total (SPEC §3.6), and then the right code is refused too.
    async fn totp_throttle(&self) -> String {
        let limit = 5;
        let email = "totp@fresh.example";
        self.new_user(self.b(), email).await;
        let session = self.api.login(self.b(), email, PASSWORD).await;
        let authenticator = self.api.enrol_totp(self.b(), self.a(), &session).await;
        let wrong = authenticator.wrong_code();
        for attempt in 0..2 * limit {
            let reply = self
                .api
                .post(
                    self.node(attempt),
                    "/v1/auth/totp",
                    &session,
                    &json!({ "code": wrong }),
                )
                .await;
            let what = format!("wrong code {attempt}, on node {}", attempt % 2);
            if attempt < limit {
                expect_problem(&reply, StatusCode::UNAUTHORIZED, "invalid_totp", &what);
            } else {
                expect_problem(&reply, StatusCode::TOO_MANY_REQUESTS, "rate_limited", &what);
            }
        }
        let right = self
            .api
            .post(
                self.b(),
                "/v1/auth/totp",
                &session,
                &json!({ "code": authenticator.code(0) }),
            )
            .await;
        expect_problem(
            &right,
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "the right code once the window is full",
        );
        format!(
            "wrong codes alternating A and B refused 429 from the {}th on; then the right code too",
            limit + 1
        )
    }

    /// (d) Three admins attacked at once by [`RACING_REQUESTS`] demotions, suspensions
    /// and removals, half sent to each node: exactly one active admin remains, 409
    /// `last_tenant_admin` answers every attack on it and no other, and each request
    /// left one audit record saying what it answered.
    async fn last_admin_races(&self, cluster: &Cluster) -> String {
        let tenant = "race";
        let first = self.new_tenant(self.a(), tenant).await;
        let mut admins = vec![first];
        for index in 1..3 {
            let user = self
                .new_user(self.node(index), &format!("admin{index}@race.example"))
                .await;
            let added = self
                .api
                .post(
                    self.node(index),
                    &format!("/v1/tenants/{tenant}/members"),
                    &self.root,
                    &json!({ "user_id": user, "roles": ["tenant_admin"] }),
                )
                .await;
            expect_status(&added, StatusCode::CREATED, "another admin");
            admins.push(user);
        }
        let barrier = Arc::new(tokio::sync::Barrier::new(RACING_REQUESTS as usize));
        let mut attempts = Vec::new();
        for index in 0..RACING_REQUESTS {
            let target = admins[(index % 3) as usize].clone();
            let path = format!("/v1/tenants/{tenant}/members/{target}");
            let (method, body, attack) = match mix(index) % 3 {
                0 => (
                    Method::PATCH,
                    Some(json!({ "roles": ["member"] })),
                    "demote",
                ),
                1 => (
                    Method::PATCH,
                    Some(json!({ "state": "suspended" })),
                    "suspend",
                ),
                _ => (Method::DELETE, None, "remove"),
            };
            let node = self.nodes[(index % 2) as usize].clone();
            let request_id = format!("cluster-race-{index}");
            let (api, root, barrier) = (self.api.clone(), self.root.clone(), barrier.clone());
            attempts.push(tokio::spawn(async move {
                barrier.wait().await;
                let reply = api
                    .send(
                        &node,
                        method,
                        &path,
                        Some(&root),
                        body.as_ref(),
                        &[("x-request-id", &request_id)],
                    )
                    .await;
                (request_id, target, attack, reply)
            }));
        }
        let mut results = Vec::new();
        for attempt in attempts {
            results.push(attempt.await.expect("a racing request ran to its end"));
        }
        for (request_id, target, attack, reply) in &results {
            let legitimate = reply.status.is_success()
                || matches!(
                    (reply.status, reply.code()),
                    (StatusCode::CONFLICT, Some("last_tenant_admin"))
                        | (StatusCode::NOT_FOUND, Some("member_not_found"))
                );
            assert!(legitimate, "{request_id} ({attack} {target}): {reply:?}");
        }
        let members = self
            .api
            .all(
                self.b(),
                &format!("/v1/tenants/{tenant}/members"),
                &self.root,
            )
            .await;
        let survivors: Vec<String> = members
            .iter()
            .filter(|member| {
                member["state"] == "active"
                    && member["roles"]
                        .as_array()
                        .is_some_and(|roles| roles.iter().any(|role| role == "tenant_admin"))
            })
            .map(|member| text(member, "user_id"))
            .collect();
        assert_eq!(
            survivors.len(),
            1,
            "every admin was attacked, so exactly one active admin remains: {members:?}"
        );
        let survivor = &survivors[0];
        for (request_id, target, attack, reply) in &results {
            let refused_as_last = reply.code() == Some("last_tenant_admin");
            assert_eq!(
                refused_as_last,
                target == survivor,
                "{request_id} ({attack} {target}): last_tenant_admin answers every attack on the \
                 survivor and no other: {reply:?}"
            );
        }
        // Each request left exactly one record: allowed for a 2xx, else denied with the
        // answer's code as its reason.
        let mut owner = cluster.owner_connection().await;
        let records = sqlx::query(
            "select request_id, outcome, reason from audit_records \
             where partition = $1 and request_id like 'cluster-race-%'",
        )
        .bind(tenant)
        .fetch_all(&mut owner)
        .await
        .expect("the race's audit records");
        let mut by_request: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for record in &records {
            by_request
                .entry(record.get("request_id"))
                .or_default()
                .push((record.get("outcome"), record.get("reason")));
        }
        let mut allowed = 0;
        for (request_id, _, _, reply) in &results {
            let expected = if reply.status.is_success() {
                allowed += 1;
                ("allowed", None)
            } else {
                ("denied", reply.code())
            };
            let found = by_request.get(request_id).cloned().unwrap_or_default();
            assert_eq!(
                found.len(),
                1,
                "{request_id} left one audit record: {found:?}"
            );
            assert_eq!(
                found[0].0, expected.0,
                "{request_id}: {found:?} for {reply:?}"
            );
            if let Some(code) = expected.1 {
                assert_eq!(
                    found[0].1, code,
                    "{request_id}: the record's reason is the answer's code"
                );
            }
        }
        owner.close().await.ok();
        format!(
            "{RACING_REQUESTS} requests ({} per node): {allowed} applied, {} refused; one admin left",
            RACING_REQUESTS / 2,
            RACING_REQUESTS as usize - allowed
        )
    }

    /// (h) [`WRITERS`] writers add members, half through each node; once
    /// [`ACKNOWLEDGED_BEFORE_KILL`] adds are acknowledged node A is SIGKILLed and B's
    /// writers go on. Every acknowledged add is there with its audit record and event,
    /// every member there has exactly both (nothing half-written), and B answered 2xx
    /// throughout.
    async fn sigkill_under_load(&self, cluster: &mut Cluster) -> String {
        let tenant = "load";
        let first_admin = self.new_tenant(self.b(), tenant).await;
        let killed = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let acknowledged: Arc<Mutex<Vec<(String, usize, bool)>>> = Arc::default();
        let failures: Arc<Mutex<Vec<String>>> = Arc::default();
        let mut writers = Vec::new();
        for writer in 0..WRITERS {
            let node_index = writer % 2;
            let node = self.nodes[node_index].clone();
            let (api, root) = (self.api.clone(), self.root.clone());
            let (killed, stop) = (killed.clone(), stop.clone());
            let (acknowledged, failures) = (acknowledged.clone(), failures.clone());
            writers.push(tokio::spawn(async move {
                let path = format!("/v1/tenants/{tenant}/members");
                for index in 0..ADDS_PER_WRITER {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let after_kill = killed.load(Ordering::SeqCst);
                    let body = json!({ "email": format!("w{writer}-{index}@load.example"), "roles": ["member"] });
                    match api.try_send(&node, Method::POST, &path, Some(&root), Some(&body), &[]).await {
                        Ok(reply) if reply.status == StatusCode::CREATED => {
                            acknowledged.lock().expect("the acknowledged adds").push((
                                text(&reply.body, "user_id"),
                                node_index,
                                after_kill,
                            ));
                        }
                        Ok(reply) => {
                            failures.lock().expect("failures").push(format!("writer {writer} on node {node_index}: {reply:?}"));
                            return;
                        }
                        // Node A is gone: what was in flight is unknown, not acknowledged.
                        Err(_) if node_index == 0 && killed.load(Ordering::SeqCst) => return,
                        Err(error) => {
                            failures.lock().expect("failures").push(format!("writer {writer} on node {node_index}: {error}"));
                            return;
                        }
                    }
                }
            }));
        }
        let count = |after_kill: bool| {
            acknowledged
                .lock()
                .expect("the acknowledged adds")
                .iter()
                .filter(|(_, node, after)| !after_kill || (*after && *node == 1))
                .count()
        };
        let started = Instant::now();
        while count(false) < ACKNOWLEDGED_BEFORE_KILL {
            assert!(
                failures.lock().expect("failures").is_empty(),
                "{:?}",
                failures.lock()
            );
            assert!(
                started.elapsed() < LOAD_BOUND,
                "only {} adds acknowledged within {LOAD_BOUND:?}",
                count(false)
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        killed.store(true, Ordering::SeqCst);
        cluster.kill_node(0);
        let killed_at = Instant::now();
        while count(true) < ACKNOWLEDGED_AFTER_KILL {
            assert!(
                failures.lock().expect("failures").is_empty(),
                "node B after the kill: {:?}",
                failures.lock()
            );
            assert!(
                killed_at.elapsed() < LOAD_BOUND,
                "node B acknowledged only {} adds within {LOAD_BOUND:?} of the kill",
                count(true)
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        stop.store(true, Ordering::SeqCst);
        for writer in writers {
            writer.await.expect("a writer ran to its end");
        }
        let failures = failures.lock().expect("failures").clone();
        assert!(failures.is_empty(), "{failures:?}");
        let acknowledged = acknowledged.lock().expect("the acknowledged adds").clone();

        let mut owner = cluster.owner_connection().await;
        let members: BTreeSet<String> =
            sqlx::query("select user_id::text as id from accounts where tenant_id = $1")
                .bind(tenant)
                .fetch_all(&mut owner)
                .await
                .expect("the members")
                .iter()
                .map(|row| row.get("id"))
                .collect();
        let counts = |rows: Vec<sqlx::postgres::PgRow>| {
            let mut counts: BTreeMap<String, usize> = BTreeMap::new();
            for row in rows {
                *counts.entry(row.get("id")).or_default() += 1;
            }
            counts
        };
        let records = counts(
            sqlx::query(
                "select target_id as id from audit_records \
                 where partition = $1 and action = 'member.add' and outcome = 'allowed'",
            )
            .bind(tenant)
            .fetch_all(&mut owner)
            .await
            .expect("the adds' records"),
        );
        let events = counts(
            sqlx::query(
                "select subject as id from outbox_events \
                 where partition = $1 and event_type = 'membership.added'",
            )
            .bind(tenant)
            .fetch_all(&mut owner)
            .await
            .expect("the adds' events"),
        );
        owner.close().await.ok();
        for (user, node, _) in &acknowledged {
            assert!(
                members.contains(user),
                "{user}, acknowledged by node {node}, is missing"
            );
            assert_eq!(records.get(user), Some(&1), "the audit record of {user}");
            assert_eq!(events.get(user), Some(&1), "the event of {user}");
        }
        assert!(records
            .values()
            .chain(events.values())
            .all(|count| *count == 1));
        let with_event: BTreeSet<String> = events.keys().cloned().collect();
        assert_eq!(
            with_event, members,
            "one membership.added event per member, and no other"
        );
        let with_record: BTreeSet<String> = records.keys().cloned().collect();
        let without_record: Vec<&String> = members.difference(&with_record).collect();
        assert_eq!(
            without_record,
            vec![&first_admin],
            "only the first admin came without member.add"
        );
        let unanswered = members.len() - 1 - acknowledged.len();
        assert!(
            unanswered <= WRITERS,
            "{unanswered} adds committed without an answer: more than the writers in flight"
        );
        let after_kill = count(true);
        let by_a = acknowledged
            .iter()
            .filter(|(_, node, _)| *node == 0)
            .count();
        assert!(by_a > 0, "node A acknowledged no add before its kill");
        format!(
            "{} adds acknowledged ({by_a} by A, {} by B before A's SIGKILL, {after_kill} by B after), \
             {unanswered} committed unanswered; each member has one record and one event",
            acknowledged.len(),
            acknowledged.len() - by_a - after_kill
        )
    }
}

/// (g) Waits (bounded) until no outbox event is unpublished, then reads the whole stream:
/// the events delivered, deduplicated by id, are exactly the outbox's.
async fn wait_for_relays(cluster: &Cluster) -> String {
    let mut owner = cluster.owner_connection().await;
    let started = Instant::now();
    loop {
        let unpublished: i64 =
            sqlx::query_scalar("select count(*) from outbox_events where published_at is null")
                .fetch_one(&mut owner)
                .await
                .expect("the unpublished events");
        if unpublished == 0 {
            break;
        }
        assert!(
            started.elapsed() < RELAY_BOUND,
            "{unpublished} events still unpublished after {RELAY_BOUND:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let outbox: BTreeSet<String> =
        sqlx::query_scalar::<_, String>("select event_id::text from outbox_events")
            .fetch_all(&mut owner)
            .await
            .expect("the outbox's event ids")
            .into_iter()
            .collect();
    owner.close().await.ok();
    let client = async_nats::connect(cluster.nats.url())
        .await
        .expect("the private NATS");
    let stream = TestStream {
        name: adapters_nats::DEFAULT_STREAM.to_owned(),
        prefix: adapters_nats::DEFAULT_SUBJECT_PREFIX.to_owned(),
        js: async_nats::jetstream::new(client),
    };
    let messages = stream.messages().await;
    for message in &messages {
        assert_eq!(
            message.msg_id.as_deref(),
            Some(message.id()),
            "Nats-Msg-Id is the event id: {message:?}"
        );
        assert!(
            message
                .subject
                .starts_with(&format!("{}.", adapters_nats::DEFAULT_SUBJECT_PREFIX)),
            "{message:?}"
        );
    }
    let delivered: BTreeSet<String> = messages
        .iter()
        .map(|message| message.id().to_owned())
        .collect();
    let missing: Vec<&String> = outbox.difference(&delivered).take(5).collect();
    let unknown: Vec<&String> = delivered.difference(&outbox).take(5).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "delivered ≠ outbox: {} missing (e.g. {missing:?}), {} not in the outbox (e.g. {unknown:?})",
        outbox.difference(&delivered).count(),
        delivered.difference(&outbox).count()
    );
    let relays: Vec<String> = cluster
        .relay_counts()
        .into_iter()
        .map(|(name, relayed, warnings)| {
            format!("{name} published {relayed} ({warnings} warnings)")
        })
        .collect();
    format!(
        "{} events in the outbox, {} messages on the stream, {} distinct ids: exactly the outbox; {}",
        outbox.len(),
        messages.len(),
        delivered.len(),
        relays.join(", ")
    )
}

/// (f) In every partition audit seqs and feed positions are 1..=n and the heads agree;
/// and the two orders, each assigned under the partition's lock, agree: sorted by the
/// audit seq of each member add, the positions of their events rise.
async fn gapless_and_in_commit_order(cluster: &Cluster) -> String {
    let mut owner = cluster.owner_connection().await;
    let numbers = |rows: Vec<sqlx::postgres::PgRow>| {
        let mut numbers: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for row in rows {
            numbers.entry(row.get(0)).or_default().push(row.get(1));
        }
        numbers
    };
    let seqs = numbers(
        sqlx::query("select partition, seq from audit_records order by partition, seq")
            .fetch_all(&mut owner)
            .await
            .expect("audit seqs"),
    );
    let positions = numbers(
        sqlx::query("select partition, position from outbox_events order by partition, position")
            .fetch_all(&mut owner)
            .await
            .expect("feed positions"),
    );
    let heads = sqlx::query("select partition, audit_seq, event_position from partition_heads")
        .fetch_all(&mut owner)
        .await
        .expect("partition heads");
    for (what, numbers) in [("audit seqs", &seqs), ("feed positions", &positions)] {
        for (partition, numbers) in numbers {
            let expected: Vec<i64> = (1..=i64::try_from(numbers.len()).expect("a count")).collect();
            assert_eq!(numbers, &expected, "{what} of {partition} must be 1..=n");
        }
    }
    for head in &heads {
        let partition: String = head.get(0);
        let count = |numbers: &BTreeMap<String, Vec<i64>>| {
            i64::try_from(numbers.get(&partition).map_or(0, Vec::len)).expect("a count")
        };
        assert_eq!(
            head.get::<i64, _>(1),
            count(&seqs),
            "the audit head of {partition}"
        );
        assert_eq!(
            head.get::<i64, _>(2),
            count(&positions),
            "the feed head of {partition}"
        );
    }

    let adds = sqlx::query(
        "select partition, target_id, seq from audit_records \
         where action = 'member.add' and outcome = 'allowed' order by partition, seq",
    )
    .fetch_all(&mut owner)
    .await
    .expect("member adds");
    let added = sqlx::query(
        "select partition, subject, position from outbox_events \
         where event_type = 'membership.added' order by partition, position",
    )
    .fetch_all(&mut owner)
    .await
    .expect("membership.added events");
    owner.close().await.ok();
    let by_member = |rows: &[sqlx::postgres::PgRow]| {
        let mut by_member: BTreeMap<(String, String), Vec<i64>> = BTreeMap::new();
        for row in rows {
            by_member
                .entry((row.get(0), row.get(1)))
                .or_default()
                .push(row.get(2));
        }
        by_member
    };
    let (add_seqs, event_positions) = (by_member(&adds), by_member(&added));
    // The first admin of a tenant comes with tenant.create, not member.add.
    let mut pairs: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    for (key, seqs) in &add_seqs {
        let positions = event_positions.get(key).map_or(&[][..], Vec::as_slice);
        let offset = positions.len().checked_sub(seqs.len()).unwrap_or_else(|| {
            panic!(
                "{key:?}: {} adds but {} events",
                seqs.len(),
                positions.len()
            )
        });
        assert!(offset <= 1, "{key:?}: {seqs:?} adds, {positions:?} events");
        for (seq, position) in seqs.iter().zip(&positions[offset..]) {
            pairs
                .entry(key.0.clone())
                .or_default()
                .push((*seq, *position));
        }
    }
    let mut compared = 0;
    for (partition, mut pairs) in pairs {
        pairs.sort_unstable();
        compared += pairs.len();
        assert!(
            pairs.windows(2).all(|pair| pair[0].1 < pair[1].1),
            "{partition}: in audit seq order, the events' positions must rise: {pairs:?}"
        );
    }
    format!(
        "{} partitions, {} audit records, {} events; {compared} member adds in the same order by seq and position",
        heads.len(),
        seqs.values().map(Vec::len).sum::<usize>(),
        positions.values().map(Vec::len).sum::<usize>()
    )
}

/// (e) `user-engine audit verify` against PostgreSQL itself exits 0, every trail intact.
async fn audit_verifies(cluster: &Cluster) -> String {
    let (code, report) = tokio::task::block_in_place(|| cluster.audit_verify());
    assert_eq!(code, Some(0), "user-engine audit verify: {report}");
    for tenant in ["fresh", "race", "load"] {
        assert!(
            report
                .lines()
                .any(|line| line.starts_with(&format!("{tenant}: ")) && line.ends_with("intact")),
            "{tenant}'s trail: {report}"
        );
    }
    let trails = report
        .lines()
        .filter(|line| line.ends_with("intact"))
        .count();
    let warnings: Vec<String> = cluster
        .node_warnings()
        .into_iter()
        .map(|(node, warnings)| format!("{node} logged {warnings} warnings"))
        .collect();
    format!("exit 0, {trails} trails intact; {}", warnings.join(", "))
}

/// The nodes' and relays' pools hold more connections than PgBouncer's pool for the
/// database, and PostgreSQL never saw more than that pool: every query went through the
/// pooler, in transaction mode.
async fn pooled(cluster: &Cluster) -> String {
    let mut owner = cluster.owner_connection().await;
    let backends: i64 = sqlx::query_scalar(
        "select count(*) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()",
    )
    .bind(&cluster.db.name)
    .fetch_one(&mut owner)
    .await
    .expect("the database's backends");
    owner.close().await.ok();
    assert!(
        backends <= i64::from(POOLER_SERVER_CONNECTIONS),
        "{backends} connections to the database, more than PgBouncer's pool of \
         {POOLER_SERVER_CONNECTIONS}: something connected around it"
    );
    format!(
        "{backends} server connections (pool of {POOLER_SERVER_CONNECTIONS}) behind 2 nodes of \
         {NODE_CONNECTIONS} and 2 relays"
    )
}
