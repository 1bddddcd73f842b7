//! [`StoresBuilder`]: the stores of a server, slot by slot, checked when the server is
//! built (at launch) rather than by a positional constructor that grows with every new
//! store trait.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

use super::memory::MemoryStore;
use super::{
    AccessTokenStore, ClientStore, CodeStore, PendingStore, Purge, RefreshTokenStore,
    RevokedJtiStore, SigningKeyStore, Stores,
};

/// Extension slots: one `Arc<T>` per `T` (usually a `dyn Trait`), type-erased.
#[derive(Clone, Default)]
pub(crate) struct Slots(pub(crate) Arc<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>);

impl Slots {
    pub(crate) fn get<T: ?Sized + Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        self.0
            .get(&TypeId::of::<Arc<T>>())
            .and_then(|b| b.downcast_ref::<Arc<T>>())
            .cloned()
    }

    pub(crate) fn names(&self) -> usize {
        self.0.len()
    }
}

/// Fills the extension slots a built-in backend provides, where they are empty: the
/// signing-key store and the jti denylist ([`super::keys`]) of [`MemoryStore`],
/// `sql::SqlStore` and `redis::RedisStore`. Another type fills nothing.
pub(crate) fn fill_builtin_slots(
    backend: Arc<dyn Any + Send + Sync>,
    slots: &mut HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
) {
    fn put<T: ?Sized + Send + Sync + 'static>(
        slots: &mut HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
        store: Arc<T>,
    ) {
        slots
            .entry(TypeId::of::<Arc<T>>())
            .or_insert_with(|| Arc::new(store));
    }
    fn keys<B: SigningKeyStore + RevokedJtiStore>(
        slots: &mut HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
        b: Arc<B>,
    ) {
        put::<dyn SigningKeyStore>(slots, b.clone());
        put::<dyn RevokedJtiStore>(slots, b);
    }
    let backend = match backend.downcast::<MemoryStore>() {
        Ok(m) => return keys(slots, m),
        Err(other) => other,
    };
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    let backend = match backend.downcast::<super::sql::SqlStore>() {
        Ok(s) => return keys(slots, s),
        Err(other) => other,
    };
    #[cfg(feature = "redis")]
    if let Ok(r) = backend.downcast::<super::redis::RedisStore>() {
        keys(slots, r);
    }
    let _ = backend;
}

/// A slot [`StoresBuilder::build`] found empty, by name (`access`, `codes`, or the name an
/// extension slot was [required](StoresBuilder::require) under).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the `{0}` store is missing: set it on the StoresBuilder (or with `backend`)")]
pub struct MissingStore(pub String);

/// Builds [`Stores`] slot by slot: the six built-in slots (each set alone, or all at once
/// with [`Self::backend`]) and extension slots ([`Self::slot`]) that new store traits (a
/// signing-key store, a denylist) live in, without wider constructors. [`Self::build`]
/// names the first empty slot that is required; the
/// [`ServerBuilder`](crate::server::ServerBuilder) and the fairing build it at launch
/// ([`ServerBuilder::stores_builder`](crate::server::ServerBuilder::stores_builder)), so a
/// missing store is a launch error naming it.
///
/// ```
/// use std::sync::Arc;
/// use twisted_oauth2::storage::memory::MemoryStore;
/// use twisted_oauth2::storage::{AccessTokenStore, Stores};
///
/// let shared = Arc::new(MemoryStore::new());
/// let tokens = Arc::new(MemoryStore::new());
/// let stores = Stores::builder()
///     .backend(shared)
///     .access(tokens.clone())
///     .slot::<dyn AccessTokenStore>(tokens)
///     .build()
///     .unwrap();
/// assert!(stores.get::<dyn AccessTokenStore>().is_some());
///
/// let missing = Stores::builder().build().unwrap_err();
/// assert_eq!(missing.0, "clients");
/// ```
#[derive(Default, Clone)]
pub struct StoresBuilder {
    clients: Option<Arc<dyn ClientStore>>,
    codes: Option<Arc<dyn CodeStore>>,
    access: Option<Arc<dyn AccessTokenStore>>,
    refresh: Option<Arc<dyn RefreshTokenStore>>,
    pending: Option<Arc<dyn PendingStore>>,
    purge: Option<Arc<dyn Purge>>,
    device_codes: Option<Arc<dyn crate::device::DeviceCodeStore>>,
    slots: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
    required: Vec<(TypeId, String)>,
}

