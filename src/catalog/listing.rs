//! The catalog's listing at one moment: the test files grouped by project,
//! and the lookups made on it (a project by name, what a run asked for).
//! It is walked once and shared (`cache`), so every lookup is in memory.

use std::collections::BTreeMap;

use super::{Group, Project, Selection, TestFile};
use crate::error::AppError;

/// The most files one run may name.
const MAX_FILES_PER_RUN: usize = 1000;

#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// Projects first, by name, then the files outside any, if there are some.
    groups: Vec<Group>,
}

impl Listing {
    pub(super) fn new(groups: Vec<Group>) -> Listing {
        Listing { groups }
    }

    /// The test files grouped by project (projects first, by name), then the
    /// files outside any project, if there are some.
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// Every test file, sorted by path.
    pub fn files(&self) -> Vec<TestFile> {
        let mut files: Vec<TestFile> = self
            .groups
            .iter()
            .flat_map(|g| g.files.iter().cloned())
            .collect();
        files.sort();
        files
    }

    /// The projects, sorted by name.
    pub fn projects(&self) -> Vec<Project> {
        self.groups
            .iter()
            .filter_map(|g| g.project.clone())
            .collect()
    }

    pub fn project(&self, name: &str) -> Option<Project> {
        self.groups
            .iter()
            .filter_map(|g| g.project.as_ref())
            .find(|p| p.name == name)
            .cloned()
    }

    /// Checks every requested path against the catalog; the first unknown one
    /// is refused by name, and so are files of more than one project.
    /// Duplicates are dropped, order kept.
    pub fn resolve(&self, requested: &[String]) -> Result<Selection, AppError> {
        if requested.is_empty() {
            return Err(AppError::Invalid("choose at least one test file".into()));
        }
        if requested.len() > MAX_FILES_PER_RUN {
            return Err(AppError::Invalid(format!(
                "choose at most {MAX_FILES_PER_RUN} test files"
            )));
        }
        let group_of: BTreeMap<&str, (usize, &TestFile)> = self
            .groups
            .iter()
            .enumerate()
            .flat_map(|(i, g)| g.files.iter().map(move |f| (f.as_str(), (i, f))))
            .collect();
        let mut chosen: Vec<TestFile> = Vec::with_capacity(requested.len());
        let mut first: Option<(usize, &str)> = None;
        for path in requested {
            let Some(&(group, file)) = group_of.get(path.as_str()) else {
                return Err(AppError::Invalid(format!(
                    "{path:?} is not a test file in the catalog; pick one listed at /api/v1/test-files"
                )));
            };
            match first {
                None => first = Some((group, path)),
                Some((g, other)) if g != group => {
                    return Err(AppError::Invalid(format!(
                        "a run takes the files of one project: {other:?} is in {}, {path:?} is in {}; start one run per project",
                        self.group_name(g),
                        self.group_name(group)
                    )));
                }
                Some(_) => {}
            }
            if !chosen.contains(file) {
                chosen.push(file.clone());
            }
        }
        let project = first.and_then(|(g, _)| self.groups[g].project.clone());
        Ok(Selection {
            project,
            files: chosen,
        })
    }

    fn group_name(&self, group: usize) -> String {
        match &self.groups[group].project {
            Some(p) => format!("project {}", p.name),
            None => "no project".to_owned(),
        }
    }
}
