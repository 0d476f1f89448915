//! THREAD (RFC 5256): REFERENCES (parent links from References/In-Reply-To, empty
//! containers pruned, roots grouped by base subject) and ORDEREDSUBJECT, written out as the
//! RFC's nested lists, e.g. `(3 6 (4 23)(44 7 96))`.

use std::collections::HashMap;

use imap_codec::imap_types::core::Charset;
use imap_codec::imap_types::extensions::thread::ThreadingAlgorithm;
use imap_codec::imap_types::search::SearchKey;

use super::session::{Reply, Session};
use super::sort::Summary;
use crate::listener::ReadError;

/// One container of the REFERENCES algorithm: a message, or a placeholder for one that is
/// only referenced.
#[derive(Debug, Default, Clone)]
struct Node {
    message: Option<usize>,
    parent: Option<usize>,
    children: Vec<usize>,
}

/// A forest of containers over the summaries.
struct Forest<'a> {
    nodes: Vec<Node>,
    summaries: &'a [Summary],
}

impl<'a> Forest<'a> {
    fn is_ancestor(&self, ancestor: usize, mut node: usize) -> bool {
        // Bounded by the number of nodes: the links never form a cycle.
        for _ in 0..=self.nodes.len() {
            if node == ancestor {
                return true;
            }
            match self.nodes[node].parent {
                Some(p) => node = p,
                None => return false,
            }
        }
        true
    }

    fn unlink(&mut self, child: usize) {
        if let Some(p) = self.nodes[child].parent.take() {
            self.nodes[p].children.retain(|&c| c != child);
        }
    }

    fn link(&mut self, parent: usize, child: usize) {
        if parent == child || self.is_ancestor(child, parent) {
            return;
        }
        self.unlink(child);
        self.nodes[child].parent = Some(parent);
        self.nodes[parent].children.push(child);
    }

    /// The sent date that orders a container: its message's, or its first child's.
    fn date(&self, node: usize) -> (i64, usize) {
        let mut n = node;
        for _ in 0..=self.nodes.len() {
            if let Some(m) = self.nodes[n].message {
                let s = &self.summaries[m];
                return (s.date, s.index);
            }
            match self.nodes[n].children.first() {
                Some(&c) => n = c,
                None => break,
            }
        }
        (i64::MAX, usize::MAX)
    }

    fn subject(&self, node: usize) -> Option<(&'a str, bool)> {
        let n = match self.nodes[node].message {
            Some(_) => node,
            None => *self.nodes[node].children.first()?,
        };
        let s = &self.summaries[self.nodes[n].message?];
        (!s.base_subject.is_empty()).then_some((s.base_subject.as_str(), s.reply))
    }

    fn sort_children(&mut self, node: usize) {
        let mut children = std::mem::take(&mut self.nodes[node].children);
        for &c in &children {
            self.sort_children(c);
        }
        children.sort_by_key(|&c| self.date(c));
        self.nodes[node].children = children;
    }

    /// Removes empty containers (RFC 5256 REFERENCES step 4); returns the new list for
    /// `list` (a root set or a child list).
    fn prune(&mut self, list: Vec<usize>, at_root: bool) -> Vec<usize> {
        let mut out = Vec::new();
        for node in list {
            let children = std::mem::take(&mut self.nodes[node].children);
            let children = self.prune(children, false);
            self.nodes[node].children = children.clone();
            if self.nodes[node].message.is_some() {
                out.push(node);
            } else if children.is_empty() {
                continue;
            } else if at_root && children.len() > 1 {
                out.push(node);
            } else {
                // Promote the children to this level.
                for &c in &children {
                    self.nodes[c].parent = self.nodes[node].parent;
                }
                out.extend(children);
            }
        }
        out
    }

    fn write(&self, node: usize, out: &mut String, by_uid: bool) {
        let number = |m: usize| {
            let s = &self.summaries[m];
            if by_uid { s.uid } else { s.index as u32 + 1 }
        };
        let mut n = node;
        let mut first = true;
        loop {
            if let Some(m) = self.nodes[n].message {
                if !first {
                    out.push(' ');
                }
                out.push_str(&number(m).to_string());
                first = false;
            }
            match self.nodes[n].children.as_slice() {
                [] => return,
                [only] if self.nodes[n].message.is_some() => n = *only,
                children => {
                    if !first {
                        out.push(' ');
                    }
                    for &c in children {
                        out.push('(');
                        self.write(c, out, by_uid);
                        out.push(')');
                    }
                    return;
                }
            }
        }
    }
}

