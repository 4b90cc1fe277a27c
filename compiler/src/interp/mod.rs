//! The reference interpreter: the semantics of the IR, and the engine where
//! the JIT has no backend. It implements [`exec::Engine`] over a verified
//! [`ir::Program`]; docs/IR.md describes what each node does.

pub(crate) mod eval;
#[cfg(test)]
pub(crate) mod tests;

use crate::exec::{self, Effect, Engine, Frame, Host, Outcome, PromptItem, State, Status};
use crate::ir::{self, Action, Edge, EffectNode, NodeKind, Place, PromptExpr, Value};
pub use eval::in_profile;

/// The interpreter over one program. The program must have passed
/// [`ir::verify`]; the interpreter relies on its invariants.
pub struct Interpreter<'p> {
    program: &'p ir::Program,
}

/// What the run loop does next (shared with the JIT's trampoline).
pub(crate) enum Step {
    /// Execute the top frame's current node.
    At,
    /// Follow an edge from the top frame's current node.
    Edge(Edge),
    /// Hand out an effect and wait for its outcome.
    Wait(Effect),
    /// Play the effect, then take the edge whatever the outcome (menu `invalid_prompt`).
    WaitThen(Effect, Edge),
    /// The call is over.
    End(Effect),
}

impl<'p> Interpreter<'p> {
    pub fn new(program: &'p ir::Program) -> Interpreter<'p> {
        Interpreter { program }
    }

    fn unit(&self, u: u32) -> &'p ir::Unit {
        &self.program.units[u as usize]
    }

    fn top(state: &State) -> (u32, u32) {
        let f = state.frames.last().expect("a running call has a frame");
        (f.unit, f.node)
    }

