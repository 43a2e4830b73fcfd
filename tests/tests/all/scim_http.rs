//! SCIM 2.0 provisioning (SPEC §8) over real HTTP, as identity providers drive it, with
//! `/v1` as the truth after every step: Okta's and Entra ID's published request flows
//! replayed against a tenant's `/scim/v2/tenants/{t}` base; tenant isolation (another
//! tenant's key learns and changes nothing, SPEC §3.1 and §3.6); the rules of SPEC §3.3
//! through SCIM (last tenant admin, `tenant_admin` not grantable, nobody grants more than
//! they hold, `If-Match`); SCIM error bodies; the audit records and events every change
//! leaves (SPEC §6); and the uniqueness and precondition rules under concurrency. Each
//! test runs on PostgreSQL and on the embedded SQLite store.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tests::http::{
    enrol_totp, put, reply, spawn_app_on, tenant_with_admin, text, Reply, StoreKind, TestApp,
};

const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENTERPRISE_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const SCIM_JSON: &str = "application/scim+json";

// ---------------------------------------------------------------------------------------
// Requests.

/// Percent-encodes a query parameter's value (everything but RFC 3986's unreserved
/// characters).
fn encoded(value: &str) -> String {
    value
        .bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                char::from(byte).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

/// `?filter=…` for `filter`.
fn filter(filter: &str) -> String {
    format!("filter={}", encoded(filter))
}

/// Sends one request as an identity provider does: the bearer token (if any), the body
/// as sent with its content type, and extra headers.
async fn send_raw(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, String)>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut request = app.client.request(method, app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some((content_type, body)) = body {
        request = request.header("content-type", content_type).body(body);
    }
    reply(request.send().await.expect("the request is sent")).await
}

/// A SCIM client of one tenant's base with one bearer token.
struct Scim<'a> {
    app: &'a TestApp,
    tenant: String,
    token: String,
}

impl<'a> Scim<'a> {
    fn new(app: &'a TestApp, tenant: &str, token: &str) -> Self {
        Self {
            app,
            tenant: tenant.to_owned(),
            token: token.to_owned(),
        }
    }

    /// The base path, `/scim/v2/tenants/{t}`.
    fn base(&self) -> String {
        format!("/scim/v2/tenants/{}", self.tenant)
    }

    /// The base URL as the service renders it in `Location` and `meta.location`.
    fn base_url(&self) -> String {
        self.app.url(&self.base())
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        send_raw(
            self.app,
            method,
            &format!("{}{path}", self.base()),
            Some(&self.token),
            body.map(|body| (SCIM_JSON, body.to_string())),
            headers,
        )
        .await
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None, &[]).await
    }

    async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send(Method::POST, path, Some(body), &[]).await
    }

    async fn put(&self, path: &str, body: &Value) -> Reply {
        self.send(Method::PUT, path, Some(body), &[]).await
    }

    async fn patch(&self, path: &str, body: &Value) -> Reply {
        self.send(Method::PATCH, path, Some(body), &[]).await
    }

    async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, None, &[]).await
    }

    /// `GET /Users?filter=userName eq "…"`: the ListResponse, checked.
    async fn find_user(&self, user_name: &str) -> Reply {
        self.get(&format!(
            "/Users?{}",
            filter(&format!("userName eq \"{user_name}\""))
        ))
        .await
    }

    /// Creates a User, asserts the 201 and returns its id.
    async fn create_user(&self, body: &Value) -> String {
        let created = self.post("/Users", body).await;
        assert_scim(&created, StatusCode::CREATED);
        text(&created.body, "id").to_owned()
    }
}

/// A PatchOp body of `operations`.
fn patch_op(operations: Value) -> Value {
    json!({ "schemas": [PATCH_SCHEMA], "Operations": operations })
}

/// A minimal User body.
fn user_body(user_name: &str, display_name: &str) -> Value {
    json!({
        "schemas": [USER_SCHEMA],
        "userName": user_name,
        "displayName": display_name,
        "name": { "givenName": display_name, "familyName": "Example" },
        "active": true,
    })
}

// ---------------------------------------------------------------------------------------
// Setup.

/// A tenant API key: (key id, key). The caller is the platform root at `aal2`.
async fn api_key(app: &TestApp, root: &str, tenant: &str, scopes: &[&str]) -> (String, String) {
    let key = app
        .post(
            &format!("/v1/tenants/{tenant}/api-keys"),
            root,
            json!({ "name": "identity provider", "scopes": scopes }),
        )
        .await;
    assert_eq!(key.status, StatusCode::CREATED, "an API key: {key:?}");
    (
        text(&key.body, "id").to_owned(),
        text(&key.body, "key").to_owned(),
    )
}

/// An active platform user with a password, created by the root; its id.
async fn platform_user(app: &TestApp, root: &str, email: &str) -> String {
    let created = app
        .post(
            "/v1/users",
            root,
            json!({ "email": email, "password": "a user password 123" }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:#?}");
    text(&created.body, "id").to_owned()
}

/// A tenant with its first admin and a `scim:write` key.
struct Provisioned {
    admin: String,
    admin_id: String,
    key_id: String,
    key: String,
}

/// Creates `tenant` with a first admin and a `scim:write` key; `root` must be at
/// `aal2` (its TOTP enrolled).
async fn provisioned(app: &TestApp, root: &str, tenant: &str) -> Provisioned {
    let (admin, admin_id) = tenant_with_admin(app, root, tenant).await;
    let (key_id, key) = api_key(app, root, tenant, &["scim:write"]).await;
    Provisioned {
        admin,
        admin_id,
        key_id,
        key,
    }
}

/// The app, the root's session at `aal2`, and one provisioned tenant.
async fn start(store: StoreKind, tenant: &str) -> (TestApp, String, Provisioned) {
    let app = spawn_app_on(store).await;
    let root = app.root_token().await;
    let _ = enrol_totp(&app, &root).await;
    let provisioned = provisioned(&app, &root, tenant).await;
    (app, root, provisioned)
}

// ---------------------------------------------------------------------------------------
// Assertions.

/// A successful SCIM answer: the status and `application/scim+json`.
fn assert_scim(reply: &Reply, status: StatusCode) {
    assert_eq!(reply.status, status, "{reply:#?}");
    assert_eq!(reply.content_type(), Some(SCIM_JSON), "{reply:#?}");
}

/// A SCIM error body (RFC 7644 §3.12): the status, `application/scim+json`, the Error
/// schema, `status` as a string, a non-empty `detail`, and `scimType` when one is
/// expected (none otherwise); never a problem+json.
fn assert_scim_error(reply: &Reply, status: StatusCode, scim_type: Option<&str>) {
    assert_eq!(reply.status, status, "{reply:#?}");
    assert_eq!(reply.content_type(), Some(SCIM_JSON), "{reply:#?}");
    assert_eq!(reply.body["schemas"], json!([ERROR_SCHEMA]), "{reply:#?}");
    assert_eq!(
        reply.body["status"],
        json!(status.as_u16().to_string()),
        "{reply:#?}"
    );
    assert!(
        reply.body["detail"]
            .as_str()
            .is_some_and(|detail| !detail.is_empty()),
        "a detail: {reply:#?}"
    );
    assert_eq!(
        reply.body.get("scimType").and_then(Value::as_str),
        scim_type,
        "{reply:#?}"
    );
    for problem_field in ["type", "code", "title"] {
        assert!(
            reply.body.get(problem_field).is_none(),
            "not a problem+json: {reply:#?}"
        );
    }
}

/// A ListResponse of `total` results whose page is `Resources`.
fn assert_list(reply: &Reply, total: u64) -> Vec<Value> {
    assert_scim(reply, StatusCode::OK);
    assert_eq!(reply.body["schemas"], json!([LIST_SCHEMA]), "{reply:#?}");
    assert_eq!(reply.body["totalResults"], json!(total), "{reply:#?}");
    assert_eq!(reply.body["startIndex"], json!(1), "{reply:#?}");
    let resources = reply.body["Resources"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        reply.body["itemsPerPage"],
        json!(resources.len()),
        "{reply:#?}"
    );
    resources
}

/// The `ETag` header, which `meta.version` repeats.
fn scim_etag(reply: &Reply) -> String {
    let etag = reply
        .headers
        .get("etag")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_else(|| panic!("an ETag: {reply:#?}"))
        .to_owned();
    assert_eq!(reply.body["meta"]["version"], json!(etag), "{reply:#?}");
    assert!(
        etag.starts_with("W/\"") && etag.ends_with('"'),
        "a weak ETag: {etag}"
    );
    etag
}

// ---------------------------------------------------------------------------------------
// The truth through `/v1`.

/// `GET /v1/tenants/{t}/members/{user}`.
async fn member(app: &TestApp, token: &str, tenant: &str, user: &str) -> Reply {
    app.get(&format!("/v1/tenants/{tenant}/members/{user}"), token)
        .await
}

/// The member's `/v1` body (asserting it exists).
async fn member_body(app: &TestApp, token: &str, tenant: &str, user: &str) -> Value {
    let found = member(app, token, tenant, user).await;
    assert_eq!(found.status, StatusCode::OK, "the member: {found:#?}");
    found.body
}

/// The member is gone from the tenant: `/v1` answers 404 `member_not_found`.
async fn assert_not_member(app: &TestApp, token: &str, tenant: &str, user: &str) {
    let found = member(app, token, tenant, user).await;
    assert_eq!(found.status, StatusCode::NOT_FOUND, "{found:#?}");
    assert_eq!(found.code(), Some("member_not_found"), "{found:#?}");
}

/// The member's resolved profile values.
async fn profile(app: &TestApp, token: &str, tenant: &str, user: &str) -> Value {
    let profile = app
        .get(
            &format!("/v1/tenants/{tenant}/members/{user}/profile"),
            token,
        )
        .await;
    assert_eq!(profile.status, StatusCode::OK, "the profile: {profile:#?}");
    profile.body["values"].clone()
}

/// The member's tenant value of `key` (`source` `tenant_member`), or `None`.
fn member_value(values: &Value, key: &str) -> Option<String> {
    let value = values.get(key)?;
    if value["source"] != "tenant_member" {
        return None;
    }
    value["value"].as_str().map(str::to_owned)
}

/// The member's roles through `/v1`.
async fn roles_of(app: &TestApp, token: &str, tenant: &str, user: &str) -> Value {
    member_body(app, token, tenant, user).await["roles"].clone()
}

/// The tenant's role bindings through `/v1`.
async fn bindings(app: &TestApp, token: &str, tenant: &str) -> Vec<Value> {
    let roles = app.get(&format!("/v1/tenants/{tenant}/roles"), token).await;
    assert_eq!(roles.status, StatusCode::OK, "{roles:#?}");
    roles.body["items"].as_array().expect("items").clone()
}

/// The tenant's audit records of `action`.
async fn audit(app: &TestApp, token: &str, tenant: &str, action: &str) -> Vec<Value> {
    let trail = app
        .get(
            &format!("/v1/tenants/{tenant}/audit?limit=200&action={action}"),
            token,
        )
        .await;
    assert_eq!(trail.status, StatusCode::OK, "{trail:#?}");
    trail.body["items"].as_array().expect("items").clone()
}

/// The tenant's event feed (one page of 200 is enough for a test).
async fn events(app: &TestApp, token: &str, tenant: &str) -> Vec<Value> {
    let feed = app
        .get(&format!("/v1/tenants/{tenant}/events?limit=200"), token)
        .await;
    assert_eq!(feed.status, StatusCode::OK, "{feed:#?}");
    feed.body["items"].as_array().expect("items").clone()
}

/// The events of `event_type` about `subject`.
fn events_of<'e>(feed: &'e [Value], event_type: &str, subject: &str) -> Vec<&'e Value> {
    feed.iter()
        .filter(|event| event["type"] == event_type && event["subject"] == subject)
        .collect()
}

