//! Role sets as bits over a table of role names, so the one set operation of a decision —
//! which of the subject's roles are bound to the scope — is an AND of words when both
//! sets come from the same table (as the store adapters' caches build them: one table per
//! tenant, shared by its bindings and its accounts).
//!
//! A set built from names alone ([`RoleSet::new`], the uncached paths and the tests) has
//! a table of its own; sets over different tables are compared by name, so every
//! operation gives the same answer whichever way its operands were built. Equality,
//! ordering of iteration and `Debug` are those of the names, as for a `BTreeSet`.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, LazyLock};

use crate::ids::RoleName;

/// Role names numbered in name order: the ids a [`RoleSet`]'s bits stand for.
#[derive(Debug, PartialEq, Eq, Default)]
pub struct RoleTable {
    names: Vec<RoleName>,
}

impl RoleTable {
    /// A table of `names` (deduplicated, in name order).
    pub fn new(names: impl IntoIterator<Item = RoleName>) -> Arc<Self> {
        let names: BTreeSet<RoleName> = names.into_iter().collect();
        Arc::new(Self {
            names: names.into_iter().collect(),
        })
    }

    /// The id of `name`, when the table has it.
    pub fn id(&self, name: &RoleName) -> Option<usize> {
        self.id_of(name.as_str())
    }

    fn id_of(&self, name: &str) -> Option<usize> {
        self.names
            .binary_search_by(|held| held.as_str().cmp(name))
            .ok()
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The bits of the names the table has; the others are returned apart.
    pub fn bits<'a>(
        &self,
        names: impl IntoIterator<Item = &'a RoleName>,
    ) -> (Bits, BTreeSet<RoleName>) {
        let mut ids = Vec::new();
        let mut others = BTreeSet::new();
        for name in names {
            match self.id(name) {
                Some(id) => ids.push(id),
                None => {
                    others.insert(name.clone());
                }
            }
        }
        (Bits::with(&ids), others)
    }
}

/// A set of ids: one word inline, more words shared.
#[derive(Clone)]
pub struct Bits(Repr);

#[derive(Clone)]
enum Repr {
    Word(u64),
    Words(Arc<[u64]>),
}

impl Default for Bits {
    fn default() -> Self {
        Self(Repr::Word(0))
    }
}

impl Bits {
    /// The set of `ids`.
    pub fn with(ids: &[usize]) -> Self {
        let words = ids.iter().map(|id| id / 64 + 1).max().unwrap_or(0);
        if words <= 1 {
            return Self(Repr::Word(
                ids.iter().fold(0, |word, id| word | (1u64 << (id % 64))),
            ));
        }
        let mut all = vec![0u64; words];
        for id in ids {
            if let Some(word) = all.get_mut(id / 64) {
                *word |= 1u64 << (id % 64);
            }
        }
        Self(Repr::Words(all.into()))
    }

    fn words(&self) -> &[u64] {
        match &self.0 {
            Repr::Word(word) => std::slice::from_ref(word),
            Repr::Words(words) => words,
        }
    }

    /// The ids in both sets.
    pub fn and(&self, other: &Self) -> Self {
        match (&self.0, &other.0) {
            (Repr::Word(a), Repr::Word(b)) => Self(Repr::Word(a & b)),
            _ => {
                let both: Vec<u64> = self
                    .words()
                    .iter()
                    .zip(other.words())
                    .map(|(a, b)| a & b)
                    .collect();
                match both.as_slice() {
                    [] => Self::default(),
                    [word] => Self(Repr::Word(*word)),
                    _ => Self(Repr::Words(both.into())),
                }
            }
        }
    }

    pub fn contains(&self, id: usize) -> bool {
        self.words()
            .get(id / 64)
            .is_some_and(|word| word & (1u64 << (id % 64)) != 0)
    }

    pub fn is_empty(&self) -> bool {
        self.words().iter().all(|word| *word == 0)
    }

    /// The smallest id in the set.
    pub fn first(&self) -> Option<usize> {
        self.iter().next()
    }

    /// The ids, smallest first.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words().iter().enumerate().flat_map(|(index, word)| {
            let mut rest = *word;
            std::iter::from_fn(move || {
                (rest != 0).then(|| {
                    let bit = rest.trailing_zeros() as usize;
                    rest &= rest - 1;
                    index * 64 + bit
                })
            })
        })
    }
}

impl PartialEq for Bits {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Bits {}

impl fmt::Debug for Bits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

static EMPTY: LazyLock<Arc<RoleTable>> = LazyLock::new(Arc::default);

/// A set of role names: bits over a shared [`RoleTable`], plus any names the table lacks.
#[derive(Clone)]
pub struct RoleSet {
    table: Arc<RoleTable>,
    bits: Bits,
    /// Names outside the table (a role no binding names, say); usually none.
    others: Option<Arc<BTreeSet<RoleName>>>,
}

impl Default for RoleSet {
    fn default() -> Self {
        Self {
            table: EMPTY.clone(),
            bits: Bits::default(),
            others: None,
        }
    }
}

impl RoleSet {
    /// The set of `names`, over a table of its own.
    pub fn new(names: impl IntoIterator<Item = RoleName>) -> Self {
        let table = RoleTable::new(names);
        let ids: Vec<usize> = (0..table.len()).collect();
        Self {
            table,
            bits: Bits::with(&ids),
            others: None,
        }
    }

    /// The roles of `bits` in `table`, and `others` besides.
    pub fn in_table(table: &Arc<RoleTable>, bits: Bits, others: BTreeSet<RoleName>) -> Self {
        Self {
            table: table.clone(),
            bits,
            others: (!others.is_empty()).then(|| Arc::new(others)),
        }
    }

