//! The wire format: request bodies ([`request`]) and the JSON bodies of SPEC §4
//! ([`response`]), each a type that is also its OpenAPI schema, mapped explicitly from
//! and to the domain's values.

pub mod request;
pub mod response;

pub use request::*;
pub use response::*;

use domain::model::{Member as DomainMember, ResolvedProfile};

/// A member's strong `ETag`.
pub fn member_etag(member: &DomainMember) -> String {
    format!("\"m{}\"", member.version)
}

/// A profile's strong `ETag`.
pub fn profile_etag(profile: &ResolvedProfile) -> String {
    format!("\"p{}\"", domain::usecases::profile_etag(profile))
}
