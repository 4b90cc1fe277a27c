//! The flow registry: which flow set new calls start on.
//!
//! A flow set is the compiled program ([`FlowSet`], with its JIT code), the
//! prompts it plays and where it came from (source files, or a signed
//! bundle's name, serial and digest). The registry holds the active set and
//! the one it replaced; both are `Arc`s.
//!
//! Invariants:
//! - A call takes the active set once, when it starts ([`Registry::current`]),
//!   and keeps its `Arc` to the end: calls in progress finish on the code they
//!   started on, new calls start on the new set, and a set's JIT code is freed
//!   when its last `Arc` drops (the last call on it ended and the registry no
//!   longer keeps it for a rollback).
//! - Replacing is one pointer swap under a lock; a load that fails, or a
//!   bundle that is refused, never touches the active set.
//! - A bundle replacing a bundle must have a higher serial; the only way back
//!   is an explicit [`Registry::rollback`] to the set kept from the last swap.
//!
//! Every swap and refusal is logged; a refused bundle is a `security` event.

use super::flows::FlowSet;
use crate::prompts::PromptLibrary;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

/// A compiled program, its prompts and its origin: what a call runs on.
pub struct ActiveSet {
    pub flows: FlowSet,
    pub prompts: PromptLibrary,
    pub origin: Origin,
}

impl ActiveSet {
    pub fn new(flows: FlowSet, prompts: PromptLibrary, origin: Origin) -> ActiveSet {
        ActiveSet {
            flows,
            prompts,
            origin,
        }
    }
}

impl Drop for ActiveSet {
    fn drop(&mut self) {
        // The JIT code goes with `flows`; this is when the memory returns.
        tracing::info!(flows = %self.origin, "flow set unloaded: no call runs on it any more");
    }
}

impl fmt::Debug for ActiveSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActiveSet")
            .field("origin", &self.origin)
            .field("engine", &self.flows.engine_kind().name())
            .field("prompts", &self.prompts.len())
            .finish()
    }
}

/// Where a flow set came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Compiled from `.vflow` files at load time.
    Source { paths: Vec<PathBuf> },
    /// A verified, signed bundle.
    Bundle {
        file: PathBuf,
        name: String,
        serial: u64,
        /// SHA-256 of the bundle file, lowercase hex.
        sha256: String,
    },
}

impl Origin {
    /// The bundle's serial; `None` for flows compiled from source.
    pub fn serial(&self) -> Option<u64> {
        match self {
            Origin::Source { .. } => None,
            Origin::Bundle { serial, .. } => Some(*serial),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Source { paths } => {
                write!(f, "source")?;
                for (i, p) in paths.iter().enumerate() {
                    write!(f, "{}{}", if i == 0 { " " } else { ", " }, p.display())?;
                }
                Ok(())
            }
            Origin::Bundle {
                file,
                name,
                serial,
                sha256,
            } => write!(
                f,
                "bundle `{name}` serial {serial} (sha256 {}) from {}",
                &sha256[..sha256.len().min(16)],
                file.display()
            ),
        }
    }
}

/// A set that could not be loaded: what failed, in words for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// The load was of a bundle (its refusal is a security event).
    pub bundle: bool,
    /// What failed, in one line naming the file: `site.vfb: signature check failed: …`.
    pub message: String,
    /// More lines when there are several problems (rendered diagnostics,
    /// one line per bad prompt); may be empty.
    pub detail: String,
}

impl LoadError {
    pub fn new(bundle: bool, message: impl Into<String>) -> LoadError {
        LoadError {
            bundle,
            message: message.into(),
            detail: String::new(),
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if !self.detail.is_empty() {
            write!(f, "\n{}", self.detail.trim_end())?;
        }
        Ok(())
    }
}

/// Why the active set was not replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The new set could not be loaded (a bundle check, a compile error, a
    /// bad prompt, an unreadable file).
    Load(LoadError),
    /// A bundle whose serial is not above the active bundle's.
    Serial {
        file: PathBuf,
        offered: u64,
        active: u64,
    },
    /// A rollback with nothing to roll back to.
    NoPrevious,
    /// At start: a bundle older than the one this node last ran.
    Downgrade {
        file: PathBuf,
        offered: u64,
        last: u64,
        serial_file: PathBuf,
    },
}