    fn node(&self, state: &State) -> &'p ir::Node {
        let (u, n) = Self::top(state);
        &self.unit(u).nodes[n as usize]
    }

    pub(crate) fn fault_at(&self, unit: u32, line: u32, message: String) -> Effect {
        let u = self.unit(unit);
        Effect::Fault {
            message,
            file: self.program.files[u.file as usize].clone(),
            line,
        }
    }

    /// A fault in the current node: its `failure` edge, or the end of the call.
    pub(crate) fn fault(&self, state: &State, message: String) -> Step {
        let node = self.node(state);
        match node.on_fault {
            Some(e) => Step::Edge(e),
            None => Step::End(self.fault_at(Self::top(state).0, node.line, message)),
        }
    }

    /// Pushes a frame for `unit` with its parameters; runs the `var` initializers.
    fn enter(
        &self,
        state: &mut State,
        unit: u32,
        node: u32,
        args: Vec<Value>,
        host: &dyn Host,
    ) -> Result<(), Effect> {
        let u = self.unit(unit);
        let mut locals = args;
        locals.extend(u.locals[locals.len()..].iter().map(|l| l.ty.zero()));
        state.frames.push(Frame { unit, node, locals });
        for init in &u.init {
            match eval::eval(self.program, state, host, &init.value) {
                Ok(v) => {
                    state.frames.last_mut().expect("just pushed").locals[init.slot as usize] = v
                }
                Err(m) => return Err(self.fault_at(unit, init.line, m)),
            }
        }
        Ok(())
    }

    /// Restarts the call at a unit's node (entry, `home`, `goto_start`).
    fn restart(
        &self,
        state: &mut State,
        unit: u32,
        node: u32,
        args: Vec<Value>,
        host: &dyn Host,
    ) -> Step {
        state.frames.clear();
        match self.enter(state, unit, node, args, host) {
            Ok(()) => Step::At,
            Err(e) => Step::End(e),
        }
    }

    pub(crate) fn burn(&self, state: &State, fuel: &mut u64) -> Option<Step> {
        if *fuel == 0 {
            let node = self.node(state);
            return Some(Step::End(self.fault_at(
                Self::top(state).0,
                node.line,
                format!(
                    "fuel exhausted: more than {} loops without waiting for the caller",
                    state.fuel_per_resume
                ),
            )));
        }
        *fuel -= 1;
        None
    }

    pub(crate) fn follow(&self, state: &mut State, edge: Edge, fuel: &mut u64) -> Step {
        match edge {
            Edge::Node(i) => {
                let (_, cur) = Self::top(state);
                if i <= cur
                    && let Some(s) = self.burn(state, fuel)
                {
                    return s;
                }
                state.frames.last_mut().expect("frame").node = i;
                Step::At
            }
            Edge::Hangup | Edge::Off => Step::End(Effect::Hangup {
                prompts: Vec::new(),
            }),
            Edge::Return(x) => {
                let callee = state.frames.pop().expect("frame");
                match state.frames.last() {
                    None => {
                        state.exit = self.unit(callee.unit).exits.get(x as usize).cloned();
                        Step::End(Effect::Hangup {
                            prompts: Vec::new(),
                        })
                    }
                    Some(_) => match &self.node(state).kind {
                        NodeKind::Call { exits, .. } => Step::Edge(exits[x as usize]),
                        // A verified IR only returns into a call node.
                        _ => Step::End(Effect::Hangup {
                            prompts: Vec::new(),
                        }),
                    },
                }
            }
        }
    }

    /// Executes the top frame's current node.
    fn exec(&self, state: &mut State, host: &mut dyn Host, fuel: &mut u64) -> Step {
        let (ui, ni) = Self::top(state);
        let node = &self.unit(ui).nodes[ni as usize];
        host.node_entered(ui, ni);
        state.steps += 1;
        state.last_node = Some((ui, ni));
        for op in &node.ops {
            match eval::eval(self.program, state, &*host, &op.value) {
                Ok(v) => assign(state, host, &op.place, v),
                Err(m) => return self.fault(state, m),
            }
        }
        match &node.kind {
            NodeKind::Goto(e) => Step::Edge(*e),
            NodeKind::Branch { arms, otherwise } => {
                for arm in arms {
                    match eval::eval(self.program, state, &*host, &arm.cond) {
                        Ok(Value::Bool(true)) => return Step::Edge(arm.edge),
                        Ok(_) => {}
                        Err(m) => return self.fault(state, m),
                    }
                }
                Step::Edge(*otherwise)
            }
            NodeKind::Call { unit, args, .. } => {
                let mut vals = Vec::with_capacity(args.len());
                for a in args {
                    match eval::eval(self.program, state, &*host, a) {
                        Ok(v) => vals.push(v),
                        Err(m) => return self.fault(state, m),
                    }
                }
                if state.frames.len() >= ir::verify::MAX_CALL_DEPTH {
                    return self.fault(
                        state,
                        format!(
                            "module calls nested deeper than {}",
                            ir::verify::MAX_CALL_DEPTH
                        ),
                    );
                }
                if let Some(s) = self.burn(state, fuel) {
                    return s;
                }
                match self.enter(state, *unit, 0, vals, &*host) {
                    Ok(()) => Step::At,
                    Err(e) => Step::End(e),
                }
            }
            NodeKind::Effect(en) => self.effect(state, &*host, ui, en),
            NodeKind::GotoStart { kind, name } => {
                if let Some(s) = self.burn(state, fuel) {
                    return s;
                }
                let Some(i) = self.program.find_entry(kind, name) else {
                    return self.fault(state, format!("no start point `{kind} \"{name}\"`"));
                };
                let e = &self.program.entries[i];
                state.target = name.clone();
                self.restart(state, e.unit, e.node, Vec::new(), &*host)
            }
            NodeKind::Home => {
                if let Some(s) = self.burn(state, fuel) {
                    return s;
                }
                let h = state.home.clone();
                state.target = h.name.clone();
                self.restart(state, h.unit, h.node, h.args, &*host)
            }
        }
    }

    /// Evaluates an effect node's prompts and parameters into its effect.
    fn effect(&self, state: &mut State, host: &dyn Host, unit: u32, en: &EffectNode) -> Step {
        let mut prompts = Vec::with_capacity(en.prompts.len());
        for p in &en.prompts {
            let r = match p {
                PromptExpr::File(e) => {
                    eval::eval(self.program, state, host, e).map(|v| PromptItem::File(v.to_text()))
                }
                PromptExpr::Say(m, e) => {
                    eval::eval(self.program, state, host, e).map(|v| PromptItem::Say {
                        say: *m,
                        value: v.to_text(),
                    })
                }
                PromptExpr::Speak(e) => eval::eval(self.program, state, host, e)
                    .map(|v| PromptItem::Speak { speak: v.to_text() }),
            };
            match r {
                Ok(item) => prompts.push(item),
                Err(m) => return self.fault(state, m),
            }
        }
        let mut args = Vec::with_capacity(en.args.len());
        for a in &en.args {
            match eval::eval(self.program, state, host, a) {
                Ok(v) => args.push(v),
                Err(m) => return self.fault(state, m),
            }
        }
        self.build_effect(state, unit, en, prompts, args)
    }

    /// Builds an effect node's effect from its evaluated prompts and
    /// parameters (shared with the JIT, which evaluates them natively).
    pub(crate) fn build_effect(
        &self,
        state: &State,
        unit: u32,
        en: &EffectNode,
        prompts: Vec<PromptItem>,
        args: Vec<Value>,
    ) -> Step {
        // Parameters by name (the action table's order may grow); verified types.
        let specs: Vec<&str> = en.action.arg_specs().map(|p| p.name).collect();
        let arg = |name: &str| {
            specs
                .iter()
                .position(|p| *p == name)
                .and_then(|i| args.get(i))
        };
        let s = |name: &str| arg(name).map(Value::to_text).unwrap_or_default();
        let n = |name: &str| match arg(name) {
            Some(Value::Int(n)) => *n,
            _ => 0,
        };
        let ms = |name: &str| n(name).max(0) as u64;
        let b = |name: &str| arg(name) == Some(&Value::Bool(true));
        let on = |name: &str| {
            en.action
                .result_index(name)
                .is_some_and(|i| en.results[i] != Edge::Off)
        };
        let effect = match en.action {
            Action::Play => Effect::Play {
                prompts,
                barge_in: on("key"),
            },
            Action::Menu => Effect::Menu {
                prompts,
                keys: en.keys.iter().map(|k| k.keys.clone()).collect(),
                timeout_ms: ms("timeout"),
                retries: n("retries"),
                interdigit_ms: ms("interdigit"),
                invalid_prompt: s("invalid_prompt"),
            },
            Action::Input => Effect::Input {
                prompts,
                max_digits: n("max_digits"),
                terminator: s("terminator"),
                timeout_ms: ms("timeout"),
            },
            Action::Hangup => return Step::End(Effect::Hangup { prompts }),
            Action::LeaveMail => Effect::LeaveMail {
                prompts,
                mailbox: s("mailbox"),
                greeting: b("greeting"),
                beep: b("beep"),
                max_length_ms: ms("max_length"),
                review: b("review"),
                priority: s("priority"),
            },
            Action::VerifyPin => Effect::VerifyPin {
                mailbox: s("mailbox"),
                pin: s("pin"),
            },
            Action::MessageCount => Effect::MessageCount {
                mailbox: s("mailbox"),
                folder: s("folder"),
            },
            Action::PlayMessage => Effect::PlayMessage {
                prompts,
                mailbox: s("mailbox"),
                folder: s("folder"),
                index: n("index"),
                envelope: b("envelope"),
                barge_in: on("key"),
            },
            Action::SaveMessage => Effect::SaveMessage {
                prompts,
                mailbox: s("mailbox"),
                folder: s("folder"),
                index: n("index"),
            },
            Action::DeleteMessage => Effect::DeleteMessage {
                prompts,
                mailbox: s("mailbox"),
                folder: s("folder"),
                index: n("index"),
            },
            Action::RecordGreeting => Effect::RecordGreeting {
                prompts,
                mailbox: s("mailbox"),
                kind: s("kind"),
                max_length_ms: ms("max_length"),
            },
            Action::SetGreeting => Effect::SetGreeting {
                prompts,
                mailbox: s("mailbox"),
                kind: s("kind"),
                use_: s("use"),
            },
            Action::SetPin => Effect::SetPin {
                prompts,
                mailbox: s("mailbox"),
                pin: s("pin"),
            },
            Action::Transfer | Action::AssistedTransfer => {
                let target = s("to");
                let own = &self.unit(unit).allow_transfer;
                if !(crate::check::transfer::allowed(&state.allow_transfer, &target)
                    || crate::check::transfer::allowed(own, &target))
                {
                    // Denied by default: a target no `allow_transfer` permits takes `failure`.
                    return Step::Edge(result(en, "failure"));
                }
                if en.action == Action::Transfer {
                    Effect::Transfer { prompts, target }
                } else {
                    Effect::AssistedTransfer {
                        prompts,
                        target,
                        timeout_ms: ms("timeout"),
                        music: s("music"),
                    }
                }
            }
            Action::Record => Effect::Record {
                prompts,
                recording: s("recording"),
                max_length_ms: ms("max_length"),
                silence_ms: ms("silence"),
                beep: b("beep"),
            },
            Action::Email => Effect::Email {
                to: s("to"),
                subject: s("subject"),
                body: s("body"),
                attach: b("attach"),
            },
            Action::Wait => Effect::Wait {
                prompts,
                duration_ms: ms("duration"),
                music: s("music"),
            },
        };
        Step::Wait(effect)
    }

    /// Continues after the outcome of the effect the call waits for.
    pub(crate) fn answer(&self, state: &mut State, outcome: Outcome, host: &mut dyn Host) -> Step {
        let node = self.node(state);
        let NodeKind::Effect(en) = &node.kind else {
            return Step::End(self.fault_at(
                Self::top(state).0,
                node.line,
                "resumed at a node that has no effect".into(),
            ));
        };
        let pending = state.pending.take();
        let r = |name: &str| Step::Edge(result(en, name));
        use Outcome as O;
        let a = en.action;
        match (a, &outcome) {
            (Action::Play | Action::PlayMessage, O::Ok | O::Timeout) => r("next"),
            (Action::Play | Action::PlayMessage, O::Keys(k)) => {
                if result(en, "key") == Edge::Off {
                    r("next")
                } else {
                    state.key = k.clone();
                    r("key")
                }
            }
            (Action::Play | Action::PlayMessage, O::Fail) => r("failure"),
            (Action::Menu, O::Keys(k) | O::Digits(k)) if !k.is_empty() => {
                state.key = k.clone();
                match exec::match_key(en.keys.iter().map(|k| k.keys.as_str()), k) {
                    Some(i) => {
                        set_failures(state, Self::top(state), 0);
                        Step::Edge(en.keys[i].edge)
                    }
                    None => self.menu_failure(state, en, pending, "invalid"),
                }
            }
            (Action::Menu, O::Ok | O::Timeout | O::Keys(_) | O::Digits(_)) => {
                self.menu_failure(state, en, pending, "timeout")
            }
            (Action::Input, O::Digits(d) | O::Keys(d)) => {
                let (max, term) = match &pending {
                    Some(Effect::Input {
                        max_digits,
                        terminator,
                        ..
                    }) => (*max_digits, terminator.clone()),
                    _ => (i64::MAX, String::new()),
                };
                let (mut digits, ended) =
                    match (!term.is_empty()).then(|| d.find(term.as_str())).flatten() {
                        Some(i) => (d[..i].to_string(), true),
                        None => (d.clone(), false),
                    };
                if max >= 0 && digits.chars().count() as i64 > max {
                    digits = digits.chars().take(max as usize).collect();
                }
                if digits.is_empty() && !ended {
                    return r("timeout");
                }
                if let Some(p) = &en.into {
                    assign(state, host, p, Value::Str(digits));
                }
                r("next")
            }
            (Action::Input, O::Timeout | O::Ok) => r("timeout"),
            (Action::LeaveMail, O::Ok | O::Recorded { .. }) => r("next"),
            (Action::LeaveMail, O::Fail | O::Timeout) => r("failure"),
            (Action::VerifyPin, O::Valid | O::Ok) => r("valid"),
            (Action::VerifyPin, O::Invalid | O::Fail | O::Timeout) => r("invalid"),
            (Action::VerifyPin, O::Locked) => r("locked"),
            (Action::MessageCount, O::Count(c)) => {
                if let Some(p) = &en.into {
                    assign(state, host, p, Value::Int(*c));
                }
                r("next")
            }
            (Action::MessageCount, O::Fail | O::Timeout) => r("failure"),
            (
                Action::SaveMessage
                | Action::DeleteMessage
                | Action::SetGreeting
                | Action::Email
                | Action::SetPin,
                O::Ok,
            ) => r("next"),
            (
                Action::SaveMessage
                | Action::DeleteMessage
                | Action::SetGreeting
                | Action::Email
                | Action::SetPin,
                O::Fail | O::Timeout,
            ) => r("failure"),
            (Action::SetPin, O::Invalid) => r("invalid"),
            (Action::Record | Action::RecordGreeting, O::Ok | O::Recorded { .. }) => {
                if let Some(Effect::Record { recording, .. }) = &pending {
                    state.recording = recording.clone();
                }
                r("next")
            }
            (Action::Record | Action::RecordGreeting, O::Timeout) => r("timeout"),
            (Action::Record | Action::RecordGreeting, O::Fail) => r("failure"),
            (Action::Transfer | Action::AssistedTransfer, O::Ok) => r("next"),
            (Action::Transfer | Action::AssistedTransfer, O::Busy) => r("busy"),
            (Action::Transfer | Action::AssistedTransfer, O::NoAnswer | O::Timeout) => {
                r("no_answer")
            }
            (Action::Transfer | Action::AssistedTransfer, O::Fail) => r("failure"),
            (Action::Wait, O::Ok | O::Timeout) => r("next"),
            _ => Step::End(self.fault_at(
                Self::top(state).0,
                node.line,
                format!("`{outcome}` is not an outcome of `{}`", a.name()),
            )),
        }
    }

    /// A menu failure (`timeout` or `invalid`): counted; past `retries` it is `exhausted`.
    fn menu_failure(
        &self,
        state: &mut State,
        en: &EffectNode,
        pending: Option<Effect>,
        kind: &str,
    ) -> Step {
        let at = Self::top(state);
        let count = failures(state, at) + 1;
        let (retries, invalid_prompt) = match pending {
            Some(Effect::Menu {
                retries,
                invalid_prompt,
                ..
            }) => (retries, invalid_prompt),
            _ => (0, String::new()),
        };
        if i64::from(count) > retries {
            set_failures(state, at, 0);
            return Step::Edge(result(en, "exhausted"));
        }
        set_failures(state, at, count);
        let edge = result(en, kind);
        if kind == "invalid" && !invalid_prompt.is_empty() {
            return Step::WaitThen(
                Effect::Play {
                    prompts: vec![PromptItem::File(invalid_prompt)],
                    barge_in: false,
                },
                edge,
            );
        }
        Step::Edge(edge)
    }

    fn run(&self, state: &mut State, host: &mut dyn Host, mut step: Step) -> Effect {
        let mut fuel = state.fuel_per_resume;
        loop {
            step = match step {
                Step::At => self.exec(state, host, &mut fuel),
                Step::Edge(e) => self.follow(state, e, &mut fuel),
                parked => return park(state, parked),
            }
        }
    }
}