    /// The bits of the set's roles in its table.
    pub fn bits(&self) -> &Bits {
        &self.bits
    }

    /// The names, in name order.
    pub fn iter(&self) -> impl Iterator<Item = &RoleName> + '_ {
        let mut table = self
            .bits
            .iter()
            .filter_map(|id| self.table.names.get(id))
            .peekable();
        let mut others = self
            .others
            .iter()
            .flat_map(|others| others.iter())
            .peekable();
        std::iter::from_fn(move || match (table.peek(), others.peek()) {
            (Some(a), Some(b)) if b < a => others.next(),
            (Some(_), _) => table.next(),
            (None, _) => others.next(),
        })
    }

    pub fn contains(&self, name: &RoleName) -> bool {
        self.contains_name(name.as_str())
    }

    fn contains_name(&self, name: &str) -> bool {
        match self.table.id_of(name) {
            Some(id) => self.bits.contains(id),
            None => self
                .others
                .as_ref()
                .is_some_and(|others| others.iter().any(|other| other.as_str() == name)),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.bits.is_empty() && self.others.is_none()
    }

    pub fn len(&self) -> usize {
        self.bits.iter().count() + self.others.as_ref().map_or(0, |others| others.len())
    }

    /// Whether the set holds `tenant_admin`.
    pub fn holds_tenant_admin(&self) -> bool {
        self.contains_name(RoleName::TENANT_ADMIN)
    }

    /// The roles of this set that `other` holds too: one AND when both share a table.
    pub fn intersection(&self, other: &Self) -> Self {
        if Arc::ptr_eq(&self.table, &other.table) && self.others.is_none() {
            return Self {
                table: self.table.clone(),
                bits: self.bits.and(&other.bits),
                others: None,
            };
        }
        Self::new(self.iter().filter(|name| other.contains(name)).cloned())
    }

    /// The first role (in name order) of this set that `other` holds too.
    pub fn first_common(&self, other: &Self) -> Option<&RoleName> {
        if Arc::ptr_eq(&self.table, &other.table) && self.others.is_none() {
            return self
                .bits
                .and(&other.bits)
                .first()
                .and_then(|id| self.table.names.get(id));
        }
        self.iter().find(|name| other.contains(name))
    }

    /// The names as an ordered set.
    pub fn to_names(&self) -> BTreeSet<RoleName> {
        self.iter().cloned().collect()
    }
}

impl PartialEq for RoleSet {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for RoleSet {}

impl fmt::Debug for RoleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl FromIterator<RoleName> for RoleSet {
    fn from_iter<I: IntoIterator<Item = RoleName>>(names: I) -> Self {
        Self::new(names)
    }
}

impl From<BTreeSet<RoleName>> for RoleSet {
    fn from(names: BTreeSet<RoleName>) -> Self {
        Self::new(names)
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests"
)]
mod tests {
    use super::*;

    fn role(name: &str) -> RoleName {
        RoleName::parse(name).unwrap()
    }

    fn names(set: &RoleSet) -> Vec<&str> {
        set.iter().map(RoleName::as_str).collect()
    }

    #[test]
    fn sets_over_one_table_intersect_by_their_bits() {
        let table = RoleTable::new(["viewer", "editor", "tenant_admin"].map(role));
        let (account, others) = table.bits(&[role("viewer"), role("editor"), role("zeta")]);
        let account = RoleSet::in_table(&table, account, others);
        let (bound, none) = table.bits(&[role("editor")]);
        let bound = RoleSet::in_table(&table, bound, none);
        assert_eq!(names(&account), ["editor", "viewer", "zeta"]);
        assert_eq!(names(&account.intersection(&bound)), ["editor"]);
        assert_eq!(account.first_common(&bound), Some(&role("editor")));
        assert!(!account.holds_tenant_admin());
        assert!(account.contains(&role("zeta")));
        assert_eq!(account.len(), 3);
    }

    #[test]
    fn sets_over_different_tables_answer_by_name() {
        let table = RoleTable::new(["viewer", "editor"].map(role));
        let (bits, others) = table.bits(&[role("viewer"), role("editor")]);
        let cached = RoleSet::in_table(&table, bits, others);
        let named = RoleSet::new([role("editor"), role("tenant_admin")]);
        assert_eq!(cached.first_common(&named), Some(&role("editor")));
        assert_eq!(names(&cached.intersection(&named)), ["editor"]);
        assert!(named.holds_tenant_admin());
        assert_eq!(cached, RoleSet::new([role("editor"), role("viewer")]));
        assert_eq!(format!("{cached:?}"), format!("{:?}", cached.to_names()));
    }

    #[test]
    fn more_than_a_word_of_roles() {
        let all: Vec<RoleName> = (0..150).map(|n| role(&format!("r{n:03}"))).collect();
        let table = RoleTable::new(all.clone());
        let (account, _) = table.bits(&[all[3].clone(), all[70].clone(), all[149].clone()]);
        let (bound, _) = table.bits(&[all[70].clone(), all[149].clone()]);
        let account = RoleSet::in_table(&table, account, BTreeSet::new());
        let bound = RoleSet::in_table(&table, bound, BTreeSet::new());
        assert_eq!(account.first_common(&bound), Some(&all[70]));
        assert_eq!(names(&account.intersection(&bound)), ["r070", "r149"]);
        assert_eq!(
            Bits::with(&[1, 2]),
            Bits::with(&[1, 2, 130]).and(&Bits::with(&[1, 2]))
        );
    }
}