/// The feed holds an event of `event_type` about `subject` in `tenant`.
fn assert_event(feed: &[Value], event_type: &str, subject: &str, tenant: &str) {
    let found = events_of(feed, event_type, subject);
    assert!(
        !found.is_empty(),
        "a {event_type} event about {subject} in {feed:#?}"
    );
    for event in found {
        assert_eq!(event["tenant"], tenant, "{event:#?}");
        assert_eq!(event["source"], "user-engine", "{event:#?}");
    }
}

/// A member's whole `/v1` state: account, profile.
async fn member_state(app: &TestApp, token: &str, tenant: &str, user: &str) -> Value {
    json!({
        "member": member_body(app, token, tenant, user).await,
        "profile": profile(app, token, tenant, user).await,
    })
}

// ---------------------------------------------------------------------------------------
// 1. Okta.

/// Okta's SCIM 2.0 test flow (developer.okta.com, "SCIM 2.0 protocol reference" and
/// "Test your SCIM API"), request by request, with `/v1` checked after each change.
async fn okta_provisions_updates_deactivates_groups_and_deprovisions_a_user(store: StoreKind) {
    let tenant = "okta-co";
    let (app, root, t) = start(store, tenant).await;
    let scim = Scim::new(&app, tenant, &t.key);

    // 1. Okta looks the user up before creating them.
    let lookup_path = format!(
        "/Users?{}&startIndex=1&count=100",
        filter("userName eq \"test.user@okta.local\"")
    );
    let none = scim.get(&lookup_path).await;
    assert!(assert_list(&none, 0).is_empty());

    // 2. Create the user (Okta's body, password and groups included).
    let created = scim
        .post(
            "/Users",
            &json!({
                "schemas": [USER_SCHEMA],
                "userName": "test.user@okta.local",
                "name": { "givenName": "Test", "familyName": "User" },
                "emails": [{ "primary": true, "value": "test.user@okta.local", "type": "work" }],
                "displayName": "Test User",
                "locale": "en-US",
                "externalId": "00ujl29u0le5T6Aj10h7",
                "groups": [],
                "password": "1mz050nq",
                "active": true
            }),
        )
        .await;
    assert_scim(&created, StatusCode::CREATED);
    let id = text(&created.body, "id").to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "the user id: {id}");
    let location = format!("{}/Users/{id}", scim.base_url());
    assert_eq!(
        created
            .headers
            .get("location")
            .and_then(|value| value.to_str().ok()),
        Some(location.as_str()),
        "{created:#?}"
    );
    let created_etag = scim_etag(&created);
    assert_eq!(created.body["meta"]["location"], json!(location));
    assert_eq!(created.body["meta"]["resourceType"], "User");
    assert_eq!(created.body["userName"], "test.user@okta.local");
    assert_eq!(created.body["externalId"], "00ujl29u0le5T6Aj10h7");
    assert_eq!(created.body["active"], true);
    assert_eq!(created.body["displayName"], "Test User");
    assert_eq!(created.body["locale"], "en-US");
    assert_eq!(created.body["name"]["givenName"], "Test");
    assert_eq!(created.body["name"]["familyName"], "User");
    assert_eq!(
        created.body["emails"][0]["value"], "test.user@okta.local",
        "{created:#?}"
    );
    assert!(
        created.body.get("password").is_none(),
        "a password is never returned: {created:#?}"
    );
    // `/v1`: a new email is an invited user, a member of this tenant.
    let account = member_body(&app, &t.admin, tenant, &id).await;
    assert_eq!(account["tenant"], tenant);
    assert_eq!(account["user_id"], json!(id));
    assert_eq!(account["email"], "test.user@okta.local");
    assert_eq!(account["state"], "active");
    assert_eq!(account["roles"], json!(["member"]));
    let user = app.get(&format!("/v1/users/{id}"), &root).await;
    assert_eq!(user.status, StatusCode::OK, "{user:#?}");
    assert_eq!(user.body["state"], "invited", "{user:#?}");
    let values = profile(&app, &t.admin, tenant, &id).await;
    assert_eq!(member_value(&values, "given_name").as_deref(), Some("Test"));
    assert_eq!(
        member_value(&values, "family_name").as_deref(),
        Some("User")
    );
    assert_eq!(
        member_value(&values, "display_name").as_deref(),
        Some("Test User")
    );
    assert_eq!(member_value(&values, "locale").as_deref(), Some("en-US"));

    // 3. The lookup finds them now; so does a read by id.
    let found = scim.get(&lookup_path).await;
    let resources = assert_list(&found, 1);
    assert_eq!(resources[0]["id"], json!(id));
    assert_eq!(resources[0]["userName"], "test.user@okta.local");
    let read = scim.get(&format!("/Users/{id}")).await;
    assert_scim(&read, StatusCode::OK);
    assert_eq!(scim_etag(&read), created_etag);
    assert_eq!(read.body, created.body, "a read shows what the create did");

    // 4. Okta's PUT sends the whole user back with a change.
    let mut whole = read.body.clone();
    whole["name"]["givenName"] = json!("Another");
    let replaced = scim.put(&format!("/Users/{id}"), &whole).await;
    assert_scim(&replaced, StatusCode::OK);
    let replaced_etag = scim_etag(&replaced);
    assert_ne!(replaced_etag, created_etag, "a change gives a new version");
    assert_eq!(replaced.body["name"]["givenName"], "Another");
    let values = profile(&app, &t.admin, tenant, &id).await;
    assert_eq!(
        member_value(&values, "given_name").as_deref(),
        Some("Another")
    );
    assert_eq!(
        member_value(&values, "family_name").as_deref(),
        Some("User")
    );
    assert_eq!(
        member_value(&values, "display_name").as_deref(),
        Some("Test User")
    );
    assert_eq!(member_value(&values, "locale").as_deref(), Some("en-US"));

    // The same PUT again changes nothing: no new version, no event.
    let feed_before = events(&app, &t.admin, tenant).await;
    let again = scim.put(&format!("/Users/{id}"), &replaced.body).await;
    assert_scim(&again, StatusCode::OK);
    assert_eq!(
        scim_etag(&again),
        replaced_etag,
        "an identical PUT: {again:#?}"
    );
    assert_eq!(events(&app, &t.admin, tenant).await, feed_before);

    // 5. Okta deactivates with a path-less replace, and reactivates.
    let deactivated = scim
        .patch(
            &format!("/Users/{id}"),
            &patch_op(json!([{ "op": "replace", "value": { "active": false } }])),
        )
        .await;
    assert_scim(&deactivated, StatusCode::OK);
    assert_eq!(deactivated.body["active"], false);
    assert_eq!(
        member_body(&app, &t.admin, tenant, &id).await["state"],
        "suspended"
    );
    let reactivated = scim
        .patch(
            &format!("/Users/{id}"),
            &patch_op(json!([{ "op": "replace", "value": { "active": true } }])),
        )
        .await;
    assert_scim(&reactivated, StatusCode::OK);
    assert_eq!(reactivated.body["active"], true);
    assert_eq!(
        member_body(&app, &t.admin, tenant, &id).await["state"],
        "active"
    );

    // 6. A group: created empty (a role with no scopes), a member added and removed.
    let group = scim
        .post(
            "/Groups",
            &json!({ "schemas": [GROUP_SCHEMA], "displayName": "Test SCIMv2", "members": [] }),
        )
        .await;
    assert_scim(&group, StatusCode::CREATED);
    let group_id = text(&group.body, "id").to_owned();
    assert_eq!(group_id, "test_scimv2", "{group:#?}");
    assert_eq!(group.body["displayName"], "Test SCIMv2");
    assert_eq!(
        group
            .headers
            .get("location")
            .and_then(|value| value.to_str().ok()),
        Some(format!("{}/Groups/{group_id}", scim.base_url()).as_str()),
        "{group:#?}"
    );
    assert!(
        bindings(&app, &t.admin, tenant)
            .await
            .contains(&json!({ "role": group_id, "scopes": [] })),
        "the group is a role bound to nothing"
    );
    let added = scim
        .patch(
            &format!("/Groups/{group_id}"),
            &patch_op(json!([{
                "op": "add",
                "path": "members",
                "value": [{ "value": id, "display": "test.user@okta.local" }]
            }])),
        )
        .await;
    assert_scim(&added, StatusCode::OK);
    assert_eq!(added.body["members"][0]["value"], json!(id), "{added:#?}");
    assert_eq!(
        roles_of(&app, &t.admin, tenant, &id).await,
        json!(["member", group_id])
    );
    let removed = scim
        .patch(
            &format!("/Groups/{group_id}"),
            &patch_op(json!([{ "op": "remove", "path": format!("members[value eq \"{id}\"]") }])),
        )
        .await;
    assert_scim(&removed, StatusCode::OK);
    assert!(
        removed.body["members"]
            .as_array()
            .is_none_or(|members| members.is_empty()),
        "{removed:#?}"
    );
    assert_eq!(
        roles_of(&app, &t.admin, tenant, &id).await,
        json!(["member"])
    );

    // Okta renames a group with a path-less replace naming its id: the displayName
    // changes, the role (the group's id) does not.
    let renamed = scim
        .patch(
            &format!("/Groups/{group_id}"),
            &patch_op(json!([{
                "op": "replace",
                "value": { "id": group_id, "displayName": "Test SCIMv2 Renamed" }
            }])),
        )
        .await;
    assert_scim(&renamed, StatusCode::OK);
    assert_eq!(renamed.body["id"], json!(group_id));
    assert_eq!(renamed.body["displayName"], "Test SCIMv2 Renamed");
    assert!(bindings(&app, &t.admin, tenant)
        .await
        .contains(&json!({ "role": group_id, "scopes": [] })));

    // 7. Deprovisioning removes the membership; the platform user stays.
    let deleted = scim.delete(&format!("/Users/{id}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{deleted:#?}");
    assert_eq!(deleted.body, Value::Null, "no body: {deleted:#?}");
    assert_not_member(&app, &t.admin, tenant, &id).await;
    let user = app.get(&format!("/v1/users/{id}"), &root).await;
    assert_eq!(
        user.status,
        StatusCode::OK,
        "the platform user stays: {user:#?}"
    );
    assert_eq!(user.body["email"], "test.user@okta.local");
    assert_scim_error(
        &scim.get(&format!("/Users/{id}")).await,
        StatusCode::NOT_FOUND,
        None,
    );
    assert!(assert_list(&scim.get(&lookup_path).await, 0).is_empty());

    // The group created through SCIM is deleted through it.
    let dropped = scim.delete(&format!("/Groups/{group_id}")).await;
    assert_eq!(dropped.status, StatusCode::NO_CONTENT, "{dropped:#?}");
    assert!(
        !bindings(&app, &t.admin, tenant)
            .await
            .iter()
            .any(|binding| binding["role"] == json!(group_id)),
        "the group's role is gone"
    );
    assert_scim_error(
        &scim.get(&format!("/Groups/{group_id}")).await,
        StatusCode::NOT_FOUND,
        None,
    );
}

