//! The OpenAPI 3.1 description of the HTTP API, generated from the handlers'
//! `#[utoipa::path]` annotations, served at `/openapi.json` and printed by
//! `user-engine openapi`.
//!
//! The schemas are the types the handlers read and write (`dto`, and `errors::Problem`).
//! Rules that hold for every route are applied once, in [`CommonRules`], rather than
//! repeated on each handler: every 4xx/5xx carries the problem+json body of SPEC §5,
//! every JSON body can be refused with 413 and 415, every POST honours
//! `Idempotency-Key` (400 when malformed), every tenant route can answer 404
//! `tenant_not_found`, every bearer route 401 and 429, and every route 503 `overloaded`
//! with `Retry-After` (its deadline, the hashing queue); path parameters and body fields
//! carry SPEC §2's formats as patterns that accept exactly what the server's parsers
//! accept, request bodies are closed objects (or a `oneOf` of them) with no `null`, and
//! states, reasons and problem codes are enums. `cargo xtask schemathesis` holds the
//! server to this document.

use std::sync::OnceLock;

use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Required, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::dto;

mod formats;

pub use formats::*;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

// ---- the document --------------------------------------------------------------------

#[derive(OpenApi)]
#[openapi(
    info(
        title = "user-engine",
        description = "Users, tenants, memberships, profiles and authorization decisions \
                       (SPEC §4). Every error is `application/problem+json` (SPEC §5).",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    components(schemas(crate::errors::Problem, dto::SubjectBody)),
    tags(
        (name = "auth", description = "Sessions, TOTP, passwords and invitations"),
        (name = "tenants", description = "Tenants and their enabled scopes"),
        (name = "roles", description = "Tenant role bindings"),
        (name = "members", description = "Tenant members and their accounts"),
        (name = "profiles", description = "Profile values in three layers (SPEC §3.4)"),
        (name = "api-keys", description = "Tenant API keys"),
        (name = "authorize", description = "Authorization decisions"),
        (name = "audit", description = "Audit trails and event feeds"),
        (name = "users", description = "Platform users"),
        (name = "catalog", description = "The scope catalog and the profile schema"),
        (name = "operations", description = "Health, readiness, metrics, this document"),
        (name = "oidc", description = "The OpenID provider (SPEC §9)"),
        (name = "oauth-clients", description = "The OpenID provider's clients (SPEC §9)"),
    )
)]
struct ApiDoc;

/// The rules every route shares (see the module docs), and the bearer scheme.
struct CommonRules;

impl Modify for CommonRules {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A session token from `POST /v1/auth/password`, or a tenant API key \
                         (`uek_…`).",
                    ))
                    .build(),
            ),
        );
        for item in openapi.paths.paths.values_mut() {
            if let Some(post) = item.post.as_mut() {
                idempotent(post);
            }
            for operation in [
                item.get.as_mut(),
                item.post.as_mut(),
                item.put.as_mut(),
                item.patch.as_mut(),
                item.delete.as_mut(),
            ]
            .into_iter()
            .flatten()
            {
                if operation.request_body.is_some() {
                    add_error(
                        operation,
                        "413",
                        "`payload_too_large`: the body is over 64 KiB",
                    );
                    add_error(
                        operation,
                        "415",
                        "`unsupported_media_type`: the body is not `application/json`",
                    );
                }
                problem_bodies(operation);
                optional_not_null(operation);
            }
        }
        for (path, item) in &mut openapi.paths.paths {
            for operation in [
                item.get.as_mut(),
                item.post.as_mut(),
                item.put.as_mut(),
                item.patch.as_mut(),
                item.delete.as_mut(),
            ]
            .into_iter()
            .flatten()
            {
                parameter_formats(path, operation);
                refusals(path, operation);
            }
        }
        body_formats(components);
        response_formats(components);
    }
}