/// Records in `state` what the call now waits for (or that it is over) and
/// returns the effect to hand out. Shared by both engines' run loops; `At` and
/// `Edge` are theirs to execute.
pub(crate) fn park(state: &mut State, step: Step) -> Effect {
    match step {
        Step::Wait(e) => {
            state.status = Status::Waiting;
            state.pending = Some(e.clone());
            e
        }
        Step::WaitThen(e, edge) => {
            state.status = Status::AfterPrompt(edge);
            state.pending = Some(e.clone());
            e
        }
        Step::End(e) => {
            state.status = Status::Done(e.clone());
            state.pending = None;
            e
        }
        Step::At | Step::Edge(_) => {
            unreachable!("park is only called with a waiting or final step")
        }
    }
}

impl Engine for Interpreter<'_> {
    fn resume(&self, state: &mut State, outcome: Outcome, host: &mut dyn Host) -> Effect {
        let step = match &state.status {
            Status::Done(e) => return e.clone(),
            _ if outcome == Outcome::Hangup => Step::End(Effect::Ended),
            Status::New => {
                let h = state.home.clone();
                state.target = h.name.clone();
                if h.unit as usize >= self.program.units.len() {
                    Step::End(Effect::Fault {
                        message: "no such start point".into(),
                        file: String::new(),
                        line: 0,
                    })
                } else {
                    self.restart(state, h.unit, h.node, h.args, &*host)
                }
            }
            Status::Waiting => self.answer(state, outcome, host),
            Status::AfterPrompt(edge) => {
                let e = *edge;
                state.pending = None;
                Step::Edge(e)
            }
        };
        self.run(state, host, step)
    }
}

/// The edge of an effect node's result by name (unknown names end the call).
fn result(en: &EffectNode, name: &str) -> Edge {
    en.action
        .result_index(name)
        .and_then(|i| en.results.get(i).copied())
        .unwrap_or(Edge::Hangup)
}

fn assign(state: &mut State, host: &mut dyn Host, place: &Place, v: Value) {
    match place {
        Place::Local(i) => {
            if let Some(slot) = state
                .frames
                .last_mut()
                .and_then(|f| f.locals.get_mut(*i as usize))
            {
                *slot = v;
            }
        }
        Place::Cp(i) => {
            if let Some(slot) = state.cp.get_mut(usize::from(*i)) {
                *slot = v.to_text();
            }
        }
        Place::User(name) => host.set_user_var(name, v.to_text()),
    }
}

fn failures(state: &State, at: (u32, u32)) -> u32 {
    state
        .menu_failures
        .iter()
        .find(|(k, _)| *k == at)
        .map_or(0, |(_, c)| *c)
}

fn set_failures(state: &mut State, at: (u32, u32), count: u32) {
    match state.menu_failures.iter_mut().find(|(k, _)| *k == at) {
        Some(e) => e.1 = count,
        None => state.menu_failures.push((at, count)),
    }
}