impl std::fmt::Debug for StoresBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoresBuilder")
            .field("extension_slots", &self.slots.len())
            .field(
                "required",
                &self.required.iter().map(|(_, n)| n).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl StoresBuilder {
    /// Uses one backend for the six built-in slots (a later setter replaces one of them).
    ///
    /// A built-in backend ([`MemoryStore`], `sql::SqlStore`, `redis::RedisStore`) also
    /// fills the extension slots of [`dyn SigningKeyStore`](SigningKeyStore) and
    /// [`dyn RevokedJtiStore`](RevokedJtiStore) where they are still empty (a slot set
    /// before is kept; [`Self::slot`] after replaces).
    pub fn backend<B>(mut self, backend: Arc<B>) -> Self
    where
        B: ClientStore + CodeStore + AccessTokenStore + RefreshTokenStore + PendingStore + Purge,
    {
        fill_builtin_slots(backend.clone(), &mut self.slots);
        self.clients = Some(backend.clone());
        self.codes = Some(backend.clone());
        self.access = Some(backend.clone());
        self.refresh = Some(backend.clone());
        self.pending = Some(backend.clone());
        self.purge = Some(backend);
        self
    }

    /// Starts from existing [`Stores`] (their slots, extension slots included).
    pub fn from_stores(stores: Stores) -> Self {
        StoresBuilder {
            clients: Some(stores.clients),
            codes: Some(stores.codes),
            access: Some(stores.access),
            refresh: Some(stores.refresh),
            pending: Some(stores.pending),
            purge: Some(stores.purge),
            device_codes: stores.device_codes,
            slots: (*stores.slots.0).clone(),
            required: Vec::new(),
        }
    }

    /// Sets the client store.
    pub fn clients(mut self, s: Arc<dyn ClientStore>) -> Self {
        self.clients = Some(s);
        self
    }

    /// Sets the code store.
    pub fn codes(mut self, s: Arc<dyn CodeStore>) -> Self {
        self.codes = Some(s);
        self
    }

    /// Sets the access-token store.
    pub fn access(mut self, s: Arc<dyn AccessTokenStore>) -> Self {
        self.access = Some(s);
        self
    }

    /// Sets the refresh-token store.
    pub fn refresh(mut self, s: Arc<dyn RefreshTokenStore>) -> Self {
        self.refresh = Some(s);
        self
    }

    /// Sets the pending-request store.
    pub fn pending(mut self, s: Arc<dyn PendingStore>) -> Self {
        self.pending = Some(s);
        self
    }

    /// Sets the expiry purge.
    pub fn purge(mut self, s: Arc<dyn Purge>) -> Self {
        self.purge = Some(s);
        self
    }

    /// Sets the device-code store (RFC 8628; optional: see [`Stores::device_codes`]).
    pub fn device_codes(mut self, s: Arc<dyn crate::device::DeviceCodeStore>) -> Self {
        self.device_codes = Some(s);
        self
    }

    /// Fills the extension slot of `T` (usually a store trait object, `dyn KeyStore`), read
    /// back with [`Stores::get`].
    pub fn slot<T: ?Sized + Send + Sync + 'static>(mut self, store: Arc<T>) -> Self {
        self.slots.insert(TypeId::of::<Arc<T>>(), Arc::new(store));
        self
    }

    /// Requires the extension slot of `T`: [`Self::build`] fails with
    /// [`MissingStore`]`(name)` when it is empty (a format or an extension that needs a
    /// store requires it).
    pub fn require<T: ?Sized + Send + Sync + 'static>(mut self, name: impl Into<String>) -> Self {
        self.required.push((TypeId::of::<Arc<T>>(), name.into()));
        self
    }

    /// The stores, or the first required slot left empty.
    pub fn build(self) -> Result<Stores, MissingStore> {
        fn need<T>(v: Option<T>, name: &str) -> Result<T, MissingStore> {
            v.ok_or_else(|| MissingStore(name.to_owned()))
        }
        let stores = Stores {
            clients: need(self.clients, "clients")?,
            codes: need(self.codes, "codes")?,
            access: need(self.access, "access")?,
            refresh: need(self.refresh, "refresh")?,
            pending: need(self.pending, "pending")?,
            purge: need(self.purge, "purge")?,
            device_codes: self.device_codes,
            slots: Slots(Arc::new(self.slots)),
        };
        for (id, name) in &self.required {
            if !stores.slots.0.contains_key(id) {
                return Err(MissingStore(name.clone()));
            }
        }
        Ok(stores)
    }
}
