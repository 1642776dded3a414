//! Lifespan state: filled by the app during `lifespan.startup`, then frozen and shared.

use std::any::TypeId;
use std::fmt;
use std::sync::{Arc, Mutex};

use crate::Error;

/// The state an app put into its [`LifespanState`] during startup, frozen and shared with
/// every connection's scope (ASGI's `scope["state"]`).
///
/// It is read-only: a clone is an `Arc` clone, and values are looked up by type. Put what
/// every request needs (a connection pool, a config) here once, instead of in globals.
///
/// # Example
///
/// ```
/// use asgi_core::LifespanState;
///
/// #[derive(Clone)]
/// struct Config { greeting: &'static str }
///
/// let building = LifespanState::new();
/// building.insert(Config { greeting: "hi" }).unwrap();
/// let state = building.freeze();
/// assert_eq!(state.get::<Config>().map(|c| c.greeting), Some("hi"));
/// assert!(state.get::<u32>().is_none());
/// ```
#[derive(Clone, Default)]
pub struct State {
    map: Option<Arc<http::Extensions>>,
}

impl State {
    /// An empty state, for servers without lifespan support and for tests.
    pub fn empty() -> Self {
        State::default()
    }

    /// The value of type `T`, if the app stored one during startup.
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.map.as_deref().and_then(|m| m.get::<T>())
    }

    /// The value of type `T`, or an error that names the missing type, for handlers that
    /// cannot go on without it: `let db = state.try_get::<Db>()?;`.
    ///
    /// # Errors
    ///
    /// When no value of type `T` was stored during startup. The message names `T` (e.g.
    /// "no `my_app::Db` in the lifespan state"), so a lifespan that never ran, or stored a
    /// different type (`Db` rather than `Arc<Db>`), is found at once.
    ///
    /// ```
    /// use asgi_core::LifespanState;
    ///
    /// struct Db;
    ///
    /// let state = LifespanState::new().freeze();
    /// let err = state.try_get::<Db>().map(|_| ()).unwrap_err();
    /// assert!(err.to_string().contains("Db` in the lifespan state"), "{err}");
    /// ```
    pub fn try_get<T: Send + Sync + 'static>(&self) -> Result<&T, Error> {
        self.get::<T>().ok_or_else(|| {
            Error::msg(format!(
                "no `{}` in the lifespan state: the app's lifespan must insert one at \
                 `lifespan.startup`",
                std::any::type_name::<T>()
            ))
        })
    }

    /// True when nothing was stored.
    pub fn is_empty(&self) -> bool {
        self.map.as_deref().is_none_or(|m| m.is_empty())
    }
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("State")
            .field("entries", &self.map.as_deref().map_or(0, |m| m.len()))
            .finish()
    }
}

/// The state an app fills while it handles `lifespan.startup`; the server
/// [`freeze`](LifespanState::freeze)s it when the app sends `lifespan.startup.complete` and
/// shares the result with every connection as [`State`].
///
/// Handles are cheap clones of one shared map. Values must be `Clone` (wrap a non-`Clone`
/// value such as a pool in an `Arc`).
///
/// # Errors
///
/// [`insert`](LifespanState::insert) after the freeze fails with an [`Error`] for which
/// [`is_state_frozen`](Error::is_state_frozen) is true: state is read-only once requests are
/// being served, so that no request can observe it changing.
#[derive(Clone, Default)]
pub struct LifespanState {
    inner: Arc<Mutex<Building>>,
}

#[derive(Default)]
struct Building {
    map: http::Extensions,
    // The types stored, in the order they were first inserted, with their names: the map
    // cannot list its keys, and a merge must name the type that two apps both wrote.
    types: Vec<(TypeId, &'static str)>,
    frozen: Option<State>,
}

impl LifespanState {
    /// A new, empty state to hand to the app in the lifespan scope.
    pub fn new() -> Self {
        LifespanState::default()
    }

    /// Stores `value`, replacing and returning any earlier value of the same type.
    ///
    /// # Errors
    ///
    /// Fails once the state is frozen.
    pub fn insert<T: Clone + Send + Sync + 'static>(&self, value: T) -> Result<Option<T>, Error> {
        let mut building = self.lock();
        if building.frozen.is_some() {
            return Err(Error::state_frozen());
        }
        let id = TypeId::of::<T>();
        if !building.types.iter().any(|(t, _)| *t == id) {
            building.types.push((id, std::any::type_name::<T>()));
        }
        Ok(building.map.insert(value))
    }