// ---------------------------------------------------------------------------------------
// 2. Entra ID.

const ENTRA_USER_NAME: &str = "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1@contoso.com";
const ENTRA_EXTERNAL_ID: &str = "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef";

/// Entra ID's create request (learn.microsoft.com, "Tutorial: Develop and plan
/// provisioning for a SCIM endpoint"), with the title and department its default
/// mapping sends.
fn entra_user() -> Value {
    json!({
        "schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA],
        "externalId": ENTRA_EXTERNAL_ID,
        "userName": ENTRA_USER_NAME,
        "active": true,
        "emails": [{
            "primary": true,
            "type": "work",
            "value": "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@contoso.com"
        }],
        "meta": { "resourceType": "User" },
        "name": {
            "formatted": "givenName familyName",
            "familyName": "familyName",
            "givenName": "givenName"
        },
        "roles": [],
        "title": "Manager",
        ENTERPRISE_SCHEMA: { "department": "Sales" }
    })
}

/// Entra ID's provisioning cycle as the Microsoft tutorial's samples send it: lookups by
/// `userName`, the create, Entra's PATCH forms (capitalised `op`, `"False"` strings,
/// path-less values, the extension URN path, attributes the engine does not keep), its
/// Group forms, and the delete.
async fn entra_provisions_patches_groups_and_deprovisions_a_user(store: StoreKind) {
    let tenant = "contoso";
    let (app, root, t) = start(store, tenant).await;
    let scim = Scim::new(&app, tenant, &t.key);
    let email = ENTRA_USER_NAME.to_ascii_lowercase();

    // "Get User by query - Zero results".
    let unknown = scim
        .find_user("Test_User_dfeef4c5-5681-4387-b016-bdf221e82081")
        .await;
    assert!(assert_list(&unknown, 0).is_empty());
    assert!(assert_list(&scim.find_user(ENTRA_USER_NAME).await, 0).is_empty());

    // "Create User": the userName is the email (lowercased), the work email another.
    let created = scim.post("/Users", &entra_user()).await;
    assert_scim(&created, StatusCode::CREATED);
    let id = text(&created.body, "id").to_owned();
    scim_etag(&created);
    assert!(
        created.body["userName"]
            .as_str()
            .is_some_and(|name| name.eq_ignore_ascii_case(ENTRA_USER_NAME)),
        "{created:#?}"
    );
    assert_eq!(created.body["externalId"], ENTRA_EXTERNAL_ID);
    assert_eq!(created.body["title"], "Manager");
    assert_eq!(created.body[ENTERPRISE_SCHEMA]["department"], "Sales");
    assert_eq!(created.body["active"], true);
    let account = member_body(&app, &t.admin, tenant, &id).await;
    assert_eq!(account["email"], json!(email), "{account:#?}");
    assert_eq!(account["state"], "active");
    assert_eq!(account["roles"], json!(["member"]));
    let values = profile(&app, &t.admin, tenant, &id).await;
    assert_eq!(member_value(&values, "title").as_deref(), Some("Manager"));
    assert_eq!(
        member_value(&values, "department").as_deref(),
        Some("Sales")
    );
    assert_eq!(
        member_value(&values, "given_name").as_deref(),
        Some("givenName")
    );
    assert_eq!(
        member_value(&values, "family_name").as_deref(),
        Some("familyName")
    );
    assert_eq!(
        member_value(&values, "formatted_name").as_deref(),
        Some("givenName familyName")
    );

    // "Get User by query": by userName as sent, in any case, and by externalId.
    for lookup in [ENTRA_USER_NAME, email.as_str()] {
        let found = assert_list(&scim.find_user(lookup).await, 1);
        assert_eq!(found[0]["id"], json!(id));
    }
    let by_external = scim
        .get(&format!(
            "/Users?{}",
            filter(&format!("externalId eq \"{ENTRA_EXTERNAL_ID}\""))
        ))
        .await;
    assert_eq!(assert_list(&by_external, 1)[0]["id"], json!(id));

    // "Disable User": Entra's capitalised op and "False" string.
    let disabled = scim
        .patch(
            &format!("/Users/{id}"),
            &patch_op(json!([{ "op": "Replace", "path": "active", "value": "False" }])),
        )
        .await;
    assert_scim(&disabled, StatusCode::OK);
    assert_eq!(disabled.body["active"], false);
    assert_eq!(
        member_body(&app, &t.admin, tenant, &id).await["state"],
        "suspended"
    );
    let feed = events(&app, &t.admin, tenant).await;
    assert_event(&feed, "account.state_changed", &id, tenant);

    // Single-valued attributes: an Add with a path, a path-less Replace naming
    // sub-attributes, and the enterprise extension's URN path.
    let updated = scim
        .patch(
            &format!("/Users/{id}"),
            &patch_op(json!([
                { "op": "Add", "path": "displayName", "value": "Test User Display" },
                { "op": "Replace", "value": { "name.givenName": "Updated", "active": "True" } },
                { "op": "Replace",
                  "path": format!("{ENTERPRISE_SCHEMA}:department"),
                  "value": "Marketing" }
            ])),
        )
        .await;
    assert_scim(&updated, StatusCode::OK);
    assert_eq!(updated.body["displayName"], "Test User Display");
    assert_eq!(updated.body["name"]["givenName"], "Updated");
    assert_eq!(updated.body[ENTERPRISE_SCHEMA]["department"], "Marketing");
    assert_eq!(updated.body["active"], true);
    let values = profile(&app, &t.admin, tenant, &id).await;
    assert_eq!(
        member_value(&values, "display_name").as_deref(),
        Some("Test User Display")
    );
    assert_eq!(
        member_value(&values, "given_name").as_deref(),
        Some("Updated")
    );
    assert_eq!(
        member_value(&values, "department").as_deref(),
        Some("Marketing")
    );
    assert_eq!(member_value(&values, "title").as_deref(), Some("Manager"));
    assert_eq!(
        member_value(&values, "family_name").as_deref(),
        Some("familyName")
    );
    assert_eq!(
        member_body(&app, &t.admin, tenant, &id).await["state"],
        "active"
    );
    let feed = events(&app, &t.admin, tenant).await;
    assert!(
        events_of(&feed, "profile.value_set", &id)
            .iter()
            .any(|event| event["data"]["key"] == "department"
                && event["data"]["value"] == "Marketing"),
        "{feed:#?}"
    );

    // Attributes the engine does not keep (Entra's default mapping sends them): 200, and
    // nothing changes.
    assert_patch_changes_nothing(&app, &scim, &t.admin, &id).await;

    // "Create Group" (Entra's sample body), then Entra's member Add and Remove.
    let group = scim
        .post(
            "/Groups",
            &json!({
                "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
                "displayName": "displayName",
                "meta": { "resourceType": "Group" },
                "schemas": [
                    GROUP_SCHEMA,
                    "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
                ]
            }),
        )
        .await;
    assert_scim(&group, StatusCode::CREATED);
    let group_id = text(&group.body, "id").to_owned();
    assert_eq!(group.body["displayName"], "displayName");
    assert_eq!(
        group.body["externalId"],
        "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159"
    );
    // "Get Group by displayName" without members.
    let by_name = scim
        .get(&format!(
            "/Groups?excludedAttributes=members&{}",
            filter("displayName eq \"displayName\"")
        ))
        .await;
    let groups = assert_list(&by_name, 1);
    assert_eq!(groups[0]["id"], json!(group_id));
    let added = scim
        .patch(
            &format!("/Groups/{group_id}"),
            &patch_op(json!([{
                "op": "Add",
                "path": "members",
                "value": [{ "$ref": null, "value": id }]
            }])),
        )
        .await;
    assert_scim(&added, StatusCode::OK);
    let mut expected = vec![group_id.clone(), "member".to_owned()];
    expected.sort();
    assert_eq!(roles_of(&app, &t.admin, tenant, &id).await, json!(expected));
    let feed = events(&app, &t.admin, tenant).await;
    assert_event(&feed, "membership.roles_changed", &id, tenant);
    let removed = scim
        .patch(
            &format!("/Groups/{group_id}"),
            &patch_op(json!([{
                "op": "Remove",
                "path": "members",
                "value": [{ "$ref": null, "value": id }]
            }])),
        )
        .await;
    assert_scim(&removed, StatusCode::OK);
    assert_eq!(
        roles_of(&app, &t.admin, tenant, &id).await,
        json!(["member"])
    );

    // "Update User [Single-valued properties]": a new userName is a new email, for a
    // person of this tenant alone.
    let renamed_user = "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com";
    let renamed = scim
        .patch(
            &format!("/Users/{id}"),
            &patch_op(json!([{ "op": "Replace", "path": "userName", "value": renamed_user }])),
        )
        .await;
    assert_scim(&renamed, StatusCode::OK);
    assert_eq!(renamed.body["userName"], renamed_user);
    assert_eq!(
        member_body(&app, &t.admin, tenant, &id).await["email"],
        renamed_user
    );
    let user = app.get(&format!("/v1/users/{id}"), &root).await;
    assert_eq!(user.body["email"], renamed_user, "{user:#?}");
    assert_eq!(
        assert_list(&scim.find_user(renamed_user).await, 1)[0]["id"],
        json!(id)
    );
    assert!(assert_list(&scim.find_user(ENTRA_USER_NAME).await, 0).is_empty());

    // "Delete User".
    let deleted = scim.delete(&format!("/Users/{id}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{deleted:#?}");
    assert_not_member(&app, &t.admin, tenant, &id).await;
    let user = app.get(&format!("/v1/users/{id}"), &root).await;
    assert_eq!(
        user.status,
        StatusCode::OK,
        "the platform user stays: {user:#?}"
    );
    let feed = events(&app, &t.admin, tenant).await;
    assert_event(&feed, "membership.removed", &id, tenant);
    let dropped = scim.delete(&format!("/Groups/{group_id}")).await;
    assert_eq!(dropped.status, StatusCode::NO_CONTENT, "{dropped:#?}");
}

/// A PATCH naming only attributes the engine does not keep (Entra ID's default mapping
/// sends `phoneNumbers`; `nickName`) answers 200 and changes nothing: not the resource,
/// not its version, not the member through `/v1`, and no event is written.
async fn assert_patch_changes_nothing(app: &TestApp, scim: &Scim<'_>, admin: &str, id: &str) {
    let tenant = scim.tenant.as_str();
    let read_before = scim.get(&format!("/Users/{id}")).await;
    assert_scim(&read_before, StatusCode::OK);
    let etag_before = scim_etag(&read_before);
    let state_before = member_state(app, admin, tenant, id).await;
    let feed_before = events(app, admin, tenant).await;
    let ignored = scim
        .patch(
            &format!("/Users/{id}"),
            &patch_op(json!([
                { "op": "Add", "path": "phoneNumbers[type eq \"work\"].value",
                  "value": "+1 555 0100" },
                { "op": "Replace", "path": "nickName", "value": "Testy" }
            ])),
        )
        .await;
    assert_scim(&ignored, StatusCode::OK);
    assert!(ignored.body.get("phoneNumbers").is_none(), "{ignored:#?}");
    assert!(ignored.body.get("nickName").is_none(), "{ignored:#?}");
    let read_after = scim.get(&format!("/Users/{id}")).await;
    let state_after = member_state(app, admin, tenant, id).await;
    let feed_after = events(app, admin, tenant).await;
    let new_events: Vec<(&Value, &Value)> = feed_after
        .iter()
        .filter(|event| !feed_before.contains(event))
        .map(|event| (&event["type"], &event["data"]))
        .collect();
    let mut changed = Vec::new();
    if scim_etag(&ignored) != etag_before {
        changed.push(format!(
            "the version: {etag_before} -> {}",
            scim_etag(&ignored)
        ));
    }
    for attribute in [
        "userName",
        "emails",
        "name",
        "displayName",
        "active",
        "meta",
    ] {
        if read_after.body[attribute] != read_before.body[attribute] {
            changed.push(format!(
                "{attribute}: {} -> {}",
                read_before.body[attribute], read_after.body[attribute]
            ));
        }
    }
    if read_after.body != read_before.body {
        changed.push("the User resource".to_owned());
    }
    if state_after != state_before {
        changed.push(format!(
            "/v1: {} -> {}",
            state_before["member"], state_after["member"]
        ));
    }
    if !new_events.is_empty() {
        changed.push(format!("new events: {new_events:?}"));
    }
    assert!(
        changed.is_empty(),
        "a PATCH of attributes the engine does not keep changed:\n  {}",
        changed.join("\n  ")
    );
}

/// The same PATCH right after Entra's create, whose work email is not its userName:
/// still nothing changes.
async fn a_patch_of_attributes_the_engine_does_not_keep_changes_nothing_after_entras_create(
    store: StoreKind,
) {
    let tenant = "contoso";
    let (app, _root, t) = start(store, tenant).await;
    let scim = Scim::new(&app, tenant, &t.key);
    let entra = scim.create_user(&entra_user()).await;
    assert_patch_changes_nothing(&app, &scim, &t.admin, &entra).await;
}

/// The same PATCH on a member added through `/v1`, who has no SCIM identity yet: still
/// nothing changes.
async fn a_patch_of_attributes_the_engine_does_not_keep_changes_nothing_on_a_v1_member(
    store: StoreKind,
) {
    let tenant = "contoso";
    let (app, _root, t) = start(store, tenant).await;
    let scim = Scim::new(&app, tenant, &t.key);
    let added = app
        .post(
            &format!("/v1/tenants/{tenant}/members"),
            &t.admin,
            json!({ "email": "v1@contoso.example", "roles": ["member"] }),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{added:#?}");
    let v1_member = text(&added.body, "user_id").to_owned();
    assert_patch_changes_nothing(&app, &scim, &t.admin, &v1_member).await;
}

// ---------------------------------------------------------------------------------------
// 3. Isolation.

/// One request of a probe: method, path under the base, body, extra headers.
type Probe<'a> = (Method, String, Option<&'a Value>, Vec<(&'a str, &'a str)>);

/// Tenant B's whole state as its admin sees it through `/v1`: members, each member's
/// account and profile, and the role bindings.
async fn tenant_state(app: &TestApp, admin: &str, tenant: &str) -> Value {
    let members = app
        .get(&format!("/v1/tenants/{tenant}/members?limit=200"), admin)
        .await;
    assert_eq!(members.status, StatusCode::OK, "{members:#?}");
    let mut details = Vec::new();
    for item in members.body["items"].as_array().expect("items") {
        details.push(member_state(app, admin, tenant, text(item, "user_id")).await);
    }
    json!({
        "members": members.body["items"],
        "details": details,
        "roles": bindings(app, admin, tenant).await,
    })
}

/// Another tenant's `scim:write` key reaches nothing of tenant B: every SCIM operation,
/// well-formed or not, answers the 404 SCIM body a missing tenant gets, and B's state and
/// event feed do not change. Also: a missing tenant is 404, a missing or garbage token
/// 401 with `WWW-Authenticate: Bearer`, and a key without `scim:write` 403 — each as a
/// SCIM error body.
async fn another_tenants_key_reaches_nothing_and_errors_are_scim_bodies(store: StoreKind) {
    let app = spawn_app_on(store).await;
    let root = app.root_token().await;
    let _ = enrol_totp(&app, &root).await;
    let a = provisioned(&app, &root, "alpha").await;
    let b = provisioned(&app, &root, "beta").await;

    // B has a provisioned member with a profile and a provisioned group.
    let b_scim = Scim::new(&app, "beta", &b.key);
    let bob = b_scim
        .create_user(&json!({
            "schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA],
            "userName": "bob@beta.example",
            "externalId": "bob-1",
            "displayName": "Bob",
            "name": { "givenName": "Bob", "familyName": "Beta" },
            "title": "Engineer",
            ENTERPRISE_SCHEMA: { "department": "R&D" },
            "active": true
        }))
        .await;
    let group = b_scim
        .post(
            "/Groups",
            &json!({
                "schemas": [GROUP_SCHEMA],
                "displayName": "Beta Team",
                "members": [{ "value": bob }]
            }),
        )
        .await;
    assert_scim(&group, StatusCode::CREATED);
    let b_group = text(&group.body, "id").to_owned();
    let b_etag = scim_etag(&b_scim.get(&format!("/Users/{bob}")).await);

    let before = tenant_state(&app, &b.admin, "beta").await;
    let feed_before = events(&app, &b.admin, "beta").await;

    // A's key, against B's base.
    let intruder = Scim::new(&app, "beta", &a.key);
    let new_user = user_body("mallory@beta.example", "Mallory");
    let bob_path = format!("/Users/{bob}");
    let group_path = format!("/Groups/{b_group}");
    let deactivate = patch_op(json!([{ "op": "replace", "path": "active", "value": false }]));
    let add_to_member = patch_op(json!([{
        "op": "add", "path": "members", "value": [{ "value": a.admin_id }]
    }]));
    let remove_bob = patch_op(json!([{
        "op": "remove", "path": format!("members[value eq \"{bob}\"]")
    }]));
    let mut bob_replaced = user_body("bob@beta.example", "Not Bob");
    bob_replaced["active"] = json!(false);
    let search = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": "userName eq \"bob@beta.example\"",
        "startIndex": 1,
        "count": 10
    });
    let group_body = json!({ "schemas": [GROUP_SCHEMA], "displayName": "Intruders" });
    let member_group = json!({
        "schemas": [GROUP_SCHEMA],
        "displayName": "member",
        "members": [{ "value": a.admin_id }]
    });
    let bob_again = user_body("bob@beta.example", "Bob again");
    let no_operations = json!({ "schemas": [PATCH_SCHEMA] });
    let requests: Vec<Probe<'_>> = vec![
        (Method::GET, "/ServiceProviderConfig".into(), None, vec![]),
        (Method::GET, "/ResourceTypes".into(), None, vec![]),
        (Method::GET, "/ResourceTypes/User".into(), None, vec![]),
        (Method::GET, "/Schemas".into(), None, vec![]),
        (Method::GET, format!("/Schemas/{USER_SCHEMA}"), None, vec![]),
        (Method::GET, "/Users".into(), None, vec![]),
        (
            Method::GET,
            format!("/Users?{}", filter("userName eq \"bob@beta.example\"")),
            None,
            vec![],
        ),
        (Method::POST, "/Users".into(), Some(&new_user), vec![]),
        (Method::GET, bob_path.clone(), None, vec![]),
        (Method::PUT, bob_path.clone(), Some(&bob_replaced), vec![]),
        (Method::PATCH, bob_path.clone(), Some(&deactivate), vec![]),
        (Method::DELETE, bob_path.clone(), None, vec![]),
        (Method::GET, "/Groups".into(), None, vec![]),
        (Method::GET, "/Groups/member".into(), None, vec![]),
        (Method::GET, group_path.clone(), None, vec![]),
        (Method::POST, "/Groups".into(), Some(&group_body), vec![]),
        (
            Method::PATCH,
            "/Groups/member".into(),
            Some(&add_to_member),
            vec![],
        ),
        (
            Method::PUT,
            "/Groups/member".into(),
            Some(&member_group),
            vec![],
        ),
        (Method::PATCH, group_path.clone(), Some(&remove_bob), vec![]),
        (Method::DELETE, group_path.clone(), None, vec![]),
        (Method::POST, "/Users/.search".into(), Some(&search), vec![]),
        (
            Method::POST,
            "/Groups/.search".into(),
            Some(&search),
            vec![],
        ),
        (Method::POST, "/.search".into(), Some(&search), vec![]),
        // Malformed: what B's own key would get 400, 409 or 412 for.
        (
            Method::GET,
            format!("/Users?{}", filter("nickName eq \"x\"")),
            None,
            vec![],
        ),
        (
            Method::GET,
            format!("/Users?{}", filter("userName eq")),
            None,
            vec![],
        ),
        (Method::GET, "/Users?startIndex=abc".into(), None, vec![]),
        (Method::GET, "/Users?sortBy=userName".into(), None, vec![]),
        (Method::GET, "/Users/not-a-user-id".into(), None, vec![]),
        (Method::POST, "/Users".into(), Some(&bob_again), vec![]),
        (
            Method::PUT,
            bob_path.clone(),
            Some(&bob_replaced),
            vec![("if-match", "garbage")],
        ),
        (
            Method::PATCH,
            bob_path.clone(),
            Some(&deactivate),
            vec![("if-match", "W/\"999\"")],
        ),
        (
            Method::PATCH,
            bob_path.clone(),
            Some(&no_operations),
            vec![],
        ),
        (
            Method::DELETE,
            bob_path.clone(),
            None,
            vec![("if-match", b_etag.as_str())],
        ),
    ];
    for (method, path, body, headers) in &requests {
        let answer = intruder.send(method.clone(), path, *body, headers).await;
        assert_eq!(
            answer.status,
            StatusCode::NOT_FOUND,
            "{method} {path} with another tenant's key: {answer:#?}"
        );
        assert_scim_error(&answer, StatusCode::NOT_FOUND, None);
    }
    // Bodies that are not JSON, or not declared as JSON.
    for (content_type, body) in [
        (SCIM_JSON, "{\"schemas\": [".to_owned()),
        ("text/plain", new_user.to_string()),
    ] {
        for (method, path) in [
            (Method::POST, "/Users".to_owned()),
            (Method::PATCH, bob_path.clone()),
        ] {
            let answer = send_raw(
                &app,
                method.clone(),
                &format!("{}{path}", intruder.base()),
                Some(&a.key),
                Some((content_type, body.clone())),
                &[],
            )
            .await;
            assert_scim_error(&answer, StatusCode::NOT_FOUND, None);
        }
    }

    // A method a route does not take: B answers exactly what a missing tenant answers.
    let ghost = Scim::new(&app, "ghost", &a.key);
    for (method, path) in [
        (Method::POST, "/ServiceProviderConfig"),
        (Method::DELETE, "/Schemas"),
        (Method::PUT, "/Users"),
    ] {
        let on_b = intruder
            .send(method.clone(), path, Some(&search), &[])
            .await;
        let on_ghost = ghost.send(method.clone(), path, Some(&search), &[]).await;
        assert_eq!(on_b.status, on_ghost.status, "{method} {path}: {on_b:#?}");
        assert_eq!(on_b.body, on_ghost.body, "{method} {path}");
        assert_eq!(
            on_b.headers.get("allow"),
            on_ghost.headers.get("allow"),
            "{method} {path}"
        );
        assert_scim_error(&on_b, on_b.status, None);
        assert!(on_b.status.is_client_error(), "{on_b:#?}");
    }

    // B's admins see who probed them (SPEC §6): denied records by A's key in B's trail.
    let trail = app
        .get(
            &format!("/v1/tenants/beta/audit?limit=200&actor={}", a.key_id),
            &b.admin,
        )
        .await;
    assert_eq!(trail.status, StatusCode::OK, "{trail:#?}");
    let probes = trail.body["items"].as_array().expect("items");
    assert!(
        !probes.is_empty()
            && probes
                .iter()
                .all(|record| record["outcome"] == "denied" && record["tenant"] == "beta"),
        "denied records of A's key in B's trail: {probes:#?}"
    );

    // B is exactly as it was, and its feed has no new event.
    assert_eq!(tenant_state(&app, &b.admin, "beta").await, before);
    assert_eq!(events(&app, &b.admin, "beta").await, feed_before);
    assert_eq!(
        b_scim.get(&bob_path).await.body["displayName"],
        "Bob",
        "B's own key still sees Bob"
    );
    assert!(
        assert_list(&b_scim.find_user("mallory@beta.example").await, 0).is_empty(),
        "nobody was provisioned into B"
    );

    // A tenant that does not exist: the same 404.
    for path in ["/ServiceProviderConfig", "/Users", "/Groups"] {
        assert_scim_error(&ghost.get(path).await, StatusCode::NOT_FOUND, None);
    }
    assert_scim_error(
        &ghost.post("/Users", &new_user).await,
        StatusCode::NOT_FOUND,
        None,
    );

    // No token, or a garbage one, on A's own base: 401 with the challenge.
    let base = "/scim/v2/tenants/alpha";
    for token in [None, Some("garbage"), Some("uek_not-a-real-key")] {
        for (method, path, body) in [
            (Method::GET, "/Users", None),
            (Method::GET, "/ServiceProviderConfig", None),
            (
                Method::POST,
                "/Users",
                Some((SCIM_JSON, new_user.to_string())),
            ),
        ] {
            let answer = send_raw(
                &app,
                method.clone(),
                &format!("{base}{path}"),
                token,
                body,
                &[],
            )
            .await;
            assert_scim_error(&answer, StatusCode::UNAUTHORIZED, None);
            assert!(
                answer
                    .headers
                    .get("www-authenticate")
                    .and_then(|value| value.to_str().ok())
                    .is_some_and(|value| value.starts_with("Bearer")),
                "{method} {path} with {token:?}: {answer:#?}"
            );
        }
    }

    // A key of A without scim:write: 403, and nothing provisioned.
    let (_, reader) = api_key(&app, &root, "alpha", &["members:read"]).await;
    let reader = Scim::new(&app, "alpha", &reader);
    for path in ["/ServiceProviderConfig", "/Users", "/Groups"] {
        assert_scim_error(&reader.get(path).await, StatusCode::FORBIDDEN, None);
    }
    assert_scim_error(
        &reader
            .post("/Users", &user_body("eve@alpha.example", "Eve"))
            .await,
        StatusCode::FORBIDDEN,
        None,
    );
    assert_scim_error(
        &reader
            .patch(&format!("/Users/{}", a.admin_id), &deactivate)
            .await,
        StatusCode::FORBIDDEN,
        None,
    );
    let a_members = app.get("/v1/tenants/alpha/members", &a.admin).await;
    assert_eq!(
        a_members.body["items"].as_array().map(Vec::len),
        Some(1),
        "only A's admin: {a_members:#?}"
    );
    assert_eq!(
        member_body(&app, &a.admin, "alpha", &a.admin_id).await["state"],
        "active"
    );
}