/// The SPEC §2 format of each path parameter, by its name (and, for `key`, its path),
/// and of the query parameters that carry one.
fn parameter_formats(path: &str, operation: &mut Operation) {
    for parameter in operation.parameters.iter_mut().flatten() {
        let schema = match (&parameter.parameter_in, parameter.name.as_str()) {
            (ParameterIn::Path | ParameterIn::Query, "tenant") => tenant_id_schema(),
            (ParameterIn::Path, "user" | "session") => uuid_v7_schema(),
            (ParameterIn::Path, "key") if path.contains("/api-keys/") => uuid_v7_schema(),
            (ParameterIn::Path, "key") => profile_key_schema(),
            (ParameterIn::Path, "role") if operation.request_body.is_some() => {
                text(BINDABLE_ROLE_PATTERN).build().into()
            }
            (ParameterIn::Path, "role") => role_schema(),
            (ParameterIn::Path, "client") => text(CLIENT_ID_PATTERN).build().into(),
            (ParameterIn::Path, "name") if path.contains("/webhooks/") => {
                text("^[a-z0-9][a-z0-9_-]{0,62}$").build().into()
            }
            _ => continue,
        };
        parameter.schema = Some(RefOr::T(schema));
    }
}

/// Answers every operation can give besides its own: 404 `tenant_not_found` on every
/// tenant route (SPEC §3.1), 429 where a throttle counts (SPEC §3.6: failed bearer
/// authentications on every bearer route, failed TOTP codes), and 503 `overloaded` on
/// every route (SPEC §7: a request past its deadline, or a full password-hashing queue).
fn refusals(path: &str, operation: &mut Operation) {
    with_retry_after(
        operation,
        "503",
        "`overloaded`: the request passed its deadline (USER_ENGINE_REQUEST_TIMEOUT), or \
         the password-hashing queue is full; retry after the seconds given",
    );
    if path.starts_with("/v1/tenants/{tenant}") {
        add_error(
            operation,
            "404",
            "`tenant_not_found`: no such tenant, or the caller may not see it",
        );
    }
    let secured = operation
        .security
        .as_ref()
        .is_some_and(|requirements| !requirements.is_empty());
    if secured {
        add_error(operation, "401", "`unauthenticated`: no valid bearer token");
        add_retry_after(
            operation,
            "`rate_limited`: too many failed bearer authentications from this address",
        );
    }
    if matches!(path, "/v1/auth/totp" | "/v1/me/totp/confirm") {
        add_retry_after(
            operation,
            "`rate_limited`: too many failed TOTP codes for this user",
        );
    }
}

/// A 429 with its `Retry-After` header.
fn add_retry_after(operation: &mut Operation, description: &str) {
    with_retry_after(operation, "429", description);
}

/// An error answer of `status` with its `Retry-After` header (429, 503).
fn with_retry_after(operation: &mut Operation, status: &str, description: &str) {
    if !operation.responses.responses.contains_key(status) {
        let response = ResponseBuilder::new()
            .description(description)
            .header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .minimum(Some(1)),
                    )
                    .description(Some("Seconds to wait"))
                    .build(),
            )
            .build();
        operation
            .responses
            .responses
            .insert(status.to_owned(), RefOr::T(response));
        problem_bodies(operation);
    } else {
        add_error(operation, status, description);
    }
}

/// Replaces the named properties of a component schema.
fn set_properties(
    components: &mut utoipa::openapi::Components,
    name: &str,
    properties: Vec<(&str, Schema)>,
) {
    if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(name) {
        for (property, schema) in properties {
            object
                .properties
                .insert(property.to_owned(), RefOr::T(schema));
        }
    }
}