/// The container of a message id, made empty on first sight.
fn node_for<'a>(
    forest: &mut Forest<'a>,
    by_id: &mut HashMap<&'a str, usize>,
    id: &'a str,
) -> usize {
    if let Some(&n) = by_id.get(id) {
        return n;
    }
    forest.nodes.push(Node::default());
    let n = forest.nodes.len() - 1;
    by_id.insert(id, n);
    n
}

/// REFERENCES threading of the summaries; returns the root containers and the forest.
fn references(summaries: &[Summary]) -> (Vec<usize>, Forest<'_>) {
    let mut forest = Forest {
        nodes: Vec::new(),
        summaries,
    };
    let mut by_id: HashMap<&str, usize> = HashMap::new();
    for (m, s) in summaries.iter().enumerate() {
        // Step 1A: the message's container (a duplicate or missing id gets its own).
        let own = match &s.message_id {
            Some(id) => {
                let n = node_for(&mut forest, &mut by_id, id);
                if forest.nodes[n].message.is_some() {
                    forest.nodes.push(Node::default());
                    forest.nodes.len() - 1
                } else {
                    n
                }
            }
            None => {
                forest.nodes.push(Node::default());
                forest.nodes.len() - 1
            }
        };
        forest.nodes[own].message = Some(m);
        // Step 1B: link the references in order, keeping existing links.
        let refs: Vec<usize> = s
            .references
            .iter()
            .map(|r| node_for(&mut forest, &mut by_id, r))
            .collect();
        for pair in refs.windows(2) {
            if forest.nodes[pair[1]].parent.is_none() {
                forest.link(pair[0], pair[1]);
            }
        }
        // Step 1C: the message's parent is its last reference.
        match refs.last() {
            Some(&parent) => forest.link(parent, own),
            None => forest.unlink(own),
        }
    }
    let roots: Vec<usize> = (0..forest.nodes.len())
        .filter(|&n| forest.nodes[n].parent.is_none())
        .collect();
    let mut roots = forest.prune(roots, true);
    for &r in &roots {
        forest.sort_children(r);
    }
    roots.sort_by_key(|&r| forest.date(r));
    // Step 5: roots with the same base subject are gathered.
    let mut by_subject: HashMap<&str, usize> = HashMap::new();
    for &r in &roots {
        let Some((subject, reply)) = forest.subject(r) else {
            continue;
        };
        match by_subject.get(subject) {
            None => {
                by_subject.insert(subject, r);
            }
            Some(&old) => {
                let old_dummy = forest.nodes[old].message.is_none();
                let old_reply = forest.subject(old).is_some_and(|(_, re)| re);
                if (forest.nodes[r].message.is_none() && !old_dummy) || (old_reply && !reply) {
                    by_subject.insert(subject, r);
                }
            }
        }
    }
    let mut merged = Vec::new();
    for &r in &roots {
        let Some((subject, reply)) = forest.subject(r) else {
            merged.push(r);
            continue;
        };
        let Some(&keeper) = by_subject.get(subject) else {
            merged.push(r);
            continue;
        };
        if keeper == r {
            merged.push(r);
            continue;
        }
        let keeper_dummy = forest.nodes[keeper].message.is_none();
        let keeper_reply = forest.subject(keeper).is_some_and(|(_, re)| re);
        if keeper_dummy && forest.nodes[r].message.is_none() {
            for c in std::mem::take(&mut forest.nodes[r].children) {
                forest.nodes[c].parent = None;
                forest.link(keeper, c);
            }
        } else if keeper_dummy || (reply && !keeper_reply) {
            forest.link(keeper, r);
        } else {
            // Neither is the other's parent: both go under a new empty container.
            forest.nodes.push(Node::default());
            let dummy = forest.nodes.len() - 1;
            forest.link(dummy, keeper);
            forest.link(dummy, r);
            by_subject.insert(subject, dummy);
            if let Some(slot) = merged.iter_mut().find(|x| **x == keeper) {
                *slot = dummy;
            }
        }
    }
    for &r in &merged {
        forest.sort_children(r);
    }
    merged.sort_by_key(|&r| forest.date(r));
    (merged, forest)
}