/// The serial in a serial file; `None` when there is none (or it is unreadable,
/// which is logged: the check is a safeguard, not a reason to stay down).
fn read_serial(path: &std::path::Path) -> Option<u64> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "cannot read the last bundle serial");
            return None;
        }
    };
    let parsed = text.trim().parse().ok();
    if parsed.is_none() {
        tracing::warn!(file = %path.display(), "the last bundle serial file does not hold a number; ignored");
    }
    parsed
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Load(e) => write!(f, "{e}"),
            Refusal::Serial {
                file,
                offered,
                active,
            } if offered == active => write!(
                f,
                "{}: serial {offered} is already active; a new bundle needs a higher serial (`vflow build --serial`)",
                file.display()
            ),
            Refusal::Serial {
                file,
                offered,
                active,
            } => write!(
                f,
                "{}: serial {offered} is older than the active serial {active}; build the bundle with a higher serial (`vflow build --serial`), or go back one step with `vflow reload --rollback`",
                file.display()
            ),
            Refusal::Downgrade {
                file,
                offered,
                last,
                serial_file,
            } => write!(
                f,
                "{}: serial {offered} is older than serial {last}, which this node ran last; install a bundle with serial {last} or higher, or, to go back on purpose, delete {}",
                file.display(),
                serial_file.display()
            ),
            Refusal::NoPrevious => write!(
                f,
                "there is no previous flow set to roll back to (one is kept after each reload, and a rollback uses it up)"
            ),
        }
    }
}

impl std::error::Error for Refusal {}

struct Slots {
    active: Arc<ActiveSet>,
    /// The set the last swap replaced, kept for one rollback.
    previous: Option<Arc<ActiveSet>>,
}

/// The active flow set, swapped atomically. Shared by the SIP driver, every
/// call, the control socket and the SIGHUP handler.
pub struct Registry {
    slots: Mutex<Slots>,
    /// Where the active bundle's serial is kept across restarts, so a
    /// restart cannot quietly run an older bundle than the node ran before.
    serial_file: Option<PathBuf>,
    /// Held for a whole reload (load + swap), so two reloads at once do not
    /// both compile; the slots lock is held only for the swap itself.
    reloading: Mutex<()>,
}

impl Registry {
    pub fn new(initial: ActiveSet) -> Registry {
        tracing::info!(flows = %initial.origin, "flows active");
        Registry {
            slots: Mutex::new(Slots {
                active: Arc::new(initial),
                previous: None,
            }),
            reloading: Mutex::new(()),
            serial_file: None,
        }
    }

    /// Like [`Registry::new`], with the active bundle serial kept in
    /// `serial_file` across restarts: an initial bundle older than the
    /// serial the node last ran is refused (a rollback writes the serial it
    /// returns to, so an explicit rollback survives a restart).
    pub fn with_serial_file(initial: ActiveSet, serial_file: PathBuf) -> Result<Registry, Refusal> {
        if let Origin::Bundle { file, serial, .. } = &initial.origin
            && let Some(last) = read_serial(&serial_file)
            && *serial < last
        {
            return Err(Refusal::Downgrade {
                file: file.clone(),
                offered: *serial,
                last,
                serial_file,
            });
        }
        let mut r = Registry::new(initial);
        r.serial_file = Some(serial_file);
        r.remember(&r.current().origin);
        Ok(r)
    }

    /// Writes the active bundle's serial to the serial file (flows from
    /// source leave it as it is).
    fn remember(&self, origin: &Origin) {
        let (Some(path), Some(serial)) = (&self.serial_file, origin.serial()) else {
            return;
        };
        if let Err(e) = crate::bundles::write_atomic(path, format!("{serial}\n").as_bytes(), 0o644)
        {
            tracing::error!(file = %path.display(), error = %e, "cannot record the active bundle serial; a restart will not refuse older bundles");
        }
    }

    fn slots(&self) -> MutexGuard<'_, Slots> {
        // Nothing panics while the lock is held (pointer moves only); a
        // poisoned lock still holds consistent slots.
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The active set. A call takes it once, at its start, and keeps it.
    pub fn current(&self) -> Arc<ActiveSet> {
        self.slots().active.clone()
    }

    /// The origin of the set a rollback would return to.
    pub fn previous_origin(&self) -> Option<Origin> {
        self.slots().previous.as_ref().map(|p| p.origin.clone())
    }

