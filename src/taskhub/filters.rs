//! Work-item filters: a worker may ask for only the orchestrators and activities it has.
//!
//! Without filters a worker gets everything. With filters, a kind whose list is empty gets
//! nothing, and a name matches when it is listed with no versions or with the item's version.

use std::collections::HashMap;

use crate::durabletask::proto;

/// Names (and versions) by kind; `None` means "everything".
#[derive(Debug, Clone, Default)]
pub struct WorkFilter {
    orchestrations: Option<HashMap<String, Vec<String>>>,
    activities: Option<HashMap<String, Vec<String>>>,
}

fn allows(list: &Option<HashMap<String, Vec<String>>>, name: &str, version: Option<&str>) -> bool {
    let Some(list) = list else {
        return true;
    };
    match list.get(name) {
        Some(versions) => {
            versions.is_empty() || version.is_some_and(|v| versions.iter().any(|w| w == v))
        }
        None => false,
    }
}

impl WorkFilter {
    /// The filter a GetWorkItems request asked for.
    pub fn from_request(filters: Option<&proto::WorkItemFilters>) -> Self {
        let Some(filters) = filters else {
            return Self::default();
        };
        Self {
            orchestrations: Some(
                filters
                    .orchestrations
                    .iter()
                    .map(|f| (f.name.clone(), f.versions.clone()))
                    .collect(),
            ),
            activities: Some(
                filters
                    .activities
                    .iter()
                    .map(|f| (f.name.clone(), f.versions.clone()))
                    .collect(),
            ),
        }
    }

    /// True when the worker takes turns of this orchestrator.
    pub fn allows_orchestration(&self, name: &str, version: Option<&str>) -> bool {
        allows(&self.orchestrations, name, version)
    }

    /// True when the worker takes this activity.
    pub fn allows_activity(&self, name: &str, version: Option<&str>) -> bool {
        allows(&self.activities, name, version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_filters_take_everything_and_filters_only_their_names() {
        let everything = WorkFilter::from_request(None);
        assert!(everything.allows_orchestration("any", None));
        assert!(everything.allows_activity("any", Some("2")));

        let filters = proto::WorkItemFilters {
            orchestrations: vec![proto::OrchestrationFilter {
                name: "orch".into(),
                versions: vec!["1".into()],
            }],
            activities: vec![proto::ActivityFilter {
                name: "act".into(),
                versions: vec![],
            }],
            entities: vec![],
        };
        let only = WorkFilter::from_request(Some(&filters));
        assert!(only.allows_orchestration("orch", Some("1")));
        assert!(!only.allows_orchestration("orch", Some("2")));
        assert!(!only.allows_orchestration("orch", None));
        assert!(!only.allows_orchestration("other", Some("1")));
        assert!(only.allows_activity("act", Some("9")));
        assert!(!only.allows_activity("other", None));

        let no_activities = proto::WorkItemFilters {
            activities: vec![],
            ..filters
        };
        assert!(!WorkFilter::from_request(Some(&no_activities)).allows_activity("act", None));
    }
}
