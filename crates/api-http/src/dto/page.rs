//! One page of a list, `{items, next_cursor}`, for each item body.

use serde::Serialize;
use utoipa::ToSchema;

use super::response::*;

/// One page of a list, `{items, next_cursor}`, for each item type (concrete types, as
/// utoipa inlines the arguments of a generic schema instead of referring to them).
macro_rules! page {
    ($page:ident, $item:ty, $what:literal) => {
        #[doc = concat!("One page of ", $what, ": `{items, next_cursor}`.")]
        #[derive(Debug, Clone, Serialize, ToSchema)]
        pub struct $page {
            pub items: Vec<$item>,
            /// Present when more items follow; pass it back as `after`.
            pub next_cursor: Option<String>,
        }

        impl $page {
            /// A page of `items` mapped from the domain's, with the store's cursor.
            pub fn new<'a, T: 'a>(
                items: impl IntoIterator<Item = &'a T>,
                next_cursor: Option<String>,
            ) -> Self
            where
                $item: From<&'a T>,
            {
                Self {
                    items: items.into_iter().map(<$item>::from).collect(),
                    next_cursor,
                }
            }

            /// A list the store returns whole: one page, `next_cursor` null.
            pub fn whole<'a, T: 'a>(items: impl IntoIterator<Item = &'a T>) -> Self
            where
                $item: From<&'a T>,
            {
                Self::new(items, None)
            }

            /// One page of the store's.
            pub fn of<'a, T: 'a>(page: &'a domain::ports::Page<T>) -> Self
            where
                $item: From<&'a T>,
            {
                Self::new(&page.items, page.next_cursor.clone())
            }
        }
    };
}

page!(TenantPage, Tenant, "tenants");
page!(MemberPage, Member, "members");
page!(RolePage, Role, "role bindings");
page!(ApiKeyPage, ApiKey, "API keys");
page!(SessionPage, SessionInfo, "the caller's sessions");
page!(CatalogScopePage, CatalogScope, "catalog scopes");
page!(SchemaEntryPage, SchemaEntry, "profile schema entries");
page!(AuditRecordPage, AuditRecord, "audit records");
page!(CloudEventPage, CloudEvent, "events");
page!(WebhookPage, WebhookInfo, "webhooks");
page!(OAuthClientPage, OAuthClientInfo, "OAuth clients");
page!(DeliveryPage, DeliveryInfo, "webhook deliveries");
page!(
    ConsentPage,
    ConsentInfo,
    "a member's consents to OAuth clients"
);