    /// The names of the types stored, in the order they were first inserted (for messages
    /// and debugging: the names are [`std::any::type_name`]'s, not an API).
    pub fn type_names(&self) -> Vec<&'static str> {
        self.lock().types.iter().map(|(_, name)| *name).collect()
    }

    /// Copies every value of `other` into this state, and freezes `other`.
    ///
    /// This is how an app that runs the lifespans of several apps (a mount, a router with
    /// sub-apps) gives each of them a state of its own and then gathers what they stored
    /// into the one state the server shares. `other` stays readable through its own handles.
    ///
    /// # Errors
    ///
    /// When this state is frozen, or already holds a value of a type that `other` holds too:
    /// the message names the type, and nothing is copied. Two apps that both store a `Db`
    /// would otherwise have one of them silently replace the other's.
    ///
    /// ```
    /// use asgi_core::LifespanState;
    ///
    /// let (users, orders) = (LifespanState::new(), LifespanState::new());
    /// users.insert(String::from("users db")).unwrap();
    /// orders.insert(7u32).unwrap();
    /// let shared = LifespanState::new();
    /// shared.merge(&users).unwrap();
    /// shared.merge(&orders).unwrap();
    /// assert_eq!(shared.type_names(), ["alloc::string::String", "u32"]);
    ///
    /// let again = LifespanState::new();
    /// again.insert(String::from("another db")).unwrap();
    /// let err = shared.merge(&again).unwrap_err();
    /// assert!(err.to_string().contains("`alloc::string::String`"), "{err}");
    /// ```
    pub fn merge(&self, other: &LifespanState) -> Result<(), Error> {
        if Arc::ptr_eq(&self.inner, &other.inner) {
            return Err(Error::msg("a lifespan state cannot be merged into itself"));
        }
        let values = other.freeze();
        let types = other.lock().types.clone();
        let mut building = self.lock();
        if building.frozen.is_some() {
            return Err(Error::state_frozen());
        }
        if let Some((_, name)) = types
            .iter()
            .find(|(id, _)| building.types.iter().any(|(t, _)| t == id))
        {
            return Err(Error::msg(format!(
                "`{name}` is already in the lifespan state"
            )));
        }
        if let Some(map) = values.map.as_deref() {
            building.map.extend(map.clone());
        }
        building.types.extend(types);
        Ok(())
    }

    /// A clone of the stored value of type `T`, if any.
    pub fn get<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        let building = self.lock();
        match &building.frozen {
            Some(state) => state.get::<T>().cloned(),
            None => building.map.get::<T>().cloned(),
        }
    }

    /// Freezes the state and returns the shared, read-only view. Calling it again returns the
    /// same view; later inserts fail.
    pub fn freeze(&self) -> State {
        let mut building = self.lock();
        if let Some(state) = &building.frozen {
            return state.clone();
        }
        let map = std::mem::take(&mut building.map);
        let state = State {
            map: Some(Arc::new(map)),
        };
        building.frozen = Some(state.clone());
        state
    }

    /// True once [`freeze`](LifespanState::freeze) was called.
    pub fn is_frozen(&self) -> bool {
        self.lock().frozen.is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Building> {
        // A panic while holding this lock can only come from a panicking `Clone` impl of a
        // user's value; the map itself is still consistent, so recover it.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl fmt::Debug for LifespanState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LifespanState")
            .field("frozen", &self.is_frozen())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_after_freeze_is_rejected() {
        let building = LifespanState::new();
        building.insert(1u8).unwrap();
        let state = building.freeze();
        let err = building.insert(2u8).unwrap_err();
        assert!(err.is_state_frozen());
        assert_eq!(state.get::<u8>(), Some(&1));
    }

    #[test]
    fn freeze_twice_returns_same_state() {
        let building = LifespanState::new();
        building.insert(String::from("db")).unwrap();
        let a = building.freeze();
        let b = building.freeze();
        assert_eq!(a.get::<String>(), b.get::<String>());
        assert_eq!(building.get::<String>().as_deref(), Some("db"));
    }

    #[test]
    fn try_get_names_the_missing_type() {
        struct Db;
        let building = LifespanState::new();
        building.insert(String::from("config")).unwrap();
        let state = building.freeze();
        assert_eq!(state.try_get::<String>().unwrap(), "config");
        let err = state.try_get::<Db>().map(|_| ()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no `asgi_core::state::tests::try_get_names_the_missing_type::Db` in the lifespan \
             state: the app's lifespan must insert one at `lifespan.startup`"
        );
        assert!(!err.is_disconnected());
    }

    #[test]
    fn merge_copies_values_and_keeps_the_source_readable() {
        let child = LifespanState::new();
        child.insert(5u16).unwrap();
        let parent = LifespanState::new();
        parent.insert(String::from("config")).unwrap();
        parent.merge(&child).unwrap();
        assert!(child.is_frozen());
        assert_eq!(child.get::<u16>(), Some(5));
        let state = parent.freeze();
        assert_eq!(state.get::<u16>(), Some(&5));
        assert_eq!(state.get::<String>().map(String::as_str), Some("config"));
        assert_eq!(parent.type_names(), ["alloc::string::String", "u16"]);
    }

    #[test]
    fn merge_rejects_a_type_stored_twice_and_copies_nothing() {
        let parent = LifespanState::new();
        parent.insert(1u8).unwrap();
        let child = LifespanState::new();
        child.insert(2u32).unwrap();
        child.insert(3u8).unwrap();
        let err = parent.merge(&child).unwrap_err();
        assert_eq!(err.to_string(), "`u8` is already in the lifespan state");
        let state = parent.freeze();
        assert_eq!(state.get::<u8>(), Some(&1));
        assert!(state.get::<u32>().is_none());
    }

    #[test]
    fn merge_into_a_frozen_state_is_rejected() {
        let parent = LifespanState::new();
        parent.freeze();
        let err = parent.merge(&LifespanState::new()).unwrap_err();
        assert!(err.is_state_frozen());
    }

    #[test]
    fn empty_state_has_nothing() {
        assert!(State::empty().is_empty());
        assert!(State::empty().get::<u8>().is_none());
    }
}