// ---------------------------------------------------------------------------------------
// 4. Rules.

/// SPEC §3.3 through SCIM: the last tenant admin is never deprovisioned (409, state
/// unchanged, a `denied` record); `tenant_admin` is not grantable (403); a role bound to
/// a scope the key lacks is not grantable (403) while one bound within it is; a stale
/// `If-Match` is 412; bad filters and PATCH bodies are 400 with their `scimType`; and
/// every change leaves its audit record and events.
async fn scim_keeps_the_tenant_rules_and_leaves_audit_records_and_events(store: StoreKind) {
    let tenant = "rules";
    let (app, root, t) = start(store, tenant).await;
    let scim = Scim::new(&app, tenant, &t.key);
    let admin_path = format!("/Users/{}", t.admin_id);

    // (a) The first admin is the last active tenant admin.
    let admin_before = member_state(&app, &t.admin, tenant, &t.admin_id).await;
    let admin_read = scim.get(&admin_path).await;
    assert_scim(&admin_read, StatusCode::OK);
    let suspend = scim
        .patch(
            &admin_path,
            &patch_op(json!([{ "op": "replace", "path": "active", "value": false }])),
        )
        .await;
    assert_scim_error(&suspend, StatusCode::CONFLICT, None);
    let mut replaced = admin_read.body.clone();
    replaced["active"] = json!(false);
    let suspend_by_put = scim.put(&admin_path, &replaced).await;
    assert_scim_error(&suspend_by_put, StatusCode::CONFLICT, None);
    let remove = scim.delete(&admin_path).await;
    assert_scim_error(&remove, StatusCode::CONFLICT, None);
    let admin_after = member_state(&app, &t.admin, tenant, &t.admin_id).await;
    assert_eq!(admin_after, admin_before, "the admin is untouched");
    assert_eq!(admin_after["member"]["state"], "active");
    assert_eq!(admin_after["member"]["roles"], json!(["tenant_admin"]));
    for action in ["scim.user.patch", "scim.user.replace", "scim.user.delete"] {
        let records = audit(&app, &t.admin, tenant, action).await;
        assert!(
            records.iter().any(|record| record["outcome"] == "denied"
                && record["reason"] == "last_tenant_admin"
                && record["actor"]["type"] == "api_key"
                && record["actor"]["id"] == json!(t.key_id)
                && record["target"]["id"] == json!(t.admin_id)),
            "a denied {action} record: {records:#?}"
        );
    }

    // (b) tenant_admin is not granted through SCIM.
    let dana = scim
        .create_user(&user_body("dana@rules.example", "Dana"))
        .await;
    let grant_admin = scim
        .patch(
            "/Groups/tenant_admin",
            &patch_op(json!([{ "op": "add", "path": "members", "value": [{ "value": dana }] }])),
        )
        .await;
    assert_scim_error(&grant_admin, StatusCode::FORBIDDEN, None);
    assert_eq!(
        roles_of(&app, &t.admin, tenant, &dana).await,
        json!(["member"])
    );
    // An account keeps a role: `member` goes only with the membership (DELETE).
    let drop_member = scim
        .patch(
            "/Groups/member",
            &patch_op(json!([{ "op": "remove", "path": format!("members[value eq \"{dana}\"]") }])),
        )
        .await;
    assert_scim_error(&drop_member, StatusCode::BAD_REQUEST, Some("mutability"));
    assert_eq!(
        roles_of(&app, &t.admin, tenant, &dana).await,
        json!(["member"])
    );
    let admins = scim.get("/Groups/tenant_admin").await;
    assert_scim(&admins, StatusCode::OK);
    assert_eq!(
        admins.body["members"],
        json!([{
            "value": t.admin_id,
            "$ref": format!("{}/Users/{}", scim.base_url(), t.admin_id),
            "type": "User"
        }]),
        "{admins:#?}"
    );

    // (b') Another active admin (granted through /v1 by the root): an API key neither
    // suspends, removes nor demotes them (taking tenant_admin away needs aal2).
    let erin = platform_user(&app, &root, "erin@rules.example").await;
    let granted = app
        .post(
            &format!("/v1/tenants/{tenant}/members"),
            &root,
            json!({ "user_id": erin, "roles": ["tenant_admin"] }),
        )
        .await;
    assert_eq!(granted.status, StatusCode::CREATED, "{granted:#?}");
    let erin_before = member_state(&app, &t.admin, tenant, &erin).await;
    let erin_path = format!("/Users/{erin}");
    assert_scim_error(
        &scim
            .patch(
                &erin_path,
                &patch_op(json!([{ "op": "replace", "path": "active", "value": false }])),
            )
            .await,
        StatusCode::FORBIDDEN,
        None,
    );
    assert_scim_error(&scim.delete(&erin_path).await, StatusCode::FORBIDDEN, None);
    assert_scim_error(
        &scim
            .patch(
                "/Groups/tenant_admin",
                &patch_op(json!([{
                    "op": "remove", "path": format!("members[value eq \"{erin}\"]")
                }])),
            )
            .await,
        StatusCode::FORBIDDEN,
        None,
    );
    assert_eq!(
        member_state(&app, &t.admin, tenant, &erin).await,
        erin_before,
        "the other admin is untouched"
    );
    // An existing member is not provisioned twice.
    assert_scim_error(
        &scim
            .post("/Users", &user_body("erin@rules.example", "Erin"))
            .await,
        StatusCode::CONFLICT,
        Some("uniqueness"),
    );
    assert_scim_error(
        &scim
            .post("/Users", &user_body("admin@rules.example", "Admin"))
            .await,
        StatusCode::CONFLICT,
        Some("uniqueness"),
    );

    // Built-in roles are not deleted through SCIM; a displayName that is a role name is
    // the role.
    for builtin in ["member", "tenant_admin"] {
        assert_scim_error(
            &scim.delete(&format!("/Groups/{builtin}")).await,
            StatusCode::BAD_REQUEST,
            Some("mutability"),
        );
    }
    assert_eq!(
        roles_of(&app, &t.admin, tenant, &t.admin_id).await,
        json!(["tenant_admin"])
    );
    let engineering = scim
        .post(
            "/Groups",
            &json!({ "schemas": [GROUP_SCHEMA], "displayName": "engineering" }),
        )
        .await;
    assert_scim(&engineering, StatusCode::CREATED);
    assert_eq!(engineering.body["id"], "engineering");
    assert!(bindings(&app, &t.admin, tenant)
        .await
        .contains(&json!({ "role": "engineering", "scopes": [] })));

    // (c) Nobody grants more than they hold: a role bound to members:write is refused
    // to a key holding only scim:write; one bound to scim:write is granted.
    let support = scim
        .post(
            "/Groups",
            &json!({ "schemas": [GROUP_SCHEMA], "displayName": "Support Desk" }),
        )
        .await;
    assert_scim(&support, StatusCode::CREATED);
    let support = text(&support.body, "id").to_owned();
    assert_eq!(support, "support_desk");
    let bound = put(
        &app,
        &format!("/v1/tenants/{tenant}/roles/{support}"),
        &root,
        json!({ "scopes": ["members:write"] }),
    )
    .await;
    assert_eq!(bound.status, StatusCode::OK, "{bound:#?}");
    let exceeds = scim
        .patch(
            &format!("/Groups/{support}"),
            &patch_op(json!([{ "op": "add", "path": "members", "value": [{ "value": dana }] }])),
        )
        .await;
    assert_scim_error(&exceeds, StatusCode::FORBIDDEN, None);
    assert_eq!(
        roles_of(&app, &t.admin, tenant, &dana).await,
        json!(["member"])
    );
    let bound = put(
        &app,
        &format!("/v1/tenants/{tenant}/roles/provisioners"),
        &root,
        json!({ "scopes": ["scim:write"] }),
    )
    .await;
    assert_eq!(bound.status, StatusCode::OK, "{bound:#?}");
    let within = scim
        .patch(
            "/Groups/provisioners",
            &patch_op(json!([{ "op": "add", "path": "members", "value": [{ "value": dana }] }])),
        )
        .await;
    assert_scim(&within, StatusCode::OK);
    assert_eq!(
        roles_of(&app, &t.admin, tenant, &dana).await,
        json!(["member", "provisioners"])
    );

    // (d) A stale If-Match: 412 and nothing changes; the current one applies.
    let current = scim.get(&format!("/Users/{dana}")).await;
    let etag = scim_etag(&current);
    let renamed = scim
        .send(
            Method::PATCH,
            &format!("/Users/{dana}"),
            Some(&patch_op(
                json!([{ "op": "replace", "path": "displayName", "value": "Dana 2" }]),
            )),
            &[("if-match", etag.as_str())],
        )
        .await;
    assert_scim(&renamed, StatusCode::OK);
    assert_ne!(scim_etag(&renamed), etag);
    let dana_before = member_state(&app, &t.admin, tenant, &dana).await;
    let mut body = current.body.clone();
    body["displayName"] = json!("Dana 3");
    let stale_put = scim
        .send(
            Method::PUT,
            &format!("/Users/{dana}"),
            Some(&body),
            &[("if-match", etag.as_str())],
        )
        .await;
    assert_scim_error(&stale_put, StatusCode::PRECONDITION_FAILED, None);
    let stale_patch = scim
        .send(
            Method::PATCH,
            &format!("/Users/{dana}"),
            Some(&patch_op(
                json!([{ "op": "replace", "path": "active", "value": false }]),
            )),
            &[("if-match", etag.as_str())],
        )
        .await;
    assert_scim_error(&stale_patch, StatusCode::PRECONDITION_FAILED, None);
    let stale_delete = scim
        .send(
            Method::DELETE,
            &format!("/Users/{dana}"),
            None,
            &[("if-match", etag.as_str())],
        )
        .await;
    assert_scim_error(&stale_delete, StatusCode::PRECONDITION_FAILED, None);
    assert_eq!(
        member_state(&app, &t.admin, tenant, &dana).await,
        dana_before,
        "a stale If-Match changes nothing"
    );
    assert_eq!(
        member_value(&dana_before["profile"], "display_name").as_deref(),
        Some("Dana 2")
    );

    // (e) Bad filters and PATCH bodies.
    for bad in [
        "nickName eq \"x\"",
        "userName eq",
        "userName xx \"a\"",
        "(userName eq \"a\"",
    ] {
        let answer = scim.get(&format!("/Users?{}", filter(bad))).await;
        assert_scim_error(&answer, StatusCode::BAD_REQUEST, Some("invalidFilter"));
    }
    let answer = scim
        .get(&format!("/Groups?{}", filter("nickName eq \"x\"")))
        .await;
    assert_scim_error(&answer, StatusCode::BAD_REQUEST, Some("invalidFilter"));
    let no_operations = scim
        .patch(
            &format!("/Users/{dana}"),
            &json!({ "schemas": [PATCH_SCHEMA] }),
        )
        .await;
    assert_scim_error(
        &no_operations,
        StatusCode::BAD_REQUEST,
        Some("invalidSyntax"),
    );
    let bad_path = scim
        .patch(
            &format!("/Users/{dana}"),
            &patch_op(json!([{ "op": "replace", "path": "name.nope", "value": "x" }])),
        )
        .await;
    assert_scim_error(&bad_path, StatusCode::BAD_REQUEST, Some("invalidPath"));
    let not_json = send_raw(
        &app,
        Method::POST,
        &format!("{}/Users", scim.base()),
        Some(&t.key),
        Some((SCIM_JSON, "{".to_owned())),
        &[],
    )
    .await;
    assert_eq!(not_json.status, StatusCode::BAD_REQUEST, "{not_json:#?}");
    assert_eq!(not_json.content_type(), Some(SCIM_JSON), "{not_json:#?}");
    assert_eq!(not_json.body["schemas"], json!([ERROR_SCHEMA]));
    assert_eq!(
        member_state(&app, &t.admin, tenant, &dana).await,
        dana_before,
        "refused requests change nothing"
    );
    // Duplicates: a userName and a group name the tenant has.
    assert_scim_error(
        &scim
            .post("/Users", &user_body("DANA@rules.example", "Dana"))
            .await,
        StatusCode::CONFLICT,
        Some("uniqueness"),
    );
    assert_scim_error(
        &scim
            .post(
                "/Groups",
                &json!({ "schemas": [GROUP_SCHEMA], "displayName": "support desk" }),
            )
            .await,
        StatusCode::CONFLICT,
        Some("uniqueness"),
    );
    // Unknown ids.
    assert_scim_error(
        &scim
            .get("/Users/0190a000-0000-7000-8000-000000000000")
            .await,
        StatusCode::NOT_FOUND,
        None,
    );
    assert_scim_error(
        &scim.get("/Groups/no_such_group").await,
        StatusCode::NOT_FOUND,
        None,
    );

    // (g) An existing platform user joins as `member`; `active: false` suspends them in
    // this tenant only; their email is not SCIM's to change while another tenant knows
    // them.
    let other = provisioned(&app, &root, "rules-two").await;
    let frank = platform_user(&app, &root, "frank@rules.example").await;
    let joined = scim
        .post("/Users", &user_body("Frank@Rules.example", "Frank"))
        .await;
    assert_scim(&joined, StatusCode::CREATED);
    assert_eq!(joined.body["id"], json!(frank), "the platform user joins");
    let elsewhere = Scim::new(&app, "rules-two", &other.key);
    assert_eq!(
        elsewhere
            .create_user(&user_body("frank@rules.example", "Frank Two"))
            .await,
        frank
    );
    let account = member_body(&app, &t.admin, tenant, &frank).await;
    assert_eq!(account["roles"], json!(["member"]));
    assert_eq!(account["state"], "active");
    let suspended = scim
        .patch(
            &format!("/Users/{frank}"),
            &patch_op(json!([{ "op": "replace", "path": "active", "value": false }])),
        )
        .await;
    assert_scim(&suspended, StatusCode::OK);
    assert_eq!(
        member_body(&app, &t.admin, tenant, &frank).await["state"],
        "suspended"
    );
    assert_eq!(
        member_body(&app, &other.admin, "rules-two", &frank).await["state"],
        "active",
        "the other tenant's account is untouched"
    );
    let user = app.get(&format!("/v1/users/{frank}"), &root).await;
    assert_eq!(
        user.body["state"], "active",
        "the platform user is untouched"
    );
    assert_eq!(
        elsewhere.get(&format!("/Users/{frank}")).await.body["active"],
        true
    );
    assert_eq!(
        elsewhere.get(&format!("/Users/{frank}")).await.body["displayName"],
        "Frank Two",
        "profiles are per tenant"
    );
    let email_change = scim
        .patch(
            &format!("/Users/{frank}"),
            &patch_op(json!([{
                "op": "replace", "path": "userName", "value": "frank@elsewhere.example"
            }])),
        )
        .await;
    assert_scim_error(&email_change, StatusCode::BAD_REQUEST, Some("mutability"));
    let user = app.get(&format!("/v1/users/{frank}"), &root).await;
    assert_eq!(user.body["email"], "frank@rules.example");

    // A suspended member is found by `active eq false`; a User created inactive is a
    // suspended account from the start.
    let inactive = scim
        .get(&format!("/Users?{}", filter("active eq false")))
        .await;
    let found = assert_list(&inactive, 1);
    assert_eq!(found[0]["id"], json!(frank), "{inactive:#?}");
    let mut gina = user_body("gina@rules.example", "Gina");
    gina["active"] = json!(false);
    let gina = scim.create_user(&gina).await;
    assert_eq!(
        member_body(&app, &t.admin, tenant, &gina).await["state"],
        "suspended"
    );
    assert_event(
        &events(&app, &t.admin, tenant).await,
        "account.state_changed",
        &gina,
        tenant,
    );

    // Paging: startIndex and count.
    let members = app
        .get(&format!("/v1/tenants/{tenant}/members?limit=200"), &t.admin)
        .await;
    let total = members.body["items"].as_array().expect("items").len();
    let page = scim.get("/Users?startIndex=2&count=1").await;
    assert_scim(&page, StatusCode::OK);
    assert_eq!(page.body["totalResults"], json!(total), "{page:#?}");
    assert_eq!(page.body["startIndex"], 2, "{page:#?}");
    assert_eq!(page.body["itemsPerPage"], 1, "{page:#?}");
    assert_eq!(
        page.body["Resources"].as_array().map(Vec::len),
        Some(1),
        "{page:#?}"
    );

    // (f) Each change's audit record and events.
    let carol = scim
        .create_user(&user_body("carol@rules.example", "Carol"))
        .await;
    let patched = scim
        .patch(
            &format!("/Users/{carol}"),
            &patch_op(json!([
                { "op": "replace", "path": "title", "value": "Lead" },
                { "op": "replace", "path": "active", "value": false }
            ])),
        )
        .await;
    assert_scim(&patched, StatusCode::OK);
    let deleted = scim.delete(&format!("/Users/{carol}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{deleted:#?}");
    for action in ["scim.user.create", "scim.user.patch", "scim.user.delete"] {
        let records = audit(&app, &t.admin, tenant, action).await;
        let mine: Vec<&Value> = records
            .iter()
            .filter(|record| record["target"]["id"] == json!(carol))
            .collect();
        assert_eq!(
            mine.len(),
            1,
            "one {action} record about carol: {records:#?}"
        );
        assert_eq!(mine[0]["outcome"], "allowed", "{mine:#?}");
        assert_eq!(mine[0]["tenant"], tenant, "{mine:#?}");
        assert_eq!(mine[0]["actor"]["type"], "api_key", "{mine:#?}");
        assert_eq!(mine[0]["actor"]["id"], json!(t.key_id), "{mine:#?}");
        let record = mine[0].to_string();
        assert!(
            !record.contains("carol@rules.example"),
            "a record names ids, never an email: {record}"
        );
    }
    let feed = events(&app, &t.admin, tenant).await;
    for event_type in [
        "membership.added",
        "scim.identity_changed",
        "profile.value_set",
        "account.state_changed",
        "membership.removed",
    ] {
        assert_event(&feed, event_type, &carol, tenant);
    }
    assert!(
        events_of(&feed, "profile.value_set", &carol)
            .iter()
            .any(|event| event["data"]["key"] == "title" && event["data"]["value"] == "Lead"),
        "{feed:#?}"
    );
    assert!(
        events_of(&feed, "account.state_changed", &carol)
            .iter()
            .any(|event| event["data"]["state"] == "suspended"),
        "{feed:#?}"
    );
    // The refused ones of (a) left no event about the admin beyond their joining.
    assert!(
        events_of(&feed, "account.state_changed", &t.admin_id).is_empty()
            && events_of(&feed, "membership.removed", &t.admin_id).is_empty(),
        "{feed:#?}"
    );
}

// ---------------------------------------------------------------------------------------
// 5. Concurrency.

/// Under concurrency: 20 creates of one new userName give exactly one member (one 201,
/// nineteen 409 `uniqueness`), and 20 PATCHes at one `If-Match` exactly one change (one
/// 200, nineteen 412), the winner's.
async fn concurrent_creates_and_conditional_patches_have_exactly_one_winner(store: StoreKind) {
    let tenant = "race";
    let (app, _root, t) = start(store, tenant).await;
    let scim = Scim::new(&app, tenant, &t.key);

    // (a) One userName, twenty creates.
    // Half of them spell it in capitals: userName and email compare ignoring case.
    let bodies: Vec<Value> = (0..20)
        .map(|i| {
            user_body(
                if i % 2 == 0 {
                    "racer@race.example"
                } else {
                    "RACER@Race.Example"
                },
                "Racer",
            )
        })
        .collect();
    let replies =
        futures::future::join_all(bodies.iter().map(|body| scim.post("/Users", body))).await;
    let winners: Vec<&Reply> = replies
        .iter()
        .filter(|reply| reply.status == StatusCode::CREATED)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one create wins: {replies:#?}");
    for reply in replies
        .iter()
        .filter(|reply| reply.status != StatusCode::CREATED)
    {
        assert_scim_error(reply, StatusCode::CONFLICT, Some("uniqueness"));
    }
    let racer = text(&winners[0].body, "id").to_owned();
    let members = app
        .get(&format!("/v1/tenants/{tenant}/members?limit=200"), &t.admin)
        .await;
    let racers: Vec<&Value> = members.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|member| member["email"] == "racer@race.example")
        .collect();
    assert_eq!(racers.len(), 1, "one member: {members:#?}");
    assert_eq!(racers[0]["user_id"], json!(racer));
    let feed = events(&app, &t.admin, tenant).await;
    assert_eq!(
        events_of(&feed, "membership.added", &racer).len(),
        1,
        "{feed:#?}"
    );
    let created = audit(&app, &t.admin, tenant, "scim.user.create").await;
    assert_eq!(
        created
            .iter()
            .filter(|record| record["outcome"] == "allowed")
            .count(),
        1,
        "{created:#?}"
    );
    assert_eq!(
        assert_list(&scim.find_user("racer@race.example").await, 1)[0]["id"],
        json!(racer)
    );

    // (b) Twenty PATCHes at the same version.
    let current = scim.get(&format!("/Users/{racer}")).await;
    let etag = scim_etag(&current);
    let path = format!("/Users/{racer}");
    let replies = futures::future::join_all((0..20).map(|i| {
        let body = patch_op(json!([{
            "op": "replace", "path": "displayName", "value": format!("Racer {i}")
        }]));
        let path = path.clone();
        let etag = etag.clone();
        let scim = &scim;
        async move {
            scim.send(
                Method::PATCH,
                &path,
                Some(&body),
                &[("if-match", etag.as_str())],
            )
            .await
        }
    }))
    .await;
    let winners: Vec<&Reply> = replies
        .iter()
        .filter(|reply| reply.status == StatusCode::OK)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one PATCH wins: {replies:#?}");
    for reply in replies
        .iter()
        .filter(|reply| reply.status != StatusCode::OK)
    {
        assert_scim_error(reply, StatusCode::PRECONDITION_FAILED, None);
    }
    let winner = winners[0].body["displayName"]
        .as_str()
        .expect("the winner's displayName")
        .to_owned();
    assert!(winner.starts_with("Racer "), "{winner}");
    assert_ne!(scim_etag(winners[0]), etag);
    let values = profile(&app, &t.admin, tenant, &racer).await;
    assert_eq!(
        member_value(&values, "display_name").as_deref(),
        Some(winner.as_str())
    );
    let read = scim.get(&path).await;
    assert_eq!(read.body["displayName"], json!(winner));
    assert_eq!(scim_etag(&read), scim_etag(winners[0]));
    let feed = events(&app, &t.admin, tenant).await;
    let display_names: Vec<&Value> = events_of(&feed, "profile.value_set", &racer)
        .into_iter()
        .filter(|event| event["data"]["key"] == "display_name")
        .collect();
    assert_eq!(
        display_names.len(),
        2,
        "the create's display_name and the winner's: {display_names:#?}"
    );

    // (c) Twenty creates of one group name: one group. Then ten members added to it at
    // once, each by a PATCH of its own: none is lost.
    let group = json!({ "schemas": [GROUP_SCHEMA], "displayName": "Night Shift" });
    let replies = futures::future::join_all((0..20).map(|_| scim.post("/Groups", &group))).await;
    let created: Vec<&Reply> = replies
        .iter()
        .filter(|reply| reply.status == StatusCode::CREATED)
        .collect();
    assert_eq!(created.len(), 1, "exactly one group: {replies:#?}");
    for reply in replies
        .iter()
        .filter(|reply| reply.status != StatusCode::CREATED)
    {
        assert_scim_error(reply, StatusCode::CONFLICT, Some("uniqueness"));
    }
    let group_id = text(&created[0].body, "id").to_owned();
    assert_eq!(
        bindings(&app, &t.admin, tenant)
            .await
            .iter()
            .filter(|binding| binding["role"] == json!(group_id))
            .count(),
        1
    );
    let mut crew = Vec::new();
    for i in 0..10 {
        crew.push(
            scim.create_user(&user_body(&format!("crew{i}@race.example"), "Crew"))
                .await,
        );
    }
    let group_path = format!("/Groups/{group_id}");
    let replies = futures::future::join_all(crew.iter().map(|user| {
        let body =
            patch_op(json!([{ "op": "add", "path": "members", "value": [{ "value": user }] }]));
        let group_path = group_path.clone();
        let scim = &scim;
        async move { scim.patch(&group_path, &body).await }
    }))
    .await;
    for reply in &replies {
        assert_scim(reply, StatusCode::OK);
    }
    let group = scim.get(&group_path).await;
    let mut members: Vec<String> = group.body["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|member| text(member, "value").to_owned())
        .collect();
    members.sort();
    let mut expected = crew.clone();
    expected.sort();
    assert_eq!(members, expected, "no add is lost");
    for user in &crew {
        assert_eq!(
            roles_of(&app, &t.admin, tenant, user).await,
            json!(["member", group_id])
        );
    }
    // A deprovisioned member leaves the group.
    let deleted = scim.delete(&format!("/Users/{}", crew[0])).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{deleted:#?}");
    let group = scim.get(&group_path).await;
    assert_eq!(
        group.body["members"].as_array().map(Vec::len),
        Some(9),
        "{group:#?}"
    );
    assert!(!group.body["members"]
        .as_array()
        .expect("members")
        .iter()
        .any(|member| member["value"] == json!(crew[0])));
}

tests::on_both_stores!(
    okta_provisions_updates_deactivates_groups_and_deprovisions_a_user,
    entra_provisions_patches_groups_and_deprovisions_a_user,
    a_patch_of_attributes_the_engine_does_not_keep_changes_nothing_after_entras_create,
    a_patch_of_attributes_the_engine_does_not_keep_changes_nothing_on_a_v1_member,
    another_tenants_key_reaches_nothing_and_errors_are_scim_bodies,
    scim_keeps_the_tenant_rules_and_leaves_audit_records_and_events,
    concurrent_creates_and_conditional_patches_have_exactly_one_winner,
);