    /// Makes `new` the active set, unless it is a bundle whose serial is not
    /// above the active bundle's. The replaced set is kept for a rollback.
    pub fn activate(&self, new: ActiveSet) -> Result<Arc<ActiveSet>, Refusal> {
        let mut slots = self.slots();
        if let (Origin::Bundle { sha256: a, .. }, Origin::Bundle { sha256: b, .. }) =
            (&slots.active.origin, &new.origin)
            && a == b
        {
            // The same file again (a SIGHUP with nothing changed): not a refusal.
            let active = slots.active.clone();
            drop(slots);
            tracing::info!(flows = %active.origin, "bundle unchanged; the active flows stay");
            return Ok(active);
        }
        if let (
            Some(active),
            Origin::Bundle {
                file,
                serial: offered,
                ..
            },
        ) = (slots.active.origin.serial(), &new.origin)
            && *offered <= active
        {
            let refusal = Refusal::Serial {
                file: file.clone(),
                offered: *offered,
                active,
            };
            drop(slots);
            log_refusal(&refusal, true, &self.current().origin);
            // `new` (already compiled) is dropped here, outside the lock.
            return Err(refusal);
        }
        let new = Arc::new(new);
        let old = std::mem::replace(&mut slots.active, new.clone());
        let dropped = slots.previous.replace(old.clone());
        drop(slots);
        tracing::info!(event = "flows_swapped", flows = %new.origin, replaced = %old.origin, "flows swapped: new calls start on the new set, calls in progress finish on theirs");
        self.remember(&new.origin);
        // Unloading the set before the replaced one may free JIT code: not under the lock.
        drop(dropped);
        Ok(new)
    }

    /// Goes back to the set the last swap replaced (whatever its serial).
    /// The rolled-back set is not kept: a second rollback is refused.
    pub fn rollback(&self) -> Result<Arc<ActiveSet>, Refusal> {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|p| p.into_inner());
        let mut slots = self.slots();
        let Some(previous) = slots.previous.take() else {
            let active = slots.active.origin.clone();
            drop(slots);
            log_refusal(&Refusal::NoPrevious, false, &active);
            return Err(Refusal::NoPrevious);
        };
        let old = std::mem::replace(&mut slots.active, previous.clone());
        drop(slots);
        tracing::warn!(event = "flows_rolled_back", flows = %previous.origin, replaced = %old.origin, "flows rolled back: new calls start on the previous set");
        self.remember(&previous.origin);
        drop(old);
        Ok(previous)
    }

    /// Loads a new set with `load` and activates it. One reload runs at a
    /// time; the active set is untouched unless this returns `Ok`.
    /// `trigger` (`SIGHUP`, `control socket`) goes to the log.
    pub fn reload(
        &self,
        trigger: &str,
        load: impl FnOnce() -> Result<ActiveSet, LoadError>,
    ) -> Result<Arc<ActiveSet>, Refusal> {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|p| p.into_inner());
        tracing::info!(trigger, "reloading the flows");
        match load() {
            Ok(set) => self.activate(set),
            Err(e) => {
                let bundle = e.bundle;
                let refusal = Refusal::Load(e);
                log_refusal(&refusal, bundle, &self.current().origin);
                Err(refusal)
            }
        }
    }
}

