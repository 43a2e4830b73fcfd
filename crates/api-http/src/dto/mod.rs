//! The wire format: request bodies ([`request`]) and the JSON bodies of SPEC §4
//! ([`response`], [`decision`], [`page`], with their closed [`vocabulary`]), each a type
//! that is also its OpenAPI schema, mapped explicitly from and to the domain's values.

pub mod convert;
pub mod decision;
pub mod page;
pub mod request;
pub mod response;
pub mod vocabulary;

pub use decision::*;
pub use page::*;
pub use request::*;
pub use response::*;
pub use vocabulary::*;

use domain::model::{Member as DomainMember, ResolvedProfile};

/// A member's strong `ETag`.
pub fn member_etag(member: &DomainMember) -> String {
    format!("\"m{}\"", member.version)
}

/// A profile's strong `ETag`.
pub fn profile_etag(profile: &ResolvedProfile) -> String {
    format!("\"p{}\"", domain::usecases::profile_etag(profile))
}

/// The names of a set of validated values, in their order.
fn names<'a, T: 'a>(values: impl IntoIterator<Item = &'a T>, name: fn(&T) -> &str) -> Vec<String> {
    values
        .into_iter()
        .map(|value| name(value).to_owned())
        .collect()
}