/// Request bodies: the SPEC §2 format of every field, the `oneOf` shapes the handlers
/// accept, and `additionalProperties: false` (every body denies unknown fields).
/// Optional fields are left out, never sent as null: the server refuses a null.
fn body_formats(components: &mut utoipa::openapi::Components) {
    let assurance = || one_of_words(&["aal1", "aal2"]);
    let active_or_suspended = || one_of_words(&["active", "suspended"]);
    set_properties(components, "LoginBody", vec![("email", email_schema())]);
    set_properties(
        components,
        "PasswordChangeBody",
        vec![("new_password", new_password_schema())],
    );
    set_properties(
        components,
        "InvitationBody",
        vec![("password", new_password_schema())],
    );
    set_properties(
        components,
        "CreateUserBody",
        vec![
            ("email", email_schema()),
            ("password", new_password_schema()),
        ],
    );
    let admin = Schema::OneOf(
        OneOfBuilder::new()
            .description(Some(
                "The first `tenant_admin`: an email (created as `invited` when new) or an \
                 existing user's id.",
            ))
            .item(closed_object(&[("email", email_schema())], &["email"]))
            .item(closed_object(
                &[("user_id", uuid_v7_schema())],
                &["user_id"],
            ))
            .build(),
    );
    set_properties(
        components,
        "CreateTenantBody",
        vec![
            ("id", tenant_id_schema()),
            ("display_name", display_name_schema()),
            ("admin", admin),
        ],
    );
    set_properties(
        components,
        "PatchTenantBody",
        vec![
            ("display_name", display_name_schema()),
            ("state", active_or_suspended()),
        ],
    );
    set_properties(
        components,
        "ScopesBody",
        vec![("scopes", list(scope_schema(), 0))],
    );
    let uris = |min_items: usize| -> Schema {
        ArrayBuilder::new()
            .items(RefOr::T(
                text(domain::oidc::REDIRECT_URI_PATTERN)
                    .max_length(Some(2048))
                    .examples(["https://app.example.com/callback"])
                    .build()
                    .into(),
            ))
            .min_items((min_items > 0).then_some(min_items))
            .max_items(Some(domain::oidc::REDIRECT_URIS_MAX))
            .unique_items(true)
            .build()
            .into()
    };
    let client = |types: &[&str], scopes: bool| {
        let mut properties = vec![
            ("name", display_name_schema()),
            ("type", one_of_words(types)),
            ("redirect_uris", uris(1)),
            ("post_logout_redirect_uris", uris(0)),
            (
                "first_party",
                ObjectBuilder::new()
                    .schema_type(Type::Boolean)
                    .build()
                    .into(),
            ),
        ];
        if scopes {
            properties.push(("scopes", list(scope_schema(), 0)));
        }
        closed_object(&properties, &["name", "type", "redirect_uris"])
    };
    components.schemas.insert(
        "NewPlatformClientBody".to_owned(),
        RefOr::T(client(&["confidential", "public"], false)),
    );
    components.schemas.insert(
        "NewTenantClientBody".to_owned(),
        RefOr::T(Schema::OneOf(
            OneOfBuilder::new()
                .description(Some(
                    "A confidential client, which may hold `client_credentials` scopes, or a \
                     public one, which holds none.",
                ))
                .item(client(&["confidential"], true))
                .item(client(&["public"], false))
                .build(),
        )),
    );
    let roles = || list(role_schema(), 0);
    components.schemas.insert(
        "AddMemberBody".to_owned(),
        RefOr::T(Schema::OneOf(
            OneOfBuilder::new()
                .description(Some(
                    "An email (a new one creates an `invited` user) or an existing user's \
                     id, and tenant roles (default `member`).",
                ))
                .item(closed_object(
                    &[("email", email_schema()), ("roles", roles())],
                    &["email"],
                ))
                .item(closed_object(
                    &[("user_id", uuid_v7_schema()), ("roles", roles())],
                    &["user_id"],
                ))
                .build(),
        )),
    );
    set_properties(
        components,
        "PatchMemberBody",
        vec![
            ("roles", list(role_schema(), 1)),
            ("state", active_or_suspended()),
        ],
    );
    set_properties(
        components,
        "PatchUserBody",
        vec![("state", active_or_suspended())],
    );
    set_properties(
        components,
        "RolesBody",
        vec![(
            "roles",
            list(one_of_words(&["platform_root", "platform_auditor"]), 0),
        )],
    );
    set_properties(
        components,
        "NewScopeBody",
        vec![
            ("name", scope_schema()),
            (
                "description",
                text("^[^\\x00]*$").max_length(Some(1024)).build().into(),
            ),
            ("min_assurance", assurance()),
        ],
    );
    set_properties(
        components,
        "SchemaBody",
        vec![("type", one_of_words(&["string", "number", "boolean"]))],
    );
    set_properties(
        components,
        "NewApiKeyBody",
        vec![
            ("name", display_name_schema()),
            ("scopes", list(scope_schema(), 1)),
        ],
    );
    components.schemas.insert(
        "SubjectBody".to_owned(),
        RefOr::T(Schema::OneOf(
            OneOfBuilder::new()
                .description(Some(
                    "A user and the assurance to decide at (default `aal1`), or a session \
                     token, answered from the live session.",
                ))
                .item(closed_object(
                    &[("user_id", uuid_v7_schema()), ("assurance", assurance())],
                    &["user_id"],
                ))
                .item(closed_object(
                    &[(
                        "token",
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .build()
                            .into(),
                    )],
                    &["token"],
                ))
                .build(),
        )),
    );
    set_properties(
        components,
        "AuthorizeBody",
        vec![("scope", scope_schema()), ("target_user", uuid_v7_schema())],
    );
    if let Some(RefOr::T(Schema::Object(batch))) = components.schemas.get_mut("BatchBody") {
        batch.properties.insert(
            "checks".to_owned(),
            RefOr::T(
                ArrayBuilder::new()
                    .items(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                        "AuthorizeBody",
                    )))
                    .min_items(Some(1))
                    .max_items(Some(100))
                    .build()
                    .into(),
            ),
        );
    }
    for (name, schema) in components.schemas.iter_mut() {
        if !name.ends_with("Body") {
            continue;
        }
        if let RefOr::T(Schema::Object(object)) = schema {
            object.schema_type = SchemaType::Type(Type::Object);
            object.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
            for property in object.properties.values_mut() {
                if let RefOr::T(Schema::Object(field)) = property {
                    drop_null(&mut field.schema_type);
                }
            }
        }
    }
}