/// ORDEREDSUBJECT: messages grouped by base subject, each group flat under its first.
fn ordered_subject(summaries: &[Summary], by_uid: bool) -> String {
    let mut order: Vec<usize> = (0..summaries.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&summaries[a], &summaries[b]);
        (a.base_subject.as_str(), a.date, a.index).cmp(&(b.base_subject.as_str(), b.date, b.index))
    });
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for i in order {
        match groups.last_mut() {
            Some(g) if summaries[g[0]].base_subject == summaries[i].base_subject => g.push(i),
            _ => groups.push(vec![i]),
        }
    }
    groups.sort_by_key(|g| (summaries[g[0]].date, summaries[g[0]].index));
    let number = |i: usize| {
        let s = &summaries[i];
        if by_uid { s.uid } else { s.index as u32 + 1 }
    };
    let mut out = String::new();
    for g in groups {
        out.push('(');
        out.push_str(&number(g[0]).to_string());
        match g.len() {
            1 => {}
            2 => out.push_str(&format!(" {}", number(g[1]))),
            _ => {
                out.push(' ');
                for &i in &g[1..] {
                    out.push_str(&format!("({})", number(i)));
                }
            }
        }
        out.push(')');
    }
    out
}

/// The THREAD response body for one algorithm.
pub fn threads(summaries: &[Summary], references_algorithm: bool, by_uid: bool) -> String {
    if !references_algorithm {
        return ordered_subject(summaries, by_uid);
    }
    let (roots, forest) = references(summaries);
    let mut out = String::new();
    for r in roots {
        out.push('(');
        forest.write(r, &mut out, by_uid);
        out.push(')');
    }
    out
}

impl Session<'_> {
    /// THREAD or UID THREAD.
    pub(super) async fn thread(
        &mut self,
        algorithm: &ThreadingAlgorithm<'_>,
        charset: Charset<'static>,
        search: &[SearchKey<'static>],
        by_uid: bool,
    ) -> Result<Reply, ReadError> {
        let references_algorithm = match algorithm {
            ThreadingAlgorithm::References => true,
            ThreadingAlgorithm::OrderedSubject => false,
            ThreadingAlgorithm::Other(_) => {
                return Ok(Reply::bad("Unknown threading algorithm"));
            }
        };
        let summaries = match self.summaries(Some(charset), search).await {
            Ok(summaries) => summaries,
            Err(reply) => return Ok(reply),
        };
        let line = format!(
            "* THREAD {}\r\n",
            threads(&summaries, references_algorithm, by_uid)
        );
        self.push(line.as_bytes()).await?;
        Ok(Reply::ok(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(n: usize, id: &str, refs: &[&str], subject: &str, date: i64) -> Summary {
        let reply = subject.to_ascii_lowercase().starts_with("re:");
        Summary {
            index: n - 1,
            uid: n as u32,
            date,
            base_subject: super::super::sort::base_subject(subject),
            reply,
            message_id: Some(id.into()),
            references: refs.iter().map(|r| r.to_string()).collect(),
            ..Summary::default()
        }
    }

    #[test]
    fn references_builds_the_tree() {
        let summaries = vec![
            message(1, "a", &[], "Bilan", 1),
            message(2, "b", &["a"], "Re: Bilan", 2),
            message(3, "c", &["a"], "Re: Bilan", 3),
            message(4, "d", &["a", "b"], "Re: Bilan", 4),
            message(5, "e", &[], "Autre", 5),
            // Its parent is missing: it joins message 1's thread by subject.
            message(6, "f", &["zz"], "Re: Bilan", 6),
        ];
        assert_eq!(threads(&summaries, true, false), "(1 (2 4)(3)(6))(5)");
        assert_eq!(threads(&summaries, false, false), "(1 (2)(3)(4)(6))(5)");
    }

    #[test]
    fn loops_and_duplicates_do_not_hang() {
        let summaries = vec![
            message(1, "a", &["b"], "x", 1),
            message(2, "b", &["a"], "x", 2),
            message(3, "a", &[], "y", 3),
        ];
        let out = threads(&summaries, true, false);
        assert!(
            out.contains('1') && out.contains('2') && out.contains('3'),
            "{out}"
        );
    }
}
