//! In-order traversal of bucket trees with the structural checks of bbolt's `tx.Check`.
//!
//! Every page is visited at most once (a bitmap bounded by the file length), so a file whose
//! pages point at each other in a cycle ends the walk instead of looping.

use super::problem::{Problem, ProblemKind, show};
use super::{
    BUCKET_HEADER_SIZE, BUCKET_LEAF_FLAG, BoltFile, ELEMENT_SIZE, PAGE_HEADER_SIZE, PageHeader,
    PageKind, u32_at, u64_at,
};

/// B+trees of etcd data are a handful of levels deep; anything deeper is damage.
const MAX_DEPTH: usize = 64;
/// Problems kept verbatim; the rest are only counted.
const MAX_KEPT_PROBLEMS: usize = 200;

/// One element of a bucket: a key with its value, or a nested bucket.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    pub key: &'a [u8],
    pub value: &'a [u8],
    pub is_bucket: bool,
}

pub struct Walker<'f, 'a> {
    file: &'f BoltFile<'a>,
    seen: Vec<u64>,
    seen_limit: u64,
    reachable: u64,
    problems: Vec<Problem>,
    problem_count: u64,
    /// Leaf elements left to visit. Inline buckets can nest images whose elements overlap, which
    /// would otherwise multiply the work at every level; a real file holds at most one element
    /// per 16 bytes.
    budget: u64,
    budget_reported: bool,
}

/// Depth in the tree, and whether nested buckets are walked from here.
#[derive(Clone, Copy)]
struct Level {
    depth: usize,
    descend: bool,
}