/// Removes `null` from a list of types (`Option` fields that are only ever left out).
fn drop_null(schema_type: &mut SchemaType) {
    if let SchemaType::Array(types) = schema_type {
        let kept: Vec<Type> = types
            .iter()
            .filter(|kind| **kind != Type::Null)
            .cloned()
            .collect();
        *schema_type = match kept.as_slice() {
            [only] => SchemaType::Type(only.clone()),
            _ => SchemaType::Array(kept),
        };
    }
}

/// Response bodies: the closed vocabularies (decision reasons, problem codes) and the
/// id formats.
fn response_formats(components: &mut utoipa::openapi::Components) {
    set_properties(
        components,
        "Decision",
        vec![("reason", one_of_words(DECISION_REASONS))],
    );
    let reasons: Vec<&str> = DECISION_REASONS
        .iter()
        .copied()
        .filter(|reason| {
            !matches!(
                *reason,
                "platform_root" | "platform_auditor" | "self" | "role_binding"
            )
        })
        .collect();
    set_properties(
        components,
        "Problem",
        vec![
            ("code", one_of_words(PROBLEM_CODES)),
            ("reason", one_of_words(&reasons)),
        ],
    );
    for (name, field) in [
        ("User", "id"),
        ("UserCreated", "id"),
        ("Member", "user_id"),
        ("MemberCreated", "user_id"),
        ("ApiKey", "id"),
        ("ApiKeyCreated", "id"),
        ("AuditRecord", "id"),
        ("CloudEvent", "id"),
    ] {
        set_properties(components, name, vec![(field, uuid_v7_schema())]);
    }
}

/// Adds the `Idempotency-Key` header and its 409 and 422 answers to a POST.
fn idempotent(operation: &mut Operation) {
    let header = ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "1 to 255 characters, scoped to the caller and the path: a replay returns the \
             first response (with `Idempotent-Replayed: true`).",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(255)),
        ))
        .build();
    operation
        .parameters
        .get_or_insert_with(Vec::new)
        .push(header);
    add_error(
        operation,
        "400",
        "`invalid_request`: an `Idempotency-Key` that is empty or over 255 characters",
    );
    add_error(
        operation,
        "409",
        "`idempotency_key_in_use`: a request with this `Idempotency-Key` is still running",
    );
    add_error(
        operation,
        "422",
        "`idempotency_key_reused`: this `Idempotency-Key` came with another body",
    );
}

/// Adds an error answer, or appends its description to the one the handler declared
/// (unless that one already names the same code).
fn add_error(operation: &mut Operation, status: &str, description: &str) {
    let code = description
        .split('`')
        .nth(1)
        .map(|code| format!("`{code}`"));
    match operation.responses.responses.get_mut(status) {
        Some(RefOr::T(response))
            if code
                .as_ref()
                .is_some_and(|code| response.description.contains(code.as_str())) => {}
        Some(RefOr::T(response)) => {
            response.description = format!("{}; {description}", response.description);
        }
        Some(RefOr::Ref(_)) => {}
        None => {
            operation.responses.responses.insert(
                status.to_owned(),
                RefOr::T(ResponseBuilder::new().description(description).build()),
            );
        }
    }
}

