//! Templates: the static shape of a workflow, checked once at startup.

use std::collections::{HashMap, HashSet};

/// Why a template is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid template {template:?}: {reason}")]
pub struct TemplateError {
    pub template: String,
    pub reason: String,
}

/// A task in a template: a name and the tasks it runs after. Tasks whose
/// predecessors are all done run in parallel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskDef {
    pub name: &'static str,
    /// Only tasks listed earlier in the template.
    pub after: &'static [&'static str],
}

/// A named list of tasks in a topological order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Template {
    pub name: &'static str,
    pub tasks: &'static [TaskDef],
}

impl Template {
    /// Checks the template: a name, at least one task, unique task names,
    /// and `after` naming only earlier tasks (hence no cycles), once each.
    pub fn validate(&self) -> Result<(), TemplateError> {
        let invalid = |reason: String| {
            Err(TemplateError {
                template: self.name.to_owned(),
                reason,
            })
        };
        if self.name.is_empty() {
            return invalid("the name is empty".into());
        }
        if self.tasks.is_empty() {
            return invalid("it has no tasks".into());
        }
        let mut seen = HashSet::new();
        for task in self.tasks {
            if task.name.is_empty() {
                return invalid("a task name is empty".into());
            }
            let mut preds = HashSet::new();
            for pred in task.after {
                if !seen.contains(pred) {
                    return invalid(format!(
                        "task {:?} runs after {pred:?}, which is not an earlier task",
                        task.name
                    ));
                }
                if !preds.insert(pred) {
                    return invalid(format!("task {:?} lists {pred:?} twice", task.name));
                }
            }
            if !seen.insert(task.name) {
                return invalid(format!("task {:?} appears twice", task.name));
            }
        }
        Ok(())
    }
}

/// Validates the templates and indexes them by name (names must be unique).
pub fn registry(
    templates: Vec<&'static Template>,
) -> Result<HashMap<&'static str, &'static Template>, TemplateError> {
    let mut by_name = HashMap::with_capacity(templates.len());
    for t in templates {
        t.validate()?;
        if by_name.insert(t.name, t).is_some() {
            return Err(TemplateError {
                template: t.name.to_owned(),
                reason: "registered twice".into(),
            });
        }
    }
    Ok(by_name)
}