enum Node<'a> {
    Branch(&'a [u8], PageHeader),
    Leaf(&'a [u8], PageHeader),
}

impl<'f, 'a> Walker<'f, 'a> {
    pub fn new(file: &'f BoltFile<'a>) -> Self {
        let seen_limit = file.meta().pgid.min(file.pages_in_file());
        let words = usize::try_from(seen_limit.div_ceil(64)).unwrap_or(usize::MAX);
        let mut w = Walker {
            file,
            seen: vec![0; words],
            seen_limit,
            reachable: 0,
            problems: Vec::new(),
            problem_count: 0,
            budget: file.data().len() as u64 / ELEMENT_SIZE as u64 + 64,
            budget_reported: false,
        };
        // The meta pages are always in use.
        w.mark(0);
        w.mark(1);
        w
    }

    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    pub fn problem_count(&self) -> u64 {
        self.problem_count
    }

    /// Pages reached from the root, meta pages included.
    pub fn reachable_pages(&self) -> u64 {
        self.reachable
    }

    fn report(&mut self, kind: ProblemKind, page: Option<u64>, message: String) {
        self.problem_count += 1;
        if self.problems.len() < MAX_KEPT_PROBLEMS {
            self.problems.push(Problem {
                kind,
                page,
                message,
            });
        }
    }

    /// Marks a page in use; false when it already was.
    fn mark(&mut self, id: u64) -> bool {
        if id >= self.seen_limit {
            return true;
        }
        let (w, b) = ((id / 64) as usize, id % 64);
        let Some(word) = self.seen.get_mut(w) else {
            return true;
        };
        if *word & (1 << b) != 0 {
            return false;
        }
        *word |= 1 << b;
        self.reachable += 1;
        true
    }

    fn load(&mut self, id: u64) -> Option<Node<'a>> {
        let meta_pgid = self.file.meta().pgid;
        let ps = self.file.page_size() as u64;
        let data = self.file.data();
        if id < 2 {
            self.report(
                ProblemKind::InvalidType,
                Some(id),
                format!("page {id}: invalid type: meta page used as a tree node"),
            );
            return None;
        }
        if id >= meta_pgid {
            self.report(
                ProblemKind::OutOfBounds,
                Some(id),
                format!("page {id}: out of bounds: {meta_pgid}"),
            );
            return None;
        }
        let start = id
            .checked_mul(ps)
            .filter(|s| s.saturating_add(PAGE_HEADER_SIZE as u64) <= data.len() as u64);
        let Some(start) = start else {
            self.report(
                ProblemKind::BeyondEndOfFile,
                Some(id),
                format!(
                    "page {id}: beyond the end of the file ({} bytes)",
                    data.len()
                ),
            );
            return None;
        };
        let start = start as usize;
        let Some(header) = PageHeader::parse(&data[start..]) else {
            self.report(
                ProblemKind::BeyondEndOfFile,
                Some(id),
                format!("page {id}: header beyond the end of the file"),
            );
            return None;
        };
        let kind = header.kind();
        if kind == PageKind::Invalid {
            self.report(
                ProblemKind::InvalidType,
                Some(id),
                format!("page {id}: invalid type: flags {:#06x}", header.flags),
            );
            return None;
        }
        let last = id.checked_add(u64::from(header.overflow));
        if last.is_none_or(|l| l >= meta_pgid) {
            self.report(
                ProblemKind::OutOfBounds,
                Some(id),
                format!(
                    "page {id}: out of bounds: overflow {} passes the high-water mark {meta_pgid}",
                    header.overflow
                ),
            );
            return None;
        }
        let span = (u64::from(header.overflow) + 1) * ps;
        let end = (start as u64)
            .checked_add(span)
            .filter(|e| *e <= data.len() as u64);
        let Some(end) = end else {
            self.report(
                ProblemKind::BeyondEndOfFile,
                Some(id),
                format!(
                    "page {id}: its {} page(s) pass the end of the file ({} bytes)",
                    header.overflow + 1,
                    data.len()
                ),
            );
            return None;
        };
        for p in id..=id + u64::from(header.overflow) {
            if !self.mark(p) {
                self.report(
                    ProblemKind::MultipleReferences,
                    Some(p),
                    format!("page {p}: multiple references"),
                );
                return None;
            }
        }
        if header.id != id
            || (header.flags != super::BRANCH_PAGE && header.flags != super::LEAF_PAGE)
        {
            self.report(
                ProblemKind::HeaderMismatch,
                Some(id),
                format!(
                    "page {id}: header says id {} flags {:#06x}",
                    header.id, header.flags
                ),
            );
        }
        let bytes = &data[start..end as usize];
        Some(match kind {
            PageKind::Branch => Node::Branch(bytes, header),
            _ => Node::Leaf(bytes, header),
        })
    }

    /// The entries of the root bucket: the top-level buckets.
    pub fn root_entries(&mut self) -> Vec<Entry<'a>> {
        let mut out = Vec::new();
        let root = self.file.meta().root;
        // Top-level buckets are walked by the caller, one at a time.
        self.walk_page(root, 0, false, &mut None, &mut |e| out.push(e));
        out
    }

    /// Walks the bucket whose header is `value` (as stored in the parent's leaf), calling `f`
    /// for each entry in key order. Nested buckets are checked but their entries not passed on.
    pub fn walk_bucket(&mut self, name: &[u8], value: &'a [u8], f: &mut dyn FnMut(Entry<'a>)) {
        self.walk_bucket_at(name, value, 0, f);
    }

    fn walk_bucket_at(
        &mut self,
        name: &[u8],
        value: &'a [u8],
        depth: usize,
        f: &mut dyn FnMut(Entry<'a>),
    ) {
        if depth > MAX_DEPTH {
            self.report(
                ProblemKind::TooDeep,
                None,
                format!("bucket {}: nested too deep", show(name)),
            );
            return;
        }
        let Some(root) = u64_at(value, 0).filter(|_| value.len() >= BUCKET_HEADER_SIZE) else {
            self.report(
                ProblemKind::BadBucket,
                None,
                format!(
                    "bucket {}: value of {} bytes is shorter than a bucket header",
                    show(name),
                    value.len()
                ),
            );
            return;
        };
        let mut last = None;
        if root != 0 {
            self.walk_page(root, depth, true, &mut last, f);
            return;
        }
        let image = &value[BUCKET_HEADER_SIZE..];
        let header = PageHeader::parse(image);
        match header {
            Some(h) if h.kind() == PageKind::Leaf => self.walk_leaf(
                image,
                h,
                None,
                Level {
                    depth,
                    descend: true,
                },
                &mut last,
                f,
            ),
            _ => self.report(
                ProblemKind::BadBucket,
                None,
                format!(
                    "bucket {}: inline bucket is not a leaf page image",
                    show(name)
                ),
            ),
        }
    }

    fn walk_page(
        &mut self,
        id: u64,
        depth: usize,
        descend: bool,
        last: &mut Option<&'a [u8]>,
        f: &mut dyn FnMut(Entry<'a>),
    ) {
        if depth > MAX_DEPTH {
            self.report(
                ProblemKind::TooDeep,
                Some(id),
                format!("page {id}: tree deeper than {MAX_DEPTH} levels"),
            );
            return;
        }
        match self.load(id) {
            None => {}
            Some(Node::Leaf(bytes, h)) => {
                self.walk_leaf(bytes, h, Some(id), Level { depth, descend }, last, f)
            }
            Some(Node::Branch(bytes, h)) => {
                let mut prev: Option<&[u8]> = None;
                for i in 0..usize::from(h.count) {
                    let el = PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
                    let parsed = (|| {
                        let pos = u32_at(bytes, el)? as usize;
                        let ksize = u32_at(bytes, el + 4)? as usize;
                        let child = u64_at(bytes, el + 8)?;
                        let ks = el.checked_add(pos)?;
                        let key = bytes.get(ks..ks.checked_add(ksize)?)?;
                        Some((key, child))
                    })();
                    let Some((key, child)) = parsed else {
                        self.report(
                            ProblemKind::BadElement,
                            Some(id),
                            format!("page {id}: branch element {i} does not fit in the page"),
                        );
                        return;
                    };
                    if prev.is_some_and(|p| p >= key) {
                        self.report(
                            ProblemKind::KeyOrder,
                            Some(id),
                            format!(
                                "page {id}: branch key {i} is not greater than the previous one"
                            ),
                        );
                    }
                    prev = Some(key);
                    self.walk_page(child, depth + 1, descend, last, f);
                }
            }
        }
    }

    fn walk_leaf(
        &mut self,
        bytes: &'a [u8],
        h: PageHeader,
        id: Option<u64>,
        level: Level,
        last: &mut Option<&'a [u8]>,
        f: &mut dyn FnMut(Entry<'a>),
    ) {
        let at = || match id {
            Some(id) => format!("page {id}"),
            None => "inline bucket".to_string(),
        };
        for i in 0..usize::from(h.count) {
            if self.budget == 0 {
                if !self.budget_reported {
                    self.budget_reported = true;
                    self.report(
                        ProblemKind::BadElement,
                        id,
                        format!(
                            "{}: more elements than the file can hold (elements overlap)",
                            at()
                        ),
                    );
                }
                return;
            }
            self.budget -= 1;
            let el = PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
            let parsed = (|| {
                let flags = u32_at(bytes, el)?;
                let pos = u32_at(bytes, el + 4)? as usize;
                let ksize = u32_at(bytes, el + 8)? as usize;
                let vsize = u32_at(bytes, el + 12)? as usize;
                let ks = el.checked_add(pos)?;
                let ke = ks.checked_add(ksize)?;
                let key = bytes.get(ks..ke)?;
                let value = bytes.get(ke..ke.checked_add(vsize)?)?;
                Some((flags, key, value))
            })();
            let Some((flags, key, value)) = parsed else {
                self.report(
                    ProblemKind::BadElement,
                    id,
                    format!("{}: leaf element {i} does not fit in the page", at()),
                );
                return;
            };
            if last.is_some_and(|p| p >= key) {
                self.report(
                    ProblemKind::KeyOrder,
                    id,
                    format!(
                        "{}: key {} is not greater than the key before it",
                        at(),
                        show(key)
                    ),
                );
            }
            *last = Some(key);
            let is_bucket = flags & BUCKET_LEAF_FLAG != 0;
            if is_bucket && level.descend {
                self.walk_bucket_at(key, value, level.depth + 1, &mut |_| {});
            }
            f(Entry {
                key,
                value,
                is_bucket,
            });
        }
    }
}
