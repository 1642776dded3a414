//! What the WSGI integration tests share beside `common`: a gate that a blocking app waits
//! at until the test opens it.

use std::sync::{Arc, Condvar, Mutex};

use crate::common::PATIENCE;

/// A gate for a blocking WSGI app: [`wait`](Gate::wait) blocks the app's thread until the
/// test calls [`open`](Gate::open). Clones share the gate.
#[derive(Clone, Default)]
pub(crate) struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    pub(crate) fn open(&self) {
        let (open, changed) = &*self.0;
        *open.lock().unwrap() = true;
        changed.notify_all();
    }

    /// Waits until the gate is open.
    ///
    /// # Panics
    ///
    /// When it stays closed longer than [`PATIENCE`], so that a broken test fails instead
    /// of hanging.
    pub(crate) fn wait(&self) {
        let (open, changed) = &*self.0;
        let guard = open.lock().unwrap();
        let (guard, _) = changed
            .wait_timeout_while(guard, PATIENCE, |open| !*open)
            .unwrap();
        assert!(*guard, "the test never opened the gate");
    }
}