/// An optional parameter is left out, never sent as null: drop the `null` type that
/// `Option<…>` parameters get.
fn optional_not_null(operation: &mut Operation) {
    for parameter in operation.parameters.iter_mut().flatten() {
        if let Some(RefOr::T(Schema::Object(object))) = parameter.schema.as_mut() {
            if let SchemaType::Array(types) = &object.schema_type {
                let kept: Vec<Type> = types
                    .iter()
                    .filter(|kind| **kind != Type::Null)
                    .cloned()
                    .collect();
                object.schema_type = match kept.as_slice() {
                    [only] => SchemaType::Type(only.clone()),
                    _ => SchemaType::Array(kept),
                };
            }
        }
    }
}

/// Every 4xx and 5xx answers with a problem+json body (SPEC §5).
fn problem_bodies(operation: &mut Operation) {
    for (status, response) in &mut operation.responses.responses {
        let is_error = status.starts_with('4') || status.starts_with('5');
        if let (true, RefOr::T(response)) = (is_error, response) {
            response.content.clear();
            response.content.insert(
                PROBLEM_JSON.to_owned(),
                ContentBuilder::new()
                    .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                        "Problem",
                    ))))
                    .build(),
            );
        }
    }
}

/// The document's base: info, tags and the shared components; the paths come from the
/// routes as they are registered (`routes::api`).
pub fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The OpenAPI document of the whole API: the registered routes' paths, then the rules
/// every route shares.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut document = crate::routes::api().into_openapi();
    CommonRules.modify(&mut document);
    document
}

