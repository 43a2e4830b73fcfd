//! [`SigningKeys`]: the provider's signing keys (`signing_keys`, a platform table). The
//! private parts arrive sealed and are stored as the bytes they are.

use async_trait::async_trait;
use domain::ports::{SigningKeys, StoreError};
use domain::signing::{SigningAlgorithm, SigningKey};
use time::OffsetDateTime;

use super::SqlTx;
use crate::columns::Columns;
use crate::rows::Shape;
use crate::{corrupt, Backend, Statement};

/// A `signing_keys` row.
struct SigningKeyRow {
    kid: String,
    algorithm: String,
    public_jwk: serde_json::Value,
    sealed_private: Vec<u8>,
    created_at: OffsetDateTime,
    retired_at: Option<OffsetDateTime>,
}

const SIGNING_KEY_COLUMNS: &str =
    "kid, algorithm, public_jwk, sealed_private, created_at, retired_at";

impl Shape for SigningKeyRow {
    type Value = SigningKey;

    fn read<C: Columns + ?Sized>(row: &C) -> Result<Self, StoreError> {
        Ok(Self {
            kid: row.text("kid")?,
            algorithm: row.text("algorithm")?,
            public_jwk: row.json("public_jwk")?,
            sealed_private: row
                .bytes_opt("sealed_private")?
                .ok_or_else(|| corrupt("sealed_private"))?,
            created_at: row.time("created_at")?,
            retired_at: row.time_opt("retired_at")?,
        })
    }

    fn into_value(self) -> Result<SigningKey, StoreError> {
        Ok(SigningKey {
            kid: self.kid,
            algorithm: SigningAlgorithm::parse(&self.algorithm)
                .ok_or_else(|| corrupt("signing key algorithm"))?,
            public_jwk: self.public_jwk,
            sealed_private: self.sealed_private,
            created_at: self.created_at,
            retired_at: self.retired_at,
        })
    }
}

#[async_trait]
impl<B: Backend> SigningKeys for SqlTx<B> {
    async fn insert_signing_key(&mut self, key: &SigningKey) -> Result<(), StoreError> {
        self.scope.require_platform()?;
        self.execute(
            Statement::new(
                "insert into signing_keys (kid, algorithm, public_jwk, sealed_private, \
                 created_at, retired_at) values ($1, $2, $3, $4, $5, $6)",
            )
            .text(&key.kid)
            .text(key.algorithm.as_str())
            .json(&key.public_jwk)
            .bytes(key.sealed_private.clone())
            .time(key.created_at)
            .time_opt(key.retired_at),
        )
        .await
        .map(|_| ())
    }

    async fn list_signing_keys(&mut self) -> Result<Vec<SigningKey>, StoreError> {
        self.scope.require_platform()?;
        self.all::<SigningKeyRow>(Statement::new(format!(
            "select {SIGNING_KEY_COLUMNS} from signing_keys order by created_at desc, kid"
        )))
        .await
    }

    async fn retire_signing_keys(&mut self, at: OffsetDateTime) -> Result<u64, StoreError> {
        self.scope.require_platform()?;
        self.execute(
            Statement::new("update signing_keys set retired_at = $1 where retired_at is null")
                .time(at),
        )
        .await
    }
}
