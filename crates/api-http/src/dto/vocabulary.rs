//! The closed vocabularies of the response bodies (states, assurance levels, sources,
//! outcomes, verdicts): enums that serialize to the domain's words and are documented
//! as `enum` schemas, each converted `From` the domain's own type.

use serde::Serialize;
use utoipa::ToSchema;

use domain::audit::{ActorType, Outcome};
use domain::ids::{Assurance, ProfileType};
use domain::model::{AccountState, ProfileSource, TenantState, UserState};

/// A tenant state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TenantStateName {
    Active,
    Suspended,
}

impl From<TenantState> for TenantStateName {
    fn from(state: TenantState) -> Self {
        match state {
            TenantState::Active => Self::Active,
            TenantState::Suspended => Self::Suspended,
        }
    }
}

/// A user's platform-wide state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserStateName {
    Invited,
    Active,
    Suspended,
}

impl From<UserState> for UserStateName {
    fn from(state: UserState) -> Self {
        match state {
            UserState::Invited => Self::Invited,
            UserState::Active => Self::Active,
            UserState::Suspended => Self::Suspended,
        }
    }
}

/// A member's tenant account state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountStateName {
    Active,
    Suspended,
}

impl From<AccountState> for AccountStateName {
    fn from(state: AccountState) -> Self {
        match state {
            AccountState::Active => Self::Active,
            AccountState::Suspended => Self::Suspended,
        }
    }
}

/// An authentication assurance level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AssuranceName {
    Aal1,
    Aal2,
}

impl From<Assurance> for AssuranceName {
    fn from(assurance: Assurance) -> Self {
        match assurance {
            Assurance::Aal1 => Self::Aal1,
            Assurance::Aal2 => Self::Aal2,
        }
    }
}

/// Where a resolved profile value came from (SPEC §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProfileSourceName {
    TenantMember,
    Platform,
    TenantDefault,
}

impl From<ProfileSource> for ProfileSourceName {
    fn from(source: ProfileSource) -> Self {
        match source {
            ProfileSource::TenantMember => Self::TenantMember,
            ProfileSource::Platform => Self::Platform,
            ProfileSource::TenantDefault => Self::TenantDefault,
        }
    }
}

/// The type of a profile key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProfileTypeName {
    String,
    Number,
    Boolean,
}

impl From<ProfileType> for ProfileTypeName {
    fn from(value_type: ProfileType) -> Self {
        match value_type {
            ProfileType::String => Self::String,
            ProfileType::Number => Self::Number,
            ProfileType::Boolean => Self::Boolean,
        }
    }
}

/// Who acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActorTypeName {
    User,
    ApiKey,
    System,
    Anonymous,
    OauthClient,
}

impl From<ActorType> for ActorTypeName {
    fn from(kind: ActorType) -> Self {
        match kind {
            ActorType::User => Self::User,
            ActorType::ApiKey => Self::ApiKey,
            ActorType::System => Self::System,
            ActorType::Anonymous => Self::Anonymous,
            ActorType::OAuthClient => Self::OauthClient,
        }
    }
}

/// Whether an audited operation was allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeName {
    Allowed,
    Denied,
}

impl From<Outcome> for OutcomeName {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Allowed => Self::Allowed,
            Outcome::Denied => Self::Denied,
        }
    }
}

/// allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DecisionName {
    Allow,
    Deny,
}

/// A tenant's readiness: `not_ready` when any check fails, else `degraded` when any
/// warns, else `ready`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReadinessName {
    Ready,
    Degraded,
    NotReady,
}

impl From<diagnostics::Status> for ReadinessName {
    fn from(status: diagnostics::Status) -> Self {
        match status {
            diagnostics::Status::Ready => Self::Ready,
            diagnostics::Status::Degraded => Self::Degraded,
            diagnostics::Status::NotReady => Self::NotReady,
        }
    }
}

/// One diagnostic check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatusName {
    Pass,
    Warn,
    Fail,
}

impl From<diagnostics::CheckStatus> for CheckStatusName {
    fn from(status: diagnostics::CheckStatus) -> Self {
        match status {
            diagnostics::CheckStatus::Pass => Self::Pass,
            diagnostics::CheckStatus::Warn => Self::Warn,
            diagnostics::CheckStatus::Fail => Self::Fail,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use serde::Serialize;
    use serde_json::Value;

    use super::*;

    fn wire(body: impl Serialize) -> Value {
        serde_json::to_value(body).unwrap()
    }

    #[test]
    fn the_closed_vocabularies_write_the_domain_words() {
        for state in [TenantState::Active, TenantState::Suspended] {
            assert_eq!(wire(TenantStateName::from(state)), state.as_str());
        }
        for state in [UserState::Invited, UserState::Active, UserState::Suspended] {
            assert_eq!(wire(UserStateName::from(state)), state.as_str());
        }
        for state in [AccountState::Active, AccountState::Suspended] {
            assert_eq!(wire(AccountStateName::from(state)), state.as_str());
        }
        for assurance in [Assurance::Aal1, Assurance::Aal2] {
            assert_eq!(wire(AssuranceName::from(assurance)), assurance.as_str());
        }
        for source in [
            ProfileSource::TenantMember,
            ProfileSource::Platform,
            ProfileSource::TenantDefault,
        ] {
            assert_eq!(wire(ProfileSourceName::from(source)), source.as_str());
        }
        for value_type in [
            ProfileType::String,
            ProfileType::Number,
            ProfileType::Boolean,
        ] {
            assert_eq!(wire(ProfileTypeName::from(value_type)), value_type.as_str());
        }
        for kind in [
            ActorType::User,
            ActorType::ApiKey,
            ActorType::System,
            ActorType::Anonymous,
            ActorType::OAuthClient,
        ] {
            assert_eq!(wire(ActorTypeName::from(kind)), kind.as_str());
        }
        for outcome in [Outcome::Allowed, Outcome::Denied] {
            assert_eq!(wire(OutcomeName::from(outcome)), outcome.as_str());
        }
        for status in [
            diagnostics::Status::Ready,
            diagnostics::Status::Degraded,
            diagnostics::Status::NotReady,
        ] {
            assert_eq!(wire(ReadinessName::from(status)), status.as_str());
        }
        for status in [
            diagnostics::CheckStatus::Pass,
            diagnostics::CheckStatus::Warn,
            diagnostics::CheckStatus::Fail,
        ] {
            assert_eq!(wire(CheckStatusName::from(status)), status.as_str());
        }
    }
}