fn log_refusal(refusal: &Refusal, bundle: bool, active: &Origin) {
    let reason = match refusal {
        Refusal::Load(_) => "load_failed",
        Refusal::Serial { .. } => "serial_not_newer",
        Refusal::NoPrevious => "no_previous",
        Refusal::Downgrade { .. } => "downgrade",
    };
    if bundle {
        tracing::warn!(target: "security", event = "bundle_refused", reason, error = %refusal, active = %active, "bundle refused; the active flows stay");
    } else {
        tracing::warn!(event = "reload_refused", reason, error = %refusal, active = %active, "reload refused; the active flows stay");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Weak;
    use vflow_compiler::exec::{CallInfo, Outcome, SimHost};
    use vflow_compiler::ir;
    use vflow_compiler::jit::EngineKind;
    use vflow_compiler::source::MemoryWorld;

    /// A program with one start point, `named:test`, that plays `prompt`.
    fn program(prompt: &str) -> ir::Program {
        let src = format!(
            "flow f {{\n  start named \"test\" -> p\n  play p {{ prompt \"{prompt}\" on next -> bye }}\n  hangup bye\n}}\n"
        );
        let mut w = MemoryWorld::with_stdlib();
        w.add_prompt(&format!("t/prompts/{prompt}"));
        let id = w.add("t/flow.vflow", &src);
        let checked = vflow_compiler::check::check(&mut w, &[id]);
        assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
        let p = ir::lower(&w, &checked.program).expect("lowers");
        ir::verify(&p).expect("verifies");
        p
    }

    fn set(prompt: &str, serial: Option<u64>) -> ActiveSet {
        let flows = FlowSet::new(program(prompt), EngineKind::default_for_host()).unwrap();
        let origin = match serial {
            None => Origin::Source {
                paths: vec![PathBuf::from("flows")],
            },
            Some(serial) => Origin::Bundle {
                file: PathBuf::from("site.vfb"),
                name: "site".into(),
                serial,
                sha256: format!("{serial}-{prompt}"),
            },
        };
        ActiveSet::new(flows, PromptLibrary::default(), origin)
    }

    /// What a call on `set` plays first.
    fn first_prompt(set: &ActiveSet) -> String {
        let mut state =
            super::super::flows::start_call(&set.flows, "named", "test", CallInfo::default())
                .expect("the start point exists");
        let clock = vflow_compiler::exec::parse_clock("2026-03-02T10:00:00", Some("UTC")).unwrap();
        let mut host = SimHost::new(clock);
        set.flows
            .resume(&mut state, Outcome::Start, &mut host)
            .to_text()
    }

    #[test]
    fn a_swap_changes_what_new_calls_get_and_keeps_the_old_for_calls_in_progress() {
        let reg = Registry::new(set("one.wav", Some(1)));
        let call_on_one = reg.current();
        assert!(first_prompt(&call_on_one).contains("one.wav"));
        let now = reg.activate(set("two.wav", Some(2))).unwrap();
        assert_eq!(now.origin.serial(), Some(2));
        // The call in progress still runs the code it started on …
        assert!(first_prompt(&call_on_one).contains("one.wav"));
        // … and a new call runs the new code.
        assert!(first_prompt(&reg.current()).contains("two.wav"));
        assert_eq!(reg.previous_origin().and_then(|o| o.serial()), Some(1));
    }

    #[test]
    fn serials_must_increase_and_a_refusal_leaves_the_active_set() {
        let reg = Registry::new(set("one.wav", Some(5)));
        for offered in [5, 4, 0] {
            let err = reg.activate(set("two.wav", Some(offered))).unwrap_err();
            assert_eq!(
                err,
                Refusal::Serial {
                    file: PathBuf::from("site.vfb"),
                    offered,
                    active: 5
                }
            );
            let want = if offered == 5 {
                "already active"
            } else {
                "older than the active serial 5"
            };
            assert!(err.to_string().contains(want), "{err}");
            assert_eq!(reg.current().origin.serial(), Some(5));
            assert!(first_prompt(&reg.current()).contains("one.wav"));
        }
        // Nothing was swapped, so nothing is kept for a rollback.
        assert_eq!(reg.previous_origin(), None);
        reg.activate(set("two.wav", Some(6))).unwrap();
        assert_eq!(reg.current().origin.serial(), Some(6));
    }

    #[test]
    fn the_same_bundle_file_again_is_not_a_swap_nor_a_refusal() {
        let reg = Registry::new(set("one.wav", Some(5)));
        let before = reg.current();
        let same = reg.activate(set("one.wav", Some(5))).unwrap();
        assert!(Arc::ptr_eq(&before, &same));
        assert_eq!(reg.previous_origin(), None);
    }

    #[test]
    fn the_serial_file_refuses_a_downgrade_across_restarts_but_keeps_a_rollback() {
        let dir = std::env::temp_dir().join(format!("vflow-serial-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("bundle-serial");
        let _ = std::fs::remove_file(&file);

        let reg = Registry::with_serial_file(set("one.wav", Some(3)), file.clone()).unwrap();
        reg.activate(set("two.wav", Some(4))).unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), "4");
        drop(reg);
        // A restart on the older file is a downgrade: refused, saying how to proceed.
        let Err(e) = Registry::with_serial_file(set("one.wav", Some(3)), file.clone()) else {
            panic!("a downgrade at start must be refused");
        };
        assert!(
            matches!(
                e,
                Refusal::Downgrade {
                    offered: 3,
                    last: 4,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("bundle-serial"), "{e}");

        // An explicit rollback is remembered, so restarting on its bundle works.
        let reg = Registry::with_serial_file(set("two.wav", Some(4)), file.clone()).unwrap();
        reg.activate(set("one.wav", Some(5))).unwrap();
        reg.rollback().unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), "4");
        drop(reg);
        assert!(Registry::with_serial_file(set("two.wav", Some(4)), file.clone()).is_ok());
        // Flows from source never touch it.
        assert!(Registry::with_serial_file(set("two.wav", None), file.clone()).is_ok());
        assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), "4");
    }

    #[test]
    fn flows_from_source_have_no_serial_to_compare() {
        let reg = Registry::new(set("one.wav", None));
        reg.activate(set("two.wav", None)).unwrap();
        reg.activate(set("one.wav", Some(3))).unwrap();
        assert_eq!(reg.current().origin.serial(), Some(3));
        // A bundle is never compared with sources, and sources never with a bundle.
        reg.activate(set("two.wav", None)).unwrap();
        assert_eq!(reg.current().origin.serial(), None);
    }

    #[test]
    fn a_failed_load_leaves_the_active_set_untouched() {
        let reg = Registry::new(set("one.wav", Some(1)));
        let before = reg.current();
        let err = reg
            .reload("test", || {
                Err(LoadError::new(true, "site.vfb: signature check failed"))
            })
            .unwrap_err();
        assert_eq!(err.to_string(), "site.vfb: signature check failed");
        assert!(Arc::ptr_eq(&before, &reg.current()));
        assert_eq!(reg.previous_origin(), None);
        let ok = reg.reload("test", || Ok(set("two.wav", Some(2)))).unwrap();
        assert_eq!(ok.origin.serial(), Some(2));
    }

    #[test]
    fn rollback_returns_to_the_previous_set_once() {
        let reg = Registry::new(set("one.wav", Some(1)));
        assert_eq!(reg.rollback().unwrap_err(), Refusal::NoPrevious);
        reg.activate(set("two.wav", Some(2))).unwrap();
        let back = reg.rollback().unwrap();
        assert_eq!(back.origin.serial(), Some(1));
        assert!(first_prompt(&reg.current()).contains("one.wav"));
        // Rolling back is the one way to a lower serial; it is used up.
        assert_eq!(reg.rollback().unwrap_err(), Refusal::NoPrevious);
        // Serial 2 again is newer than the active 1: the bundle can come back.
        reg.activate(set("two.wav", Some(2))).unwrap();
        assert!(first_prompt(&reg.current()).contains("two.wav"));
    }

    #[test]
    fn an_old_set_is_freed_when_its_last_call_ends() {
        let reg = Registry::new(set("one.wav", Some(1)));
        let call = reg.current();
        let one: Weak<ActiveSet> = Arc::downgrade(&call);
        reg.activate(set("two.wav", Some(2))).unwrap();
        let two = Arc::downgrade(&reg.current());
        // Kept for a rollback and by the call.
        reg.activate(set("three.wav", Some(3))).unwrap();
        // No longer kept for a rollback (two is); the call still holds it.
        assert!(one.upgrade().is_some());
        assert!(first_prompt(&call).contains("one.wav"));
        drop(call);
        assert!(
            one.upgrade().is_none(),
            "the set (and its JIT code) is freed"
        );
        // `two` stays for a rollback until the next swap.
        assert!(two.upgrade().is_some());
        reg.activate(set("four.wav", Some(4))).unwrap();
        assert!(two.upgrade().is_none());
    }

    #[test]
    fn concurrent_calls_and_swaps_see_whole_sets() {
        let reg = Arc::new(Registry::new(set("s1.wav", Some(1))));
        let swapper = {
            let reg = reg.clone();
            std::thread::spawn(move || {
                for serial in 2..=6 {
                    reg.activate(set(&format!("s{serial}.wav"), Some(serial)))
                        .unwrap();
                }
            })
        };
        let mut seen = Vec::new();
        for _ in 0..50 {
            let s = reg.current();
            let serial = s.origin.serial().unwrap();
            // The program always matches the origin it was registered with.
            assert!(first_prompt(&s).contains(&format!("s{serial}.wav")));
            seen.push(serial);
        }
        swapper.join().unwrap();
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
        assert_eq!(reg.current().origin.serial(), Some(6));
    }
}
