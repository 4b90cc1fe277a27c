//! The node graph of one flow or module: reachability (V0502) and pure
//! cycles, loops through nodes that never wait for the caller (V0501).

use super::Program;
use super::body::split_qualified;
use crate::actions;
use crate::diag::{Code, Diagnostic};
use crate::source::FileId;
use crate::syntax::ast::{Body, Stmt, Target};
use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Edge {
    Node(usize),
    End,
    Return,
}

/// What the graph checks need to know of one node.
#[derive(Debug, Default)]
pub(super) struct NodeInfo {
    pub waits: bool,
    pub terminal: bool,
    /// `home`: continues at the entry start points.
    pub home: bool,
    pub edges: Vec<Edge>,
    /// The module a `call` runs: (file, module index).
    pub calls: Option<(FileId, usize)>,
}

pub(super) fn check(
    file: FileId,
    body: &Body,
    infos: &[NodeInfo],
    entries: &[usize],
    misnamed: &[usize],
    program: &Program,
    out: &mut Vec<Diagnostic>,
) {
    let succ = |i: usize| -> Vec<usize> {
        let mut v: Vec<usize> = infos[i]
            .edges
            .iter()
            .filter_map(|e| {
                if let Edge::Node(j) = e {
                    Some(*j)
                } else {
                    None
                }
            })
            .collect();
        if infos[i].home {
            v.extend_from_slice(entries);
        }
        v
    };

    if !entries.is_empty() {
        let mut seen = vec![false; infos.len()];
        let mut stack: Vec<usize> = entries.to_vec();
        while let Some(i) = stack.pop() {
            if std::mem::replace(&mut seen[i], true) {
                continue;
            }
            stack.extend(succ(i).into_iter().filter(|&j| !seen[j]));
        }
        for (i, node) in body.nodes.iter().enumerate() {
            if !seen[i] && !misnamed.contains(&i) {
                out.push(
                    Diagnostic::new(
                        Code::Unreachable,
                        file,
                        node.name.span,
                        format!("node `{}` is never reached", node.name.text),
                    )
                    .label("unreachable")
                    .help("connect a result or a start point to it, or remove it"),
                );
            }
        }
    }

    // Pure cycles: strongly connected components among nodes that do not wait.
    let mut memo = HashMap::new();
    let instant: Vec<bool> = infos
        .iter()
        .map(|n| {
            !n.waits
                && n.calls
                    .is_none_or(|m| module_is_instant(program, m, &mut memo, &mut HashSet::new()))
        })
        .collect();
    for scc in tarjan(infos.len(), |i| {
        if instant[i] {
            succ(i).into_iter().filter(|&j| instant[j]).collect()
        } else {
            Vec::new()
        }
    }) {
        let cyclic = scc.len() > 1 || succ(scc[0]).contains(&scc[0]);
        if !cyclic || !instant[scc[0]] {
            continue;
        }
        let mut members = scc.clone();
        members.sort_unstable();
        let first = members[0];
        let names: Vec<&str> = members
            .iter()
            .map(|&i| body.nodes[i].name.text.as_str())
            .collect();
        out.push(
            Diagnostic::new(
                Code::PureCycle,
                file,
                body.nodes[first].name.span,
                format!("nodes {} loop without ever waiting for the caller", names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")),
            )
            .label("this loop never waits")
            .help("put a node that waits for the caller (menu, input, play…) in the loop, or leave it with a `test`"),
        );
    }
}

/// Whether a module can return without waiting for the caller on some path.
/// Recursion in progress counts as waiting (the run-time fuel limit covers it).
fn module_is_instant(
    program: &Program,
    (fid, idx): (FileId, usize),
    memo: &mut HashMap<(FileId, usize), bool>,
    visiting: &mut HashSet<(FileId, usize)>,
) -> bool {
    if let Some(&v) = memo.get(&(fid, idx)) {
        return v;
    }
    if !visiting.insert((fid, idx)) {
        return false;
    }
    let Some(m) = program.file(fid).and_then(|f| f.ast.modules.get(idx)) else {
        return false;
    };
    let index: HashMap<&str, usize> = m
        .body
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.text.as_str(), i))
        .collect();
    let mut instant_node = vec![false; m.body.nodes.len()];
    for (i, n) in m.body.nodes.iter().enumerate() {
        let waits = actions::action(&n.action.text).is_none_or(|a| a.waits);
        let callee_waits = n.stmts.iter().any(|s| match s {
            Stmt::Module { module, .. } => {
                let (ns, name) = split_qualified(&module.text);
                match program.module(fid, ns, name) {
                    Some((cf, cm)) => {
                        let cidx = program
                            .file(cf)
                            .and_then(|f| f.ast.modules.iter().position(|x| std::ptr::eq(x, cm)))
                            .unwrap_or(0);
                        !module_is_instant(program, (cf, cidx), memo, visiting)
                    }
                    None => true,
                }
            }
            _ => false,
        });
        instant_node[i] = !waits && !callee_waits;
    }
    let mut result = false;
    let mut seen = vec![false; m.body.nodes.len()];
    let mut stack = if m.body.nodes.is_empty() {
        Vec::new()
    } else {
        vec![0usize]
    };
    while let Some(i) = stack.pop() {
        if !instant_node[i] || std::mem::replace(&mut seen[i], true) {
            continue;
        }
        for s in &m.body.nodes[i].stmts {
            let target = match s {
                Stmt::On { target, .. } | Stmt::When { target, .. } | Stmt::Else { target, .. } => {
                    target
                }
                _ => continue,
            };
            match target {
                Target::Return(_) => result = true,
                Target::Node(n) => {
                    if let Some(&j) = index.get(n.text.as_str()) {
                        stack.push(j);
                    }
                }
            }
        }
    }
    visiting.remove(&(fid, idx));
    memo.insert((fid, idx), result);
    result
}

/// Tarjan's strongly connected components, iterative (flows may be large).
fn tarjan(n: usize, succ: impl Fn(usize) -> Vec<usize>) -> Vec<Vec<usize>> {
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut out = Vec::new();
    let mut next = 0;
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        // (node, successors, position in successors)
        let mut work: Vec<(usize, Vec<usize>, usize)> = vec![(root, succ(root), 0)];
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some((v, ws, pos)) = work.last_mut() {
            let v = *v;
            if *pos < ws.len() {
                let w = ws[*pos];
                *pos += 1;
                if index[w] == usize::MAX {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    work.push((w, succ(w), 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
            } else {
                work.pop();
                if let Some((parent, ..)) = work.last() {
                    low[*parent] = low[*parent].min(low[v]);
                }
                if low[v] == index[v] {
                    let mut comp = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w] = false;
                        comp.push(w);
                        if w == v {
                            break;
                        }
                    }
                    out.push(comp);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::tarjan;

    #[test]
    fn finds_cycles() {
        let g = [vec![1], vec![2], vec![0], vec![3], vec![]];
        let mut sccs: Vec<Vec<usize>> = tarjan(5, |i| g[i].clone())
            .into_iter()
            .map(|mut c| {
                c.sort();
                c
            })
            .collect();
        sccs.sort();
        assert_eq!(sccs, vec![vec![0, 1, 2], vec![3], vec![4]]);
    }
}