/// The document as pretty-printed JSON, built once per process.
pub fn json() -> String {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        // Serializing a tree of strings, maps and numbers cannot fail; the fallback
        // keeps the handler total anyway.
        document()
            .to_pretty_json()
            .unwrap_or_else(|error| format!("{{\"error\": \"{error}\"}}"))
    })
    .clone()
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::unreachable,
    reason = "tests: a failed lookup is a failed test"
)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use axum::http::header;
    use axum::response::IntoResponse;

    use super::*;
    use crate::errors::ApiError;

    const METHODS: &[&str] = &["get", "post", "put", "patch", "delete", "head", "options"];

    /// Routes that need no bearer token.
    const PUBLIC: &[&str] = &[
        "/v1/auth/password",
        "/v1/auth/invitation",
        "/v1/auth/password-reset/confirm",
        "/v1/auth/password-reset",
        "/v1/auth/email-verification",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/oauth2/jwks",
    ];

    fn parsed() -> Value {
        serde_json::from_str(&json()).unwrap()
    }

    fn operations(document: &Value) -> Vec<(String, String, &Value)> {
        let mut found = Vec::new();
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                if METHODS.contains(&method.as_str()) {
                    found.push((method.clone(), path.clone(), operation));
                }
            }
        }
        found
    }

    #[test]
    fn the_document_is_openapi_3_1() {
        let document = parsed();
        assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
        assert_eq!(document["info"]["title"], "user-engine");
    }

    #[tokio::test]
    async fn the_route_serves_the_document_as_json() {
        let response = crate::routes::operations::openapi_json().await;
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let served: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(served, parsed());
    }

    #[test]
    fn every_body_taking_or_changing_operation_documents_a_problem() {
        let document = parsed();
        for (method, path, operation) in operations(&document) {
            if method == "get" && operation.get("requestBody").is_none() {
                continue;
            }
            let responses = operation["responses"].as_object().unwrap();
            let problem_4xx = responses.iter().any(|(status, response)| {
                status.starts_with('4')
                    && response["content"][PROBLEM_JSON]["schema"]["$ref"]
                        == "#/components/schemas/Problem"
            });
            assert!(problem_4xx, "{method} {path} has no 4xx problem response");
        }
    }

    #[test]
    fn every_error_response_is_a_problem() {
        let document = parsed();
        for (method, path, operation) in operations(&document) {
            for (status, response) in operation["responses"].as_object().unwrap() {
                if status.starts_with('4') || status.starts_with('5') {
                    let content = response["content"].as_object().unwrap();
                    assert_eq!(content.len(), 1, "{method} {path} {status}");
                    assert_eq!(
                        content[PROBLEM_JSON]["schema"]["$ref"], "#/components/schemas/Problem",
                        "{method} {path} {status}"
                    );
                }
            }
        }
        let problem = &document["components"]["schemas"]["Problem"];
        let required: BTreeSet<&str> = problem["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|field| field.as_str().unwrap())
            .collect();
        assert_eq!(
            required,
            BTreeSet::from(["type", "title", "status", "code", "detail", "request_id"])
        );
        assert!(problem["properties"]["reason"].is_object());
    }

    #[test]
    fn every_operation_documents_success_and_private_ones_need_a_bearer_token() {
        let document = parsed();
        assert_eq!(
            document["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        for (method, path, operation) in operations(&document) {
            let responses = operation["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|status| status.starts_with('2')),
                "{method} {path} documents no success"
            );
            let secured = operation["security"]
                .as_array()
                .is_some_and(|list| list.iter().any(|entry| entry.get("bearer").is_some()));
            let public = PUBLIC.contains(&path.as_str());
            assert_eq!(secured, !public, "{method} {path} security");
            if secured {
                assert!(responses.contains_key("401"), "{method} {path} lacks 401");
            }
            if operation.get("requestBody").is_some() {
                for status in ["400", "413", "415"] {
                    assert!(responses.contains_key(status), "{method} {path} {status}");
                }
            }
            if method == "post" {
                assert!(responses.contains_key("422"), "{method} {path} lacks 422");
            }
        }
    }

    #[test]
    fn every_path_parameter_is_described() {
        let document = parsed();
        for (method, path, operation) in operations(&document) {
            let names: BTreeSet<&str> = path
                .split('/')
                .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
                .collect();
            let parameters = operation["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for name in names {
                let parameter = parameters
                    .iter()
                    .find(|parameter| parameter["in"] == "path" && parameter["name"] == name)
                    .unwrap_or_else(|| unreachable!("{method} {path} lacks {name}"));
                assert!(
                    parameter["description"].is_string(),
                    "{method} {path} {name}"
                );
                let schema = &parameter["schema"];
                assert!(
                    schema["pattern"].is_string(),
                    "{method} {path} {name} has no pattern"
                );
                if matches!(name, "user" | "session")
                    || path.contains("/api-keys/") && name == "key"
                {
                    assert_eq!(schema["pattern"], UUID_V7_PATTERN, "{method} {path} {name}");
                }
                if name == "tenant" {
                    assert_eq!(schema["pattern"], TENANT_ID_PATTERN, "{method} {path}");
                }
            }
        }
    }

    /// The schema a `$ref` names, or the schema itself.
    fn resolve<'a>(document: &'a Value, schema: &'a Value) -> &'a Value {
        match schema["$ref"].as_str() {
            Some(reference) => {
                let name = reference.trim_start_matches("#/components/schemas/");
                &document["components"]["schemas"][name]
            }
            None => schema,
        }
    }

    /// A body the server takes: an object of known fields only, or a choice of such.
    fn assert_closed(document: &Value, schema: &Value, at: &str) {
        let schema = resolve(document, schema);
        if let Some(choices) = schema["oneOf"].as_array() {
            for choice in choices {
                assert_closed(document, choice, at);
            }
            return;
        }
        assert_eq!(schema["type"], "object", "{at}: {schema}");
        assert_eq!(schema["additionalProperties"], false, "{at}: {schema}");
        for (name, property) in schema["properties"].as_object().unwrap() {
            assert!(
                !property["type"]
                    .as_array()
                    .is_some_and(|types| types.contains(&Value::from("null"))),
                "{at}.{name} admits null, which the server refuses"
            );
            if property["$ref"].is_string() {
                assert_closed(document, property, &format!("{at}.{name}"));
            }
        }
    }

    #[test]
    fn every_request_body_is_a_closed_object() {
        let document = parsed();
        for (method, path, operation) in operations(&document) {
            if let Some(body) = operation.get("requestBody") {
                let schema = &body["content"]["application/json"]["schema"];
                assert_closed(&document, schema, &format!("{method} {path}"));
            }
        }
        let subject = &document["components"]["schemas"]["SubjectBody"]["oneOf"];
        assert_eq!(subject.as_array().map(Vec::len), Some(2));
        let add_member = &document["components"]["schemas"]["AddMemberBody"]["oneOf"];
        assert_eq!(add_member[0]["required"], serde_json::json!(["email"]));
        assert_eq!(add_member[1]["required"], serde_json::json!(["user_id"]));
    }

    #[test]
    fn every_post_documents_a_bad_idempotency_key_and_every_tenant_route_a_404() {
        let document = parsed();
        for (method, path, operation) in operations(&document) {
            let responses = operation["responses"].as_object().unwrap();
            if method == "post" {
                assert!(responses.contains_key("400"), "{method} {path} lacks 400");
            }
            if path.starts_with("/v1/tenants/{tenant}") {
                let not_found = responses["404"]["description"].as_str().unwrap();
                assert!(
                    not_found.contains("`tenant_not_found`"),
                    "{method} {path}: {not_found}"
                );
            }
        }
    }

    #[test]
    fn the_closed_vocabularies_hold_every_code_of_the_spec() {
        let document = parsed();
        let words = |schema: &Value| -> BTreeSet<String> {
            schema["enum"]
                .as_array()
                .unwrap()
                .iter()
                .map(|word| word.as_str().unwrap().to_owned())
                .collect()
        };
        let problem = &document["components"]["schemas"]["Problem"]["properties"];
        let codes = words(&problem["code"]);
        // SPEC §5, as written there.
        for code in "invalid_request invalid_cursor invalid_tenant_id invalid_user_id \
                     invalid_email invalid_role invalid_scope unknown_scope unknown_role \
                     unknown_profile_key invalid_profile_value scope_not_assignable \
                     scope_not_enabled unauthenticated invalid_credentials invalid_totp \
                     forbidden tenant_not_found member_not_found user_not_found not_found \
                     tenant_exists member_exists email_taken last_tenant_admin \
                     last_platform_root precondition_failed payload_too_large \
                     unsupported_media_type idempotency_key_reused rate_limited overloaded"
            .split_whitespace()
        {
            assert!(codes.contains(code), "{code}");
        }
        let reasons = words(&document["components"]["schemas"]["Decision"]["properties"]["reason"]);
        let refusals = words(&problem["reason"]);
        for reason in [
            domain::authz::Reason::SubjectNotFound,
            domain::authz::Reason::SubjectInvited,
            domain::authz::Reason::ExceedsCaller,
            domain::authz::Reason::TargetProtected,
            domain::authz::Reason::RoleBinding,
            domain::authz::Reason::SelfService,
        ] {
            assert!(reasons.contains(reason.as_str()), "{}", reason.as_str());
            assert_eq!(
                refusals.contains(reason.as_str()),
                !reason.is_allow(),
                "{}",
                reason.as_str()
            );
        }
        let states = |name: &str| words(&document["components"]["schemas"][name]);
        assert_eq!(
            states("TenantStateName"),
            BTreeSet::from(["active".to_owned(), "suspended".to_owned()])
        );
        assert_eq!(states("UserStateName").len(), 3);
        assert_eq!(
            states("AssuranceName"),
            BTreeSet::from(["aal1".to_owned(), "aal2".to_owned()])
        );
    }

    fn schema_fields(document: &Value, name: &str) -> BTreeSet<String> {
        document["components"]["schemas"][name]["properties"]
            .as_object()
            .unwrap_or_else(|| unreachable!("no schema {name}"))
            .keys()
            .cloned()
            .collect()
    }

    fn body_fields(body: &Value) -> BTreeSet<String> {
        body.as_object().unwrap().keys().cloned().collect()
    }

    #[tokio::test]
    async fn the_problem_schema_names_the_fields_of_an_error_body() {
        let document = parsed();
        let error = ApiError::from(domain::Error::Forbidden(
            domain::authz::Reason::PlatformRootRequired,
        ));
        let response = error.into_response();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(schema_fields(&document, "Problem"), body_fields(&body));
    }
}
